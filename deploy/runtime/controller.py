"""The Controller: raw robot state in, safe joint command out. Used by sim runs, ROS nodes
and log replay alike, with no torch.

    ctrl = Controller("runs/demo/bundle", robot_spec)
    ctrl.reset(state)
    command = ctrl.step(state)        # state: {"joint_pos": (7,), "joint_vel": (7,), ...}

``step`` is ``policy_tick`` (the policy, at the contract's rate) then ``safety_tick`` (the
filter, which may run faster and holds the latest policy command in between). The policy is
the bundle's graphs as one (``deploy.runtime.agents``): a chunked policy plans when its queue runs out,
a hierarchical one runs its high level at ``high_level_hz``. A deadline monitor counts the ticks
whose policy + filter time overran ``deadline_us`` (default: one policy period).

The learned safety critic (``critic.onnx``, from ``spine-train-critic``) joins the filter when
it is passed as ``critic=`` or lies in the bundle folder; its contract is checked against the
robot like the policy's. Every tick then reports the critic's risk and whether it vetoed.

A robot whose commands are normalized (``robot.action.kind == "normalized"``, dm_control's
motor commands) gets the normalized safety stage (``deploy.safety.normalized``: input guard,
watchdog, clip to the action bounds, rate limit) instead of the joint filter; it starts each
episode from a zero command, reads no joint state and takes no critic.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deploy.runtime.agents import load_agent
from deploy.runtime.bundle import Bundle, load_bundle
from deploy.runtime.deadline import DeadlineMonitor
from deploy.safety.config import SafetyConfig, load_safety_config
from deploy.safety.critic import CriticGuard
from deploy.safety.engines import limits_for, load_critic, make_filter
from deploy.safety.filter import SafetyLimits, Stage, TickReport
from deploy.safety.kinematics import SerialChain
from deploy.safety.normalized import NORMALIZED, NormalizedLimits
from sim.observation import ObservationError, build_observation, field_vector
from sim.spec import JOINT_POS, TaskSpec

State = Mapping[str, object]
CRITIC_FILE = "critic.onnx"  # a critic in the bundle folder is used unless critic=False


@dataclass(frozen=True)
class TickInfo:
    """What happened on one tick, for logs and reports."""

    command: np.ndarray  # safe command sent to the robot (rad; normalized commands: unit 1)
    policy_command: np.ndarray | None  # latest raw policy output (same unit), None before the first
    stages: Stage  # safety stages that changed the command
    policy_ran: bool  # whether the policy ran on this tick
    policy_us: float  # policy inference time on this tick (µs; 0 if it did not run)
    filter_us: float  # safety filter time (µs)
    error: str = ""  # why the policy could not run on this tick, if it could not
    late: bool = False  # policy + filter time overran the deadline on this tick
    risk: float = math.nan  # critic's Q_risk of the policy command (NaN: no critic / not yet)
    critic_ran: bool = False  # the critic was evaluated on this tick (else ``risk`` is held)
    choice: int = -1  # critic's choice: 0 kept the policy command, > 0 a recovery, -1 no critic


class Controller:
    """Policy (onnxruntime) + deterministic safety filter for one robot.

    Args:
        bundle: a bundle folder or a loaded ``Bundle``.
        robot: the robot's spec; the bundle's contract must match it (else ``ContractMismatch``).
        limits: safety limits; by default those of ``safety`` for this robot
            (``NormalizedLimits`` for a robot with normalized commands).
        threads: onnxruntime threads (1 on a robot: predictable latency).
        seed: seed of a chunked policy's noise generator (reproducible runs).
        chunk_mode: chunked policies: ``"receding"`` (execute ``execute_steps`` targets, then
            re-plan) or ``"ensemble"`` (temporal ensembling, a plan every ``ensemble_every`` ticks).
        ensemble_every: ticks between plans in ``"ensemble"`` mode.
        deadline_us: time budget of one tick's policy + filter work (µs; default: one period).
        critic: the learned safety critic: a ``CriticGuard``, a ``critic.onnx`` path, None (use
            the bundle folder's ``critic.onnx`` when there is one) or False (none). A robot with
            normalized commands takes none: a critic given or in the bundle is refused.
        safety: the safety configuration (``configs/safety/``): a ``SafetyConfig``, a name or a
            YAML path; None: the shipped default. Ignored for the limits when ``limits`` is given.
        chain: the arm's kinematic chain, needed when ``safety`` sets a workspace box or a
            Cartesian rate limit.
    """

    def __init__(
        self,
        bundle: Bundle | Path | str,
        robot: TaskSpec,
        limits: SafetyLimits | NormalizedLimits | None = None,
        threads: int = 1,
        *,
        seed: int = 0,
        chunk_mode: str = "receding",
        ensemble_every: int = 1,
        deadline_us: float | None = None,
        critic: CriticGuard | Path | str | bool | None = None,
        safety: SafetyConfig | Path | str | None = None,
        chain: SerialChain | None = None,
    ) -> None:
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        self.contract = self.bundle.contract
        self.contract.check_robot(robot)
        self.robot = robot
        self.normalized = robot.action.kind == NORMALIZED  # no joint state, no critic: a zero start
        self.policy = load_agent(self.bundle, threads, seed, chunk_mode, ensemble_every)
        self.safety = safety if isinstance(safety, SafetyConfig) else load_safety_config(safety)
        limits = limits or limits_for(self.safety, robot, chain=chain)
        self.critic = self._critic(critic, robot, 1.0 / limits.tick_period)
        self.filter = make_filter(limits, critic=self.critic)
        self.last_report: TickReport | None = None
        self.policy_period = 1.0 / self.contract.policy_hz
        self.deadline = DeadlineMonitor(deadline_us or self.policy_period * 1e6)
        self.ticks = 0
        self._command: np.ndarray | None = None
        self._command_time = -np.inf
        self._last_policy_time = -np.inf

    def _critic(
        self, critic: CriticGuard | Path | str | bool | None, robot: TaskSpec, tick_hz: float
    ) -> CriticGuard | None:
        if critic is False:
            return None
        given = critic is not None and critic is not True
        if self.normalized and (given or (self.bundle.path / CRITIC_FILE).is_file()):
            where = critic if given else self.bundle.path / CRITIC_FILE
            raise ValueError(
                f"critic {where}: a learned safety critic is not supported for normalized commands "
                f"(robot {robot.robot!r}); run without one (spine-run --no-critic)"
            )
        if isinstance(critic, CriticGuard):
            critic.critic.contract.check_robot(robot)
            return critic
        if critic is None or critic is True:
            path = self.bundle.path / CRITIC_FILE
            if not path.is_file():
                if critic is True:
                    raise FileNotFoundError(f"critic=True but {path} does not exist")
                return None
            critic = path
        return load_critic(critic, robot, tick_hz=tick_hz, threshold=self.safety.critic_threshold)

    def reset(self, state: State) -> None:
        """Start an episode at the measured state (its joint positions must be finite; a
        robot with normalized commands starts from a zero command and reads none)."""
        start = np.zeros(self.robot.n_joints) if self.normalized else state[JOINT_POS]
        self.filter.reset(np.asarray(start, dtype=np.float64))
        reset_policy = getattr(self.policy, "reset", None)  # stateful: chunk queue, held subgoal
        if reset_policy is not None:
            reset_policy()
        self.ticks = 0
        self._command = None
        self._command_time = -np.inf
        self._last_policy_time = -np.inf

    def policy_due(self, now: float) -> bool:
        return now - self._last_policy_time >= self.policy_period - 1e-9

    def policy_tick(self, state: State, now: float) -> tuple[float, str]:
        """Run the policy on ``state``; returns (inference µs, error or "").

        Invalid input (missing field, NaN, Inf) yields a NaN command that the input guard
        rejects, so the robot holds from this tick on, not after the watchdog's delay.
        """
        self._last_policy_time = now
        task = self.contract.task
        try:
            obs = build_observation(state, task.observation)
            goal = field_vector(state, task.goal)
        except ObservationError as e:
            self._command, self._command_time = np.full(task.n_joints, np.nan), now
            return 0.0, str(e)
        if not (np.all(np.isfinite(obs)) and np.all(np.isfinite(goal))):
            self._command, self._command_time = np.full(task.n_joints, np.nan), now
            return 0.0, "non-finite observation"
        t0 = time.perf_counter_ns()
        self._command = self.policy(observation=obs, goal=goal).astype(np.float64)
        self._command_time = now
        return (time.perf_counter_ns() - t0) / 1e3, ""

    def safety_tick(self, state: State, now: float) -> tuple[np.ndarray, Stage, float]:
        """Filter the latest policy command against ``state``; returns (command, stages, µs)."""
        t0 = time.perf_counter_ns()
        if self.normalized:
            q = None  # the normalized stage reads no joint state
        else:
            q = state.get(JOINT_POS)
            q = np.full(self.robot.n_joints, np.nan) if q is None else np.asarray(q, dtype=np.float64)
        obs = self._critic_observation(state) if self.critic is not None else None
        report = self.filter.tick(self._command, q, now - self._command_time, observation=obs)
        self.last_report = report
        return report.command, report.stages, (time.perf_counter_ns() - t0) / 1e3

    def _critic_observation(self, state: State) -> np.ndarray | None:
        """The critic's observation vector from ``state`` (None when it cannot be built: the
        critic stage is then skipped and the deterministic stages still run)."""
        assert self.critic is not None
        try:
            return build_observation(state, self.critic.critic.contract.task.observation)
        except ObservationError:
            return None

    def step_info(self, state: State, now: float | None = None) -> TickInfo:
        """One tick at time ``now`` (s; default: ticks x policy period), with its details."""
        now = self.ticks * self.policy_period if now is None else now
        ran = self.policy_due(now)
        policy_us, error = self.policy_tick(state, now) if ran else (0.0, "")
        command, stages, filter_us = self.safety_tick(state, now)
        late = self.deadline.record(policy_us + filter_us)
        self.ticks += 1
        raw = None if self._command is None else self._command.copy()
        r = self.last_report
        assert r is not None
        return TickInfo(
            command, raw, stages, ran, policy_us, filter_us, error, late, r.risk, r.critic_ran, r.choice
        )

    def step(self, state: State, now: float | None = None) -> np.ndarray:
        """One tick; returns the safe command (joint targets in rad, or normalized commands)."""
        return self.step_info(state, now).command
