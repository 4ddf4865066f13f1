"""The safety critic's export: a checkpoint (``policies.critic``) -> one ONNX selection graph.

The graph (``critic.onnx``, built by ``deploy.export.critic_graph``) does the whole of stage 3 of
the safety filter in one call:

    inputs   observation (1, D), anchors (3, n) rad (rows: the action to judge, the hold
             command, the measured position), threshold (1,)
    outputs  chosen (1, n)    the first candidate (in ``deploy.safety.critic.CANDIDATES`` order) whose
                              risk is <= threshold, else the least risky one
             risk (1, K)      pessimistic Q_risk of each candidate
             choice (1,)      its index (int64; 0 = the policy's action)

Candidates: the action, the action scaled back to 1/2 and 1/4 of its step from the measured
position, the hold command, the measured position (stop), and ``samples`` fixed recovery
actions around the measured position (the argmin over sampled actions of Recovery RL).
``CriticSelector`` is the torch reference the graph is checked against at export.
The contract (family ``safety_critic``) is in ``metadata_props`` as for policies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deploy.export.critic_graph import build_selection_graph
from policies.critic import N_FIXED, CriticSelector, load_critic_checkpoint, recovery_offsets
from sim.contract import PolicyContract, TensorSpec
from sim.integrity import stamp
from sim.spec import TaskSpec

CRITIC_FILE = "critic.onnx"
CRITIC_KEY = "spine.critic"  # metadata_props key of the selection settings (JSON)
CONTRACT_KEY = "spine.contract"


def io_spec(spec: TaskSpec, k: int) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    n = spec.n_joints
    inputs = (
        TensorSpec("observation", (1, spec.obs_size), description="policy observation, task field order"),
        TensorSpec(
            "anchors",
            (3, n),
            description="rows: joint targets to judge, last safe command, measured position (rad)",
        ),
        TensorSpec("threshold", (1,), description="risk above which a safer candidate is chosen"),
    )
    outputs = (
        TensorSpec("chosen", (1, n), description="selected joint targets (rad)"),
        TensorSpec("risk", (1, k), description="pessimistic Q_risk per candidate"),
        TensorSpec("choice", (1,), "int64", "selected candidate index (0: the action)"),
    )
    return inputs, outputs


def export_critic(
    checkpoint: Path, out: Path, opset: int = 17, tolerance: float = 1e-4, samples: int = 256
) -> dict[str, Any]:
    """Export the critic in ``checkpoint`` to ``out`` (an ``.onnx`` path); returns a report with
    the torch/onnxruntime parity error over random inputs. Refuses an unfitted normalizer."""
    import onnx
    import onnxruntime as ort

    critic, meta = load_critic_checkpoint(checkpoint)
    if float(critic.fitted) != 1.0:
        raise ValueError(f"{checkpoint}: the critic's observation normalizer was never fitted")
    spec, cfg = critic.spec, critic.config
    offsets = recovery_offsets(spec, cfg)
    selector = CriticSelector(critic, offsets, cfg.switch_margin).eval()
    k = N_FIXED + cfg.samples
    inputs, outputs = io_spec(spec, k)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = build_selection_graph(critic, offsets, opset, cfg.switch_margin)
    contract = PolicyContract(
        family="safety_critic",
        task=spec,
        inputs=inputs,
        outputs=outputs,
        policy_hz=spec.control_hz,
        critic_hz=meta.get("critic_hz"),
        opset=opset,
        weights_sha256=meta.get("weights_sha256", ""),
        train_config=meta.get("train_config", {}),
    )
    settings = {
        "threshold": cfg.threshold,
        "switch_margin": cfg.switch_margin,
        "gamma": cfg.gamma,
        "candidates": k,
        "samples": cfg.samples,
    }
    onnx.helper.set_model_props(
        model,
        {CONTRACT_KEY: contract.to_json(), CRITIC_KEY: json.dumps(settings), "spine.family": "safety_critic"},
    )
    stamp(model)  # the graph's hash, checked when the critic is loaded (sim.integrity)
    onnx.save(model, str(out))
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    mean, std = critic.obs_mean.numpy(), critic.obs_std.numpy()
    err, agree, chosen_err = 0.0, 0, 0.0
    for _ in range(samples):
        obs = (mean + 2.0 * std * rng.standard_normal(mean.size)).astype(np.float32)[None]
        q = obs[:, critic.q_index : critic.q_index + spec.n_joints]
        act = (q + rng.normal(0, 3, q.shape) * np.asarray(spec.action.max_delta)).astype(np.float32)
        thr = np.array([rng.uniform(0.05, 0.95)], np.float32)
        hold = (q + rng.normal(0, 1, q.shape) * np.asarray(spec.action.max_delta)).astype(np.float32)
        feed = {"observation": obs, "anchors": np.concatenate([act, hold, q]), "threshold": thr}
        with torch.no_grad():
            ref = selector(*(torch.as_tensor(x) for x in (obs, act, hold, thr)))
        got = sess.run(None, feed)
        err = max(err, float(np.max(np.abs(ref[1].numpy() - got[1]))))
        if ref[2].item() == got[2][0]:
            agree += 1
            chosen_err = max(chosen_err, float(np.max(np.abs(ref[0].numpy() - got[0]))))
    report = {
        "checkpoint": str(checkpoint),
        "onnx": str(out),
        "candidates": k,
        "parity": {
            "samples": samples,
            "max_abs_risk_error": err,
            "choice_agreement": agree / samples,
            "max_abs_chosen_error": chosen_err,  # over the samples whose choice agrees
        },
        **settings,
    }
    if not (err <= tolerance and chosen_err <= tolerance):
        raise ValueError(
            f"{out}: max |torch - onnxruntime| risk = {err:.3g}, chosen = {chosen_err:.3g} > {tolerance:g}"
        )
    return report
