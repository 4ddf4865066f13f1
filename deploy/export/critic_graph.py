"""The critic's selection graph, written node by node from the trained weights (no tracing).

The safety loop runs this graph at 1 kHz on a core whose caches other processes keep
evicting, so what counts is how little code and memory one call touches: 15 nodes of 10 op
types, the twin critics side by side in one matrix per layer, the observation normalizer
folded into the first layer's weights, and the observation's share of the first layer
computed once for all candidates. It computes what ``policies.critic.CriticSelector`` (the
torch reference it is checked against) computes:

    inputs   observation (1, D)   the policy's observation
             anchors (3, n)       rows: the action to judge, the hold command, the measured
                                  joint position (rad; the caller copies it from the observation)
             threshold (1,)       risk above which a candidate is rejected
    outputs  chosen (1, n)        first candidate with risk <= threshold, else the least risky
             risk (1, K)          pessimistic Q_risk (max over the twins) of each candidate
             choice (1,)          its index (int64)

Candidates other than the action are judged at their risk + ``switch_margin`` (the ``risk``
output is not shifted).

Every candidate is a fixed mix of the three anchors plus a fixed offset, so all K of them
come out of one ``Gemm``: ``candidates = M @ anchors + offsets``.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from policies.critic import DELTA_CLIP, TwinRiskCritic

# Anchor weights (action, hold, measured position) of the fixed candidates, in
# ``deploy.safety.critic.CANDIDATES`` order: the action, its step scaled to 1/2 and 1/4, hold, stop.
FIXED_MIX = ((1.0, 0.0, 0.0), (0.5, 0.0, 0.5), (0.25, 0.0, 0.75), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))


def candidate_mix(samples: int) -> np.ndarray:
    """``(K, 3)`` anchor weights of every candidate; sampled ones sit at the measured position."""
    return np.array(FIXED_MIX + ((0.0, 0.0, 1.0),) * samples, dtype=np.float32)


def _twin_layers(critic: TwinRiskCritic) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per layer, the twins side by side: ``(in, 2h)`` weights (block-diagonal after the first
    layer) and ``(2h,)`` biases; the last layer gives the two logits."""
    lin1 = [m for m in critic.q1 if isinstance(m, nn.Linear)]
    lin2 = [m for m in critic.q2 if isinstance(m, nn.Linear)]
    layers = []
    for i, (a, b) in enumerate(zip(lin1, lin2, strict=True)):
        wa, wb = a.weight.detach().numpy().T, b.weight.detach().numpy().T  # (in, out)
        if i == 0:
            w = np.concatenate([wa, wb], axis=1)
        else:
            w = np.zeros((wa.shape[0] + wb.shape[0], wa.shape[1] + wb.shape[1]), dtype=np.float32)
            w[: wa.shape[0], : wa.shape[1]] = wa
            w[wa.shape[0] :, wa.shape[1] :] = wb
        bias = np.concatenate([a.bias.detach().numpy(), b.bias.detach().numpy()])
        layers.append((w.astype(np.float32), bias.astype(np.float32)))
    return layers


