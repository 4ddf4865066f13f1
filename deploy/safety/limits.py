"""What the safety filter enforces (``SafetyLimits``) and what it reports per tick
(``Stage``, ``TickReport``). No torch, no MuJoCo: read by the sim loop, ROS nodes and replay."""

from __future__ import annotations

import enum
import math
import sys
from dataclasses import dataclass

import numpy as np

from deploy.safety.kinematics import SerialChain
from sim.spec import TaskSpec

# The last stage accepts a step of max_step plus this much (relative to the joint's range)
STEP_TOLERANCE = 1e-12


class Stage(enum.IntFlag):
    """Which stages changed the command on a tick (a bit set; ``NONE`` = passed through).

    Bits 1-8 are the original deterministic stages; later ones were added without
    renumbering, so logged bit sets stay readable. With ``LAST_STAGE`` set, the other bits
    are the stages that acted on that tick: the bad value came from one of them (or, with
    none, from the policy's command itself).
    """

    NONE = 0
    INPUT_GUARD = 1  # non-finite / malformed command or sensor, stale or frozen sensor: hold
    WATCHDOG = 2  # policy command missing or older than ``watchdog_periods``: hold
    ENVELOPE = 4  # joint position / velocity envelope (CBF-style bound toward the limits)
    RATE_LIMIT = 8  # command moved at most ``max_step`` from the last one
    CRITIC = 16  # learned critic replaced the policy command with a safer candidate
    WORKSPACE = 32  # end effector of the command outside the box or too fast: step shortened
    ESTOP = 64  # e-stop input: stop where the arm is
    DAMP = 128  # watchdog escalated: command follows the measured position (no spring force)
    LAST_STAGE = 256  # the last check failed (non-finite, outside [q_min, q_max] or beyond
    #                   the rate limit): the last safe command was held instead

    def names(self) -> list[str]:
        return [s.name.lower() for s in Stage if s and s in self]


@dataclass(frozen=True, slots=True)
class TickReport:
    """One filter tick, for logs, ROS diagnostics and replay statistics.

    Attributes:
        command: the safe joint command sent to the actuators ``(n,)`` (rad).
        stages: the stages that changed the command on this tick.
        risk: Q_risk of the policy's command at the critic's latest evaluation (probability
            of a violation within the critic's horizon); NaN without a critic or before
            its first evaluation.
        critic_ran: whether the critic was evaluated on this tick (else ``risk`` is held).
        choice: candidate the critic chose at its latest evaluation (0: the policy's
            command; see ``deploy.safety.critic.CANDIDATES``); -1 without a critic.
    """

    command: np.ndarray
    stages: Stage
    risk: float = math.nan
    critic_ran: bool = False
    choice: int = -1


