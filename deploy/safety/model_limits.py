"""The safety filter in a MuJoCo loop at the physics rate, with faults injected: the harness of
the fault-injection tests and ``benchmarks/safety_efficacy.py``.

The policy runs at the task's control rate (25 Hz); the filter ticks at every physics step
(500 Hz for arm7) and sets the actuator targets; safety costs are read from the task after
every physics step and a control period counts as violating if any of its ticks did.
Without a filter the command goes straight to the actuators, except that a non-finite one is
dropped by the driver (the previous command stays), as any motor driver would do.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deploy.safety.interface import FilterEngine
from deploy.safety.limits import Stage
from sim.faults import FaultInjector
from sim.observation import build_observation

Policy = Callable[[Mapping[str, np.ndarray]], np.ndarray]


@dataclass
class EpisodeResult:
    """One episode's outcome.

    Attributes:
        success: the task's success at the last step.
        violation_steps: control periods with any safety cost.
        costs: control periods with each cost kind.
        stages: filter ticks on which each stage acted.
        ticks: filter ticks run.
        risks: the risk reported at each policy tick (NaN without a critic).
        commands: every command sent ``(ticks, n)`` (rad), when ``keep_commands``.
        positions: measured joint positions ``(ticks, n)`` (rad), when ``keep_commands``.
    """

    success: bool = False
    violation_steps: int = 0
    costs: Counter[str] = field(default_factory=Counter)
    stages: Counter[str] = field(default_factory=Counter)
    ticks: int = 0
    risks: list[float] = field(default_factory=list)
    commands: np.ndarray | None = None
    positions: np.ndarray | None = None


def run_episode(
    env: Any,
    policy: Policy,
    filt: FilterEngine | None,
    fault: FaultInjector,
    seed: int,
    steps: int | None = None,
    keep_commands: bool = False,
) -> EpisodeResult:
    """One episode of ``env`` (an arm7 goal-env) with ``policy`` behind ``filt``.

    Args:
        env: the task env (its ``physics``, ``substeps`` and ``_info`` are used).
        policy: named state -> joint targets ``(n,)`` (rad), called at the control rate.
        filt: the safety filter, or None for none.
        fault: the fault to inject (``FaultSpec("none")`` for nominal runs).
        seed: the episode's reset seed (also reseeds the fault's draws).
        steps: control steps (default: the task's ``episode_steps``).
        keep_commands: record every command and measured position.
    """
    base = env.unwrapped
    spec, physics, substeps = env.task_spec, base.physics, base.substeps
    dt = physics.timestep
    env.reset(seed=seed)
    fault.reset(seed)
    state = env.state()
    if filt is not None:
        filt.reset(state["joint_pos"])
    res = EpisodeResult()
    cmd: np.ndarray | None = None
    cmd_time, seen, seen_time = -np.inf, state, 0.0
    out = np.asarray(state["joint_pos"], dtype=np.float64)
    cmds, qs = [], []
    info: dict[str, Any] = {}
    for k in range(steps or spec.episode_steps):
        violated: set[str] = set()
        for s in range(substeps):
            now = (k * substeps + s) * dt
            truth = env.state()
            got = fault.sensor(now, truth)
            if got is not None:
                seen, seen_time = got, now
            if s == 0:
                new = fault.policy(now, policy(seen), seen["joint_pos"])
                if new is not None:
                    cmd, cmd_time = new, now
            if filt is None:
                if cmd is not None and np.all(np.isfinite(cmd)):
                    out = cmd
            else:
                obs = build_observation(seen, spec.observation)
                report = filt.tick(
                    cmd, seen["joint_pos"], now - cmd_time, observation=obs, state_age=now - seen_time
                )
                out = report.command
                res.stages.update(report.stages.names())
                if s == 0:
                    res.risks.append(report.risk)
            physics.set_targets(out)
            physics.step(1)
            res.ticks += 1
            if keep_commands:
                cmds.append(np.array(out, dtype=np.float64))
                qs.append(truth["joint_pos"])
            info = base._info()
            violated.update(kind for kind, v in info["cost"].items() if v > 0)
        res.costs.update(violated)
        res.violation_steps += bool(violated)
    res.success = bool(info.get("is_success", False))
    if keep_commands:
        res.commands, res.positions = np.asarray(cmds), np.asarray(qs)
    return res


def stage_counts(results: list[EpisodeResult]) -> dict[str, int]:
    """Ticks each stage acted on, summed over episodes (every stage listed)."""
    total: Counter[str] = Counter()
    for r in results:
        total.update(r.stages)
    return {s.name.lower(): total.get(s.name.lower(), 0) for s in Stage if s}


def sim_chain(env: Any, site: str | None = None) -> Any:
    """The kinematic chain of a sim arm (world -> ``site``, default the robot's end-effector
    site, through the task's joints in command order), read from its MuJoCo model: what the
    workspace box and the Cartesian rate limit need."""
    from deploy.safety.kinematics import chain_from_mujoco

    base = env.unwrapped
    site = site or getattr(getattr(base, "robot", None), "EE_SITE", "ee")
    return chain_from_mujoco(base.physics.model, tuple(base.task_spec.joint_names), site)


def sim_limits(env: Any, config: Any, tick_hz: float | None = None) -> Any:
    """``SafetyLimits`` of a sim robot under a ``SafetyConfig`` (``configs/safety/``), ticking
    at ``tick_hz`` (default: the physics rate); the chain is read from the model when the
    configuration needs one."""
    base = env.unwrapped
    hz = tick_hz or 1.0 / base.physics.timestep
    chain = sim_chain(env) if config.needs_chain else None
    return config.limits(base.task_spec, tick_hz=hz, chain=chain)


def arm_limits(env: Any, tick_hz: float | None = None, floor: float | None = 0.02, **kwargs: Any) -> Any:
    """``SafetyLimits`` for an arm7 env at the physics rate (default): the spec's joint
    limits, and with ``floor`` (m) a workspace box in front of the arm whose bottom keeps
    the end effector ``floor`` above the table (MuJoCo is needed here, once, for the chain)."""
    from deploy.safety.kinematics import chain_from_mujoco
    from deploy.safety.limits import SafetyLimits
    from sim.robots.arm7 import constants as c

    base = env.unwrapped
    hz = tick_hz or 1.0 / base.physics.timestep
    if floor is not None:
        kwargs.setdefault("chain", chain_from_mujoco(base.physics.model, c.JOINT_NAMES, c.EE_SITE))
        kwargs.setdefault("workspace_low", (0.1, -0.6, floor))
        kwargs.setdefault("workspace_high", (0.9, 0.6, 0.9))
    return SafetyLimits.from_spec(env.task_spec, margin=0.08, tick_hz=hz, **kwargs)
