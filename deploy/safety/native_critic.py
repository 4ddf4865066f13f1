"""The critic's selection graph as one C call, for the 1 kHz safety loop.

``critic.onnx`` stays the artifact and onnxruntime (``deploy.safety.critic.OnnxCritic``) the
reference: ``NativeOnnxCritic`` reads the graph's initializers from the file, checks that the
graph is ``deploy.export.critic_graph``'s selection graph node for node, builds the C evaluator
(``deploy/safety/native/critic.c``, compiled at install) from them and then checks it against
onnxruntime on random inputs. Only a graph that passes both checks runs natively;
``NativeUnavailable`` says why not, and ``deploy.safety.engines.open_critic`` then falls back
to onnxruntime.

Why: on one core the onnxruntime call of the 13-candidate, 2 x 64 twin critic costs
10-20 µs hot and walks a large amount of code (session, execution frame, 17 kernels), which
a 1 kHz loop on a shared machine finds evicted from the caches after each sleep. The C call
is one blocked matrix kernel (AVX2 + FMA where the CPU has them) over ~40 KB of weights,
with no allocation (benchmarks/RESULTS.md, "Safety filter and critic").
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from deploy.safety.critic import OnnxCritic
from deploy.safety.extension import NativeUnavailable, extension
from sim.spec import TaskSpec

# The selection graph's op types in order; the (Gemm, Relu) pair repeats once per hidden
# layer after the first (deploy/export/critic_graph.py).
HEAD = ("Gemm", "Gemm", "Mul", "Clip", "Gemm", "Gemm", "Relu")
HIDDEN = ("Gemm", "Relu")
TAIL = ("Gemm", "ReduceMax", "Sigmoid", "Add", "Greater", "Where", "ArgMin", "Gather")
PARITY_SAMPLES = 256
RISK_TOLERANCE = 1e-4  # largest |risk_native - risk_onnxruntime| accepted at load
TIE = 1e-4  # judged risks this close to the threshold or to each other may choose either way


def _initializers(path: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """Op types and initializers of the graph in ``path``."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as e:
        raise NativeUnavailable(f"reading {path.name}'s weights needs the onnx package ({e})") from None
    model = onnx.load(str(path))
    ops = [node.op_type for node in model.graph.node]
    return ops, {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def _floats(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32).reshape(-1)


def build_native(path: Path, pos_offset: int) -> tuple[Any, dict[str, np.ndarray]]:
    """The C evaluator of the selection graph in ``path`` and the graph's initializers (no
    parity check yet: see ``parity``)."""
    ext = extension()
    ops, init = _initializers(path)
    n_hidden = (len(ops) - len(HEAD) - len(TAIL)) // 2
    if n_hidden < 0 or tuple(ops) != HEAD + HIDDEN * n_hidden + TAIL:
        raise NativeUnavailable(f"{path.name} is not the critic selection graph (ops {ops})")
    k, n = init["offsets"].shape
    d, w = init["w1_obs"].shape
    hidden = []
    for i in range(2, 2 + n_hidden):
        wi, h = init[f"w{i}"], w // 2
        off_diagonal = np.abs(wi[:h, h:]).max() + np.abs(wi[h:, :h]).max()
        if wi.shape != (w, w) or off_diagonal != 0.0:
            raise NativeUnavailable(f"{path.name}: layer {i} is not the twins' block-diagonal ({w}, {w})")
        hidden.append((_floats(np.stack([wi[:h, :h], wi[h:, h:]])), _floats(init[f"b{i}"])))
    try:
        native = ext.NativeCritic(
            k,
            n,
            d,
            w,
            pos_offset,
            _floats(init["mix"]),
            _floats(init["rel_mix"]),
            _floats(init["offsets"]),
            _floats(init["inv_scale"]),
            float(init["clip_lo"].reshape(-1)[0]),
            float(init["clip_hi"].reshape(-1)[0]),
            _floats(init["w1_obs"]),
            _floats(init["b1"]),
            _floats(init["w1_act"]),
            hidden,
            _floats(init["w_out_t"]),
            _floats(init["b_out"]),
            _floats(init["accept_key"]),
            _floats(init["switch_margin"]),
        )
    except ValueError as e:
        raise NativeUnavailable(f"{path.name}: {e}") from None
    return native, init


def parity(
    native: Any, init: dict[str, np.ndarray], reference: Callable[..., Any], joints: slice, seed: int = 0
) -> dict[str, float]:
    """Compare the C evaluator with ``reference`` (onnxruntime: ``(obs, action, hold,
    threshold) -> (risks, chosen, choice)``) on random observations, actions and thresholds;
    raise ``NativeUnavailable`` on a mismatch. ``joints``: the observation's joint_pos field."""
    rng = np.random.default_rng(seed)
    k, d = init["offsets"].shape[0], init["w1_obs"].shape[0]
    scale = 1.0 / np.maximum(init["inv_scale"].astype(np.float64), 1e-6)  # the action scale (rad)
    margin = init["switch_margin"].reshape(-1)
    chosen, risk = np.zeros(joints.stop - joints.start), np.zeros(k)
    worst = 0.0
    for _ in range(PARITY_SAMPLES):
        obs = rng.normal(0.0, 1.0, d)
        pos = obs[joints]
        action = pos + rng.uniform(-1.5, 1.5, pos.size) * scale  # some steps beyond the clip
        hold = pos + rng.uniform(-0.5, 0.5, pos.size) * scale
        threshold = float(rng.uniform(0.02, 0.98))
        r_ref, c_ref, i_ref = reference(obs, action, hold, threshold)
        i_nat = native.run(obs, action, hold, threshold, chosen, risk)
        worst = max(worst, float(np.abs(risk - r_ref).max()))
        judged = r_ref + margin
        near = np.abs(judged - threshold).min() < TIE or np.sort(judged)[1] - judged.min() < TIE
        if i_nat != i_ref and not near:
            raise NativeUnavailable(f"choice {i_nat} vs onnxruntime's {i_ref} at threshold {threshold:.3f}")
        if i_nat == i_ref and np.abs(chosen - c_ref).max() > 1e-5:
            raise NativeUnavailable("the chosen command differs from onnxruntime's")
    if worst > RISK_TOLERANCE:
        raise NativeUnavailable(f"risk differs from onnxruntime's by {worst:.2e} (> {RISK_TOLERANCE})")
    return {"samples": PARITY_SAMPLES, "max_abs_risk_error": worst}


class NativeOnnxCritic(OnnxCritic):
    """``critic.onnx`` on the C evaluator built from its weights, with ``OnnxCritic``'s
    interface; checked against onnxruntime at load.

    Args:
        path: the critic graph.
        robot: the robot's spec; a contract that differs is refused, naming the field.
        threads: onnxruntime intra-op threads (the reference the load-time check runs).

    Attributes:
        evaluator: the C evaluator (``deploy.safety._native.NativeCritic``), which the C
            filter's tick calls directly.
        native_parity: the load-time comparison with onnxruntime.

    Raises:
        NativeUnavailable: the extension is not built, the graph is not the selection graph,
            or the C evaluator disagrees with onnxruntime.
    """

    engine = "native"

    def __init__(self, path: Path | str, robot: TaskSpec | None = None, threads: int = 1) -> None:
        extension()  # not built: say so before loading anything
        super().__init__(path, robot, threads)
        self.evaluator, init = build_native(self.path, self._q.start)
        self.native_parity = parity(self.evaluator, init, self.run_onnxruntime, self._q)
        self._native_chosen = np.zeros(self.contract.task.n_joints)
        self._native_risk = np.zeros(self.k)

    def run(
        self, observation: np.ndarray, action: np.ndarray, hold: np.ndarray, threshold: float
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """``OnnxCritic.run`` on the C evaluator (float64 or float32 inputs, no allocation but
        the results)."""
        choice = self.evaluator.run(
            observation, action, hold, threshold, self._native_chosen, self._native_risk
        )
        return self._native_risk.copy(), self._native_chosen.copy(), choice