@dataclass(frozen=True)
class SafetyLimits:
    """Limits the filter enforces; arrays are per joint, in command order.

    Attributes:
        q_min: lower position limit (rad), margin already applied.
        q_max: upper position limit (rad), margin already applied.
        v_max: velocity limit (rad/s), used by the envelope and the rate limit.
        tick_period: time between filter ticks (s).
        policy_period: time between policy commands (s).
        watchdog_periods: a policy command older than this many policy periods is stale (hold).
        damp_periods: older than this many policy periods, hold turns into damping: the
            command follows the measured position, so the position loop stores no spring
            force and only its damping acts (rate-limited).
        cbf_alpha: CBF gain (1/s) of the envelope: the commanded velocity
            ``(cmd - q) / policy_period`` toward a limit is at most ``cbf_alpha`` times the
            distance to it, i.e. ``cmd <= q + min(1, alpha T) (q_max - q)``; ``inf`` turns
            it into a plain clip.
        sensor_timeout: a joint state older than this (s) is treated as missing (hold).
        frozen_ticks: a joint state bit-identical for this many ticks while the command is
            more than ``frozen_tolerance`` away from it is treated as frozen (hold); 0: off.
        frozen_tolerance: see ``frozen_ticks`` (rad).
        interpolate: ramp linearly from the previous to a new policy command over one
            policy period instead of holding each command (both are rate-limited).
        workspace_low: lower corner of the end-effector box (m), or None for no box.
        workspace_high: upper corner of that box (m).
        ee_speed_max: Cartesian rate limit (m/s): the end effector of the command moves at
            most ``ee_speed_max * tick_period`` per tick; None: off (needs ``chain``).
        chain: kinematics that map a command to the end-effector point (needed with a box).
    """

    q_min: np.ndarray
    q_max: np.ndarray
    v_max: np.ndarray
    tick_period: float
    policy_period: float
    watchdog_periods: float = 3.0
    damp_periods: float = 10.0
    cbf_alpha: float = 10.0
    sensor_timeout: float = 0.05
    frozen_ticks: int = 0
    frozen_tolerance: float = 0.05
    interpolate: bool = False
    workspace_low: tuple[float, float, float] | None = None
    workspace_high: tuple[float, float, float] | None = None
    ee_speed_max: float | None = None
    chain: SerialChain | None = None

    def __post_init__(self) -> None:
        if not self.damp_periods >= self.watchdog_periods:
            raise ValueError(
                f"SafetyLimits.damp_periods ({self.damp_periods}) must be >= watchdog_periods "
                f"({self.watchdog_periods})"
            )
        if (self.workspace_low is None) != (self.workspace_high is None):
            raise ValueError("SafetyLimits.workspace_low and workspace_high go together")
        if self.workspace_low is not None:
            if self.chain is None:
                raise ValueError("SafetyLimits.workspace_low needs a kinematic chain (SafetyLimits.chain)")
            if any(lo >= hi for lo, hi in zip(self.workspace_low, self.workspace_high, strict=True)):
                raise ValueError("SafetyLimits.workspace_low must be < workspace_high on every axis")
        if self.ee_speed_max is not None and (self.chain is None or not self.ee_speed_max > 0):
            raise ValueError("SafetyLimits.ee_speed_max must be > 0 and needs SafetyLimits.chain")
        if not self.cbf_alpha > 0:
            raise ValueError(f"SafetyLimits.cbf_alpha must be > 0, got {self.cbf_alpha}")

    @classmethod
    def from_spec(
        cls,
        spec: TaskSpec,
        margin: float = 0.05,
        tick_hz: float | None = None,
        watchdog_periods: float = 3.0,
        **kwargs: object,
    ) -> SafetyLimits:
        """Limits of the robot in ``spec`` with ``margin`` (rad) inside each position limit;
        ``kwargs`` set the other fields (``cbf_alpha=...``, ``workspace_low=...``)."""
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
            **kwargs,  # type: ignore[arg-type]
        )

    @property
    def max_step(self) -> np.ndarray:
        """Largest command change per tick (rad)."""
        return self.v_max * self.tick_period

    # --- the limits in the units the filter's tick uses (both engines read them here) --------
    @property
    def reach(self) -> np.ndarray:
        """Farthest the velocity envelope lets a command lead the measured position (rad):
        one policy period at ``v_max``."""
        return self.v_max * self.policy_period

    @property
    def cbf_fraction(self) -> float:
        """Fraction of the distance to a limit that a command may close: ``min(1, alpha T)``."""
        return min(1.0, self.cbf_alpha * self.policy_period)

    @property
    def watchdog_age(self) -> float:
        """Age (s) past which a policy command is stale: hold."""
        return self.watchdog_periods * self.policy_period

    @property
    def damp_age(self) -> float:
        """Age (s) past which a stale command damps instead of holding."""
        return self.damp_periods * self.policy_period

    @property
    def ee_step(self) -> float | None:
        """Largest end-effector move per tick (m), or None without a Cartesian rate limit."""
        return None if self.ee_speed_max is None else self.ee_speed_max * self.tick_period

    @property
    def last_stage_step(self) -> np.ndarray:
        """Per joint, the largest step the last stage accepts (rad): ``max_step`` plus the
        rate limit's and the workspace's own rounding (~1e3 ulps, never a real excess), a
        finite number, so that the step check also refuses an infinite command."""
        step = self.max_step
        scale = np.maximum(np.maximum(np.abs(self.q_min), np.abs(self.q_max)), np.abs(step))
        tol = step + STEP_TOLERANCE * (1.0 + scale)
        return np.where(np.isfinite(tol), tol, sys.float_info.max)
