"""Which engine runs the safety filter and the critic: the one place that picks.

    filt = make_filter(limits, critic=load_critic(path, robot_spec, tick_hz=1000))
    filt.engine, filt.engine_note        # "native", "" -- or "python", "python (why not C)"

Filter engines: ``SafetyFilter`` (deploy/safety/filter.py), the numpy reference, and
``NativeSafetyFilter`` (deploy/safety/native_filter.py), the same stages in C with
bit-identical results. Critic engines: ``OnnxCritic`` (onnxruntime, the reference) and
``NativeOnnxCritic`` (the graph's C evaluator, checked against onnxruntime at load). The C
filter needs the C critic: it calls the critic's evaluator inside its tick.
"""

from __future__ import annotations

from pathlib import Path

from deploy.safety.critic import CriticGuard, OnnxCritic
from deploy.safety.extension import NativeUnavailable
from deploy.safety.filter import SafetyFilter
from deploy.safety.interface import FilterEngine, RiskCritic
from deploy.safety.limits import SafetyLimits
from deploy.safety.native_critic import NativeOnnxCritic
from deploy.safety.native_filter import NativeSafetyFilter
from sim.spec import TaskSpec

FILTER_ENGINES = ("auto", "native", "python")
CRITIC_ENGINES = ("auto", "native", "onnxruntime")


def make_filter(limits: SafetyLimits, critic: RiskCritic | None = None, engine: str = "auto") -> FilterEngine:
    """The safety filter for ``limits`` (and ``critic``, stage 3) on ``engine``.

    Args:
        limits: what to enforce.
        critic: a learned critic, or None for the deterministic stages only.
        engine: ``"native"``: the C engine, or a ``ValueError`` saying why not; ``"python"``:
            the numpy reference; ``"auto"``: native where the C extension is built and the
            critic (if any) runs in C (its evaluator passed its check against onnxruntime),
            else the reference, with ``engine_note`` saying why.
    """
    if engine not in FILTER_ENGINES:
        raise ValueError(f"safety filter engine {engine!r} is not one of {FILTER_ENGINES}")
    if engine == "python":
        return SafetyFilter(limits, critic)
    try:
        return NativeSafetyFilter(limits, critic)
    except NativeUnavailable as e:
        if engine == "native":
            raise ValueError(f"safety filter: no native engine: {e}") from None
        filt = SafetyFilter(limits, critic)
        filt.engine_note = f"python ({e})"
        return filt


def open_critic(
    path: Path | str, robot: TaskSpec | None = None, engine: str = "auto", threads: int = 1
) -> OnnxCritic:
    """``critic.onnx`` on ``engine``: ``"native"`` (the C evaluator, or a ``ValueError`` saying
    why not), ``"onnxruntime"``, or ``"auto"`` (native where it loads and passes its check,
    else onnxruntime, with ``engine_note`` saying why). ``robot``: the contract is checked
    against it, naming the field at fault."""
    if engine not in CRITIC_ENGINES:
        raise ValueError(f"critic engine {engine!r} is not one of {CRITIC_ENGINES}")
    note = ""
    if engine != "onnxruntime":
        try:
            return NativeOnnxCritic(path, robot, threads)
        except NativeUnavailable as e:
            if engine == "native":
                raise ValueError(f"critic {path}: no native engine: {e}") from None
            note = f"onnxruntime (native engine unavailable: {e})"
    critic = OnnxCritic(path, robot, threads)
    critic.engine_note = note
    return critic


def load_critic(
    path: Path | str,
    robot: TaskSpec,
    tick_hz: float | None = None,
    threshold: float | None = None,
    engine: str = "auto",
) -> CriticGuard:
    """Load ``critic.onnx`` for ``robot`` (contract checked, naming the field at fault) as the
    filter's stage 3; an unchanged command is re-judged at the contract's ``critic_hz`` when
    ``tick_hz`` is given; ``engine`` as ``open_critic``'s."""
    critic = open_critic(path, robot, engine)
    hz = critic.contract.critic_hz
    period = max(1, round(tick_hz / hz)) if (tick_hz and hz) else 1
    return CriticGuard(critic, threshold, period)
