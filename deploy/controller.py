"""The Controller: raw robot state in, safe joint command out. Used by sim runs, ROS nodes
and log replay alike, with no torch.

    ctrl = Controller("runs/demo/bundle", robot_spec)
    ctrl.reset(state)
    command = ctrl.step(state)        # state: {"joint_pos": (7,), "joint_vel": (7,), ...}

``step`` is ``policy_tick`` (the policy, at the contract's rate) then ``safety_tick`` (the
filter, which may run faster and holds the latest policy command in between).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deploy.bundle import Bundle, load_bundle
from deploy.runtime import OnnxPolicy
from deploy.safety import SafetyFilter, SafetyLimits, Stage
from sim.observation import ObservationError, build_observation, field_vector
from sim.spec import JOINT_POS, TaskSpec

State = Mapping[str, object]


@dataclass(frozen=True)
class TickInfo:
    """What happened on one tick, for logs and reports."""

    command: np.ndarray  # safe joint command sent to the robot (rad)
    policy_command: np.ndarray | None  # latest raw policy output (rad), None before the first
    stages: Stage  # safety stages that changed the command
    policy_ran: bool  # whether the policy ran on this tick
    policy_us: float  # policy inference time on this tick (µs; 0 if it did not run)
    filter_us: float  # safety filter time (µs)
    error: str = ""  # why the policy could not run on this tick, if it could not


class Controller:
    """Policy (onnxruntime) + deterministic safety filter for one robot.

    Args:
        bundle: a bundle folder or a loaded ``Bundle``.
        robot: the robot's spec; the bundle's contract must match it (else ``ContractMismatch``).
        limits: safety limits; by default the robot's limits with a 0.05 rad margin.
        threads: onnxruntime threads (1 on a robot: predictable latency).
    """

    def __init__(
        self,
        bundle: Bundle | Path | str,
        robot: TaskSpec,
        limits: SafetyLimits | None = None,
        threads: int = 1,
    ) -> None:
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        self.contract = self.bundle.contract
        self.contract.check_robot(robot)
        self.robot = robot
        self.policy = OnnxPolicy(self.bundle.policy_path, self.contract, threads)
        self.filter = SafetyFilter(limits or SafetyLimits.from_spec(robot))
        self.policy_period = 1.0 / self.contract.policy_hz
        self.ticks = 0
        self._command: np.ndarray | None = None
        self._command_time = -np.inf
        self._last_policy_time = -np.inf

    def reset(self, state: State) -> None:
        """Start an episode at the measured state (its joint positions must be finite)."""
        self.filter.reset(np.asarray(state[JOINT_POS], dtype=np.float64))
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
        q = state.get(JOINT_POS)
        q = np.full(self.robot.n_joints, np.nan) if q is None else np.asarray(q, dtype=np.float64)
        command, stages = self.filter(self._command, q, now - self._command_time)
        return command, stages, (time.perf_counter_ns() - t0) / 1e3

    def step_info(self, state: State, now: float | None = None) -> TickInfo:
        """One tick at time ``now`` (s; default: ticks x policy period), with its details."""
        now = self.ticks * self.policy_period if now is None else now
        ran = self.policy_due(now)
        policy_us, error = self.policy_tick(state, now) if ran else (0.0, "")
        command, stages, filter_us = self.safety_tick(state, now)
        self.ticks += 1
        raw = None if self._command is None else self._command.copy()
        return TickInfo(command, raw, stages, ran, policy_us, filter_us, error)

    def step(self, state: State, now: float | None = None) -> np.ndarray:
        """One tick; returns the safe joint command (rad)."""
        return self.step_info(state, now).command
