"""Deterministic safety stages applied to every command, in the design's order.

1. input guard: NaN/Inf or malformed state or command -> hold the last safe command
2. watchdog: policy command older than ``watchdog_periods`` policy periods -> hold
3. envelope: joint position limits (with margin) and a velocity envelope around the
   measured position (the command must be reachable at ``v_max`` within one policy period)
4. rate limit: the command moves at most ``v_max * tick_period`` per tick

Invariant (tested with hypothesis): every command returned lies inside the position envelope
and within the rate limit of the previous one, whatever the input. The learned critic and
the e-stop (issue 6) slot in around these stages; they never replace them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from sim.spec import TaskSpec


class Stage(enum.IntFlag):
    """Which stages changed the command on a tick (a bit set; ``NONE`` = passed through)."""

    NONE = 0
    INPUT_GUARD = 1
    WATCHDOG = 2
    ENVELOPE = 4
    RATE_LIMIT = 8

    def names(self) -> list[str]:
        return [s.name.lower() for s in Stage if s and s in self]


@dataclass(frozen=True)
class SafetyLimits:
    """Limits the filter enforces; arrays are per joint, in command order.

    Attributes:
        q_min: lower position limit (rad), margin already applied.
        q_max: upper position limit (rad), margin already applied.
        v_max: velocity limit (rad/s), used by the envelope and the rate limit.
        tick_period: time between filter ticks (s).
        policy_period: time between policy commands (s).
        watchdog_periods: a policy command older than this many policy periods is stale.
    """

    q_min: np.ndarray
    q_max: np.ndarray
    v_max: np.ndarray
    tick_period: float
    policy_period: float
    watchdog_periods: float = 3.0

    @classmethod
    def from_spec(
        cls,
        spec: TaskSpec,
        margin: float = 0.05,
        tick_hz: float | None = None,
        watchdog_periods: float = 3.0,
    ) -> SafetyLimits:
        """Limits of the robot in ``spec`` with ``margin`` (rad) inside each position limit."""
        q_min = np.asarray(spec.joint_pos_min, dtype=np.float64) + margin
        q_max = np.asarray(spec.joint_pos_max, dtype=np.float64) - margin
        if np.any(q_min >= q_max):
            raise ValueError(f"safety margin {margin} rad leaves no room inside the joint limits")
        return cls(
            q_min=q_min,
            q_max=q_max,
            v_max=np.asarray(spec.joint_vel_max, dtype=np.float64),
            tick_period=1.0 / (tick_hz or spec.control_hz),
            policy_period=1.0 / spec.control_hz,
            watchdog_periods=watchdog_periods,
        )

    @property
    def max_step(self) -> np.ndarray:
        """Largest command change per tick (rad)."""
        return self.v_max * self.tick_period


class SafetyFilter:
    """Stateful filter: ``reset`` once per episode, then ``__call__`` once per tick."""

    def __init__(self, limits: SafetyLimits) -> None:
        self.limits = limits
        self.n = limits.q_min.size
        self.last: np.ndarray | None = None

    def reset(self, joint_pos: np.ndarray) -> None:
        """Start from the measured position (clipped into the envelope); it must be finite."""
        q = np.asarray(joint_pos, dtype=np.float64).reshape(-1)
        if q.size != self.n or not np.all(np.isfinite(q)):
            raise ValueError(f"safety reset needs {self.n} finite joint positions, got {q}")
        self.last = np.clip(q, self.limits.q_min, self.limits.q_max)

    def __call__(
        self, command: np.ndarray | None, joint_pos: np.ndarray, command_age: float
    ) -> tuple[np.ndarray, Stage]:
        """Filter one tick.

        Args:
            command: the policy's joint targets (rad), or None when there is none yet.
            joint_pos: measured joint positions (rad).
            command_age: seconds since the policy produced ``command``.

        Returns:
            The safe command (a new array) and the stages that acted.
        """
        if self.last is None:
            raise RuntimeError("SafetyFilter used before reset()")
        lim = self.limits
        q = np.asarray(joint_pos, dtype=np.float64).reshape(-1)
        stages = Stage.NONE
        if command is None:
            cmd, stages = self.last.copy(), Stage.WATCHDOG
        else:
            cmd = np.asarray(command, dtype=np.float64).reshape(-1)
            if cmd.size != self.n or not np.all(np.isfinite(cmd)):
                cmd, stages = self.last.copy(), Stage.INPUT_GUARD
            elif not command_age <= lim.watchdog_periods * lim.policy_period:
                cmd, stages = self.last.copy(), Stage.WATCHDOG
        state_ok = q.size == self.n and bool(np.all(np.isfinite(q)))
        if not state_ok:
            cmd, stages = self.last.copy(), stages | Stage.INPUT_GUARD
        else:
            reach = lim.v_max * lim.policy_period
            bounded = np.clip(np.clip(cmd, q - reach, q + reach), lim.q_min, lim.q_max)
            if np.any(bounded != cmd):
                stages |= Stage.ENVELOPE
            cmd = bounded
        limited = np.clip(cmd, self.last - lim.max_step, self.last + lim.max_step)
        if np.any(limited != cmd):
            stages |= Stage.RATE_LIMIT
        self.last = limited
        return limited.copy(), stages