def build_selection_graph(
    critic: TwinRiskCritic, offsets: np.ndarray, opset: int = 17, switch_margin: float = 0.0
) -> onnx.ModelProto:
    """The selection graph for ``critic`` with the sampled recovery ``offsets`` ``(S, n)`` (rad);
    a candidate other than the action is judged at its risk + ``switch_margin``."""
    d, n = critic.spec.obs_size, critic.spec.n_joints
    k = len(FIXED_MIX) + offsets.shape[0]
    mix = candidate_mix(offsets.shape[0])
    rel = mix - np.array([0.0, 0.0, 1.0], dtype=np.float32)  # anchors -> step from the position
    offs = np.concatenate([np.zeros((len(FIXED_MIX), n), np.float32), offsets.astype(np.float32)])
    mean = critic.obs_mean.numpy().astype(np.float64)
    std = critic.obs_std.numpy().astype(np.float64)
    inv_scale = (1.0 / critic.act_scale.numpy()).astype(np.float32)
    layers = _twin_layers(critic)
    w1, b1 = layers[0]
    w1_obs, w1_act = w1[:d].astype(np.float64), w1[d:]
    w1_obs_folded = (w1_obs / std[:, None]).astype(np.float32)  # (obs - mean) / std folded in
    b1_folded = (b1 - (mean / std) @ w1_obs).astype(np.float32)
    w_out, b_out = layers[-1]
    # The key ArgMin minimizes: risk for a rejected candidate, below any risk for an accepted
    # one (so the first accepted one wins; the least risky when none is accepted).
    accept_key = (-2.0 + 1e-3 * np.arange(k, dtype=np.float32)).reshape(1, k)
    margin = np.full((1, k), switch_margin, np.float32)
    margin[0, 0] = 0.0
    inits = {
        "mix": mix,
        "rel_mix": rel,
        "offsets": offs,
        "inv_scale": inv_scale,
        "clip_lo": np.array(-DELTA_CLIP, np.float32),
        "clip_hi": np.array(DELTA_CLIP, np.float32),
        "w1_obs": w1_obs_folded,
        "b1": b1_folded,
        "w1_act": w1_act,
        "w_out_t": w_out.T.copy(),  # (2, 2h)
        "b_out": b_out.reshape(2, 1),
        "accept_key": accept_key,
        "switch_margin": margin,
    }
    nodes = [
        helper.make_node("Gemm", ["mix", "anchors", "offsets"], ["candidates"]),
        helper.make_node("Gemm", ["rel_mix", "anchors", "offsets"], ["steps"]),
        helper.make_node("Mul", ["steps", "inv_scale"], ["steps_scaled"]),
        helper.make_node("Clip", ["steps_scaled", "clip_lo", "clip_hi"], ["act_features"]),
        helper.make_node("Gemm", ["observation", "w1_obs", "b1"], ["obs_hidden"]),
        helper.make_node("Gemm", ["act_features", "w1_act", "obs_hidden"], ["pre1"]),
        helper.make_node("Relu", ["pre1"], ["h1"]),
    ]
    h = "h1"
    for i, (w, b) in enumerate(layers[1:-1], start=2):
        inits[f"w{i}"], inits[f"b{i}"] = w, b
        nodes += [
            helper.make_node("Gemm", [h, f"w{i}", f"b{i}"], [f"pre{i}"]),
            helper.make_node("Relu", [f"pre{i}"], [f"h{i}"]),
        ]
        h = f"h{i}"
    nodes += [
        helper.make_node("Gemm", ["w_out_t", h, "b_out"], ["logits"], transB=1),  # (2, K)
        helper.make_node("ReduceMax", ["logits"], ["max_logit"], axes=[0], keepdims=1),  # (1, K)
        helper.make_node("Sigmoid", ["max_logit"], ["risk"]),
        helper.make_node("Add", ["risk", "switch_margin"], ["judged"]),
        helper.make_node("Greater", ["judged", "threshold"], ["rejected"]),
        helper.make_node("Where", ["rejected", "judged", "accept_key"], ["key"]),
        helper.make_node("ArgMin", ["key"], ["choice"], axis=1, keepdims=0),
        helper.make_node("Gather", ["candidates", "choice"], ["chosen"], axis=0),
    ]
    graph = helper.make_graph(
        nodes,
        "spine_critic_selection",
        [
            helper.make_tensor_value_info("observation", TensorProto.FLOAT, [1, d]),
            helper.make_tensor_value_info("anchors", TensorProto.FLOAT, [3, n]),
            helper.make_tensor_value_info("threshold", TensorProto.FLOAT, [1]),
        ],
        [
            helper.make_tensor_value_info("chosen", TensorProto.FLOAT, [1, n]),
            helper.make_tensor_value_info("risk", TensorProto.FLOAT, [1, k]),
            helper.make_tensor_value_info("choice", TensorProto.INT64, [1]),
        ],
        [numpy_helper.from_array(np.ascontiguousarray(v), name) for name, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 8)
    onnx.checker.check_model(model)
    return model
