"""Which engine runs the safety filter and the critic: the one place that picks.

    filt = make_filter(limits, critic=load_critic(path, robot_spec, tick_hz=1000))
    filt.engine, filt.engine_note        # "native", "" -- or "python", "python (why not C)"

Filter engines: ``SafetyFilter`` (deploy/safety/filter.py), the numpy reference, and
``NativeSafetyFilter`` (deploy/safety/native_filter.py), the same stages in C with
bit-identical results. Critic engines: ``OnnxCritic`` (onnxruntime, the reference) and
``NativeOnnxCritic`` (the graph's C evaluator, checked against onnxruntime at load). The C
filter needs the C critic: it calls the critic's evaluator inside its tick.

A robot whose commands are normalized (``task.action.kind == "normalized"``: dm_control's
motor commands) gets the normalized stage instead (``NormalizedFilter``,
deploy/safety/normalized.py: numpy only, no critic): ``limits_for`` builds its
``NormalizedLimits`` from the robot's spec and the safety configuration, and ``make_filter``
picks the stage by the limits it is given.
"""

from __future__ import annotations

from pathlib import Path

from deploy.safety.config import SafetyConfig
from deploy.safety.critic import CriticGuard, OnnxCritic
from deploy.safety.extension import NativeUnavailable
from deploy.safety.filter import SafetyFilter
from deploy.safety.interface import FilterEngine, RiskCritic
from deploy.safety.kinematics import SerialChain
from deploy.safety.limits import SafetyLimits
from deploy.safety.native_critic import NativeOnnxCritic
from deploy.safety.native_filter import NativeSafetyFilter
from deploy.safety.normalized import NORMALIZED, NormalizedFilter, NormalizedLimits
from sim.spec import TaskSpec

FILTER_ENGINES = ("auto", "native", "python")
CRITIC_ENGINES = ("auto", "native", "onnxruntime")


def limits_for(
    config: SafetyConfig, robot: TaskSpec, tick_hz: float | None = None, chain: SerialChain | None = None
) -> SafetyLimits | NormalizedLimits:
    """What the filter enforces on ``robot`` under ``config``: ``config.limits(...)`` for joint
    commands; for normalized ones, ``NormalizedLimits`` (bounds from the spec's action, rate
    limit ``config.action_rate``, watchdog ``watchdog_periods`` then zero past ``damp_periods``).
    """
    if robot.action.kind != NORMALIZED:
        return config.limits(robot, tick_hz, chain)
    if config.needs_chain:
        raise ValueError(
            f"the safety config sets a workspace box or ee_speed_max; robot {robot.robot!r} takes "
            "normalized commands and has no end effector to bound"
        )
    return NormalizedLimits.from_spec(
        robot, config.action_rate, config.tick_hz or tick_hz, config.watchdog_periods, config.damp_periods
    )


def make_filter(
    limits: SafetyLimits | NormalizedLimits, critic: RiskCritic | None = None, engine: str = "auto"
) -> FilterEngine:
    """The safety filter for ``limits`` (and ``critic``, stage 3) on ``engine``.

    Args:
        limits: what to enforce; ``NormalizedLimits`` get the normalized stage (no C engine,
            no critic: ``engine="native"`` or a critic raises ``ValueError``).
        critic: a learned critic, or None for the deterministic stages only.
        engine: ``"native"``: the C engine, or a ``ValueError`` saying why not; ``"python"``:
            the numpy reference; ``"auto"``: native where the C extension is built and the
            critic (if any) runs in C (its evaluator passed its check against onnxruntime),
            else the reference, with ``engine_note`` saying why.
    """
    if engine not in FILTER_ENGINES:
        raise ValueError(f"safety filter engine {engine!r} is not one of {FILTER_ENGINES}")
    if isinstance(limits, NormalizedLimits):
        if engine == "native":
            raise ValueError("safety filter: the normalized stage has no native engine")
        filt = NormalizedFilter(limits, critic)
        filt.engine_note = "python (the normalized stage has no C engine)" if engine == "auto" else ""
        return filt
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
