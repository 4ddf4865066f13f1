"""The safety stage for normalized commands (``task.action.kind == "normalized"``: dm_control's
motor commands, ``sim.tasks.dmc``), behind the filter interface (``FilterEngine``);
``deploy.safety.engines.make_filter`` picks it for ``NormalizedLimits``.

A normalized command is not a joint target: it has no measured position to step from and no
joint envelope, so the joint-position filter (``deploy.safety.filter``) does not apply. Per
tick, in this order (``Stage`` bits report which ones changed the command):

1. input guard: a command that is not ``n`` finite real numbers (NaN, Inf, wrong size, not
   numbers; entries whose sum overflows, ~1e308) -> hold the last safe command (``INPUT_GUARD``)
2. watchdog: no command yet, or one older than ``watchdog_periods`` policy periods or of no
   valid age (negative, NaN) -> hold (``WATCHDOG``); older than ``zero_periods`` (an
   infinite age included) -> go to zero, no actuation (``WATCHDOG | DAMP``)
3. e-stop: overrides 1-2: go to zero (``ESTOP``)
4. clip into the task's bounds ``[-max_delta, max_delta]`` (``ENVELOPE``), then the rate
   limit: at most ``max_step`` from the last command per tick (``RATE_LIMIT``); going to
   zero is rate-limited too, so every tick obeys the same invariants
5. last stage: the command is finite, inside the bounds and within ``max_step`` (plus a
   rounding tolerance) of the last one, by comparisons that fail on NaN; else the last safe
   command is held (``LAST_STAGE``)

The joint state is not read (``joint_pos`` and ``state_age`` are ignored): a non-finite
observation already reaches this stage as a NaN policy command (the Controller's), which
the input guard holds. There is no learned critic stage (a critic is refused) and no C
engine. Numpy only.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np

from deploy.safety.interface import FilterEngine, Input, RiskCritic, read_vector
from deploy.safety.limits import STEP_TOLERANCE, Stage, TickReport
from sim.spec import TaskSpec

NORMALIZED = "normalized"  # the action kind this stage filters (sim.spec.ActionSpec.kind)
# the stage bits as plain ints (an IntFlag operation costs a microsecond; one Stage() per tick)
INPUT_GUARD, WATCHDOG, ENVELOPE, RATE_LIMIT = (
    int(s) for s in (Stage.INPUT_GUARD, Stage.WATCHDOG, Stage.ENVELOPE, Stage.RATE_LIMIT)
)
ESTOP, DAMP, LAST_STAGE = int(Stage.ESTOP), int(Stage.DAMP), int(Stage.LAST_STAGE)


@dataclass(frozen=True)
class NormalizedLimits:
    """What the normalized stage enforces; arrays are per command component.

    Attributes:
        low: lower bound of each command (``-max_delta``), unit ``1``.
        high: upper bound (``max_delta``).
        max_step: largest change of a command per tick.
        tick_period: time between ticks (s).
        policy_period: time between policy commands (s).
        watchdog_periods: a command older than this many policy periods is stale: hold.
        zero_periods: older than this many policy periods: go to zero.
    """

    low: np.ndarray
    high: np.ndarray
    max_step: np.ndarray
    tick_period: float
    policy_period: float
    watchdog_periods: float = 3.0
    zero_periods: float = 10.0

    def __post_init__(self) -> None:
        lo, hi, step = (np.asarray(x, dtype=np.float64) for x in (self.low, self.high, self.max_step))
        if not (lo.shape == hi.shape == step.shape and lo.ndim == 1):
            shapes = f"{lo.shape}, {hi.shape}, {step.shape}"
            raise ValueError(f"NormalizedLimits: low, high, max_step must be (n,) alike, got {shapes}")
        if not (np.all(np.isfinite(lo) & np.isfinite(hi)) and np.all(lo <= 0.0) and np.all(hi >= 0.0)):
            raise ValueError(f"NormalizedLimits: bounds must be finite with low <= 0 <= high, got {lo}, {hi}")
        if not (np.all(np.isfinite(step)) and np.all(step > 0.0)):
            raise ValueError(f"NormalizedLimits.max_step must be finite and > 0, got {step}")
        if not self.zero_periods >= self.watchdog_periods >= 0.0:
            raise ValueError(
                f"NormalizedLimits: need zero_periods ({self.zero_periods}) >= watchdog_periods "
                f"({self.watchdog_periods}) >= 0"
            )

    @classmethod
    def from_spec(
        cls,
        spec: TaskSpec,
        rate: float,
        tick_hz: float | None = None,
        watchdog_periods: float = 3.0,
        zero_periods: float = 10.0,
    ) -> NormalizedLimits:
        """Bounds ``[-max_delta, max_delta]`` of ``spec``'s normalized action, and a rate limit
        of ``rate`` half-ranges per second: ``max_step = rate * max_delta / tick_hz`` per tick
        (``tick_hz``: the loop's rate, default the control rate)."""
        if spec.action.kind != NORMALIZED:
            raise ValueError(f"NormalizedLimits: task {spec.name!r} has action kind {spec.action.kind!r}")
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"NormalizedLimits: rate must be finite and > 0, got {rate}")
        half = np.asarray(spec.action.max_delta, dtype=np.float64)
        tick_period = 1.0 / (tick_hz or spec.control_hz)
        return cls(
            low=-half,
            high=half.copy(),
            max_step=rate * half * tick_period,
            tick_period=tick_period,
            policy_period=1.0 / spec.control_hz,
            watchdog_periods=watchdog_periods,
            zero_periods=zero_periods,
        )

    # the names the filter interface reads (FilterEngine.reset clips a start into them)
    @property
    def q_min(self) -> np.ndarray:
        return self.low

    @property
    def q_max(self) -> np.ndarray:
        return self.high

    @property
    def watchdog_age(self) -> float:
        """Age (s) past which a command is stale: hold."""
        return self.watchdog_periods * self.policy_period

    @property
    def zero_age(self) -> float:
        """Age (s) past which a stale command goes to zero."""
        return self.zero_periods * self.policy_period

    @property
    def last_stage_step(self) -> np.ndarray:
        """The largest step the last stage accepts: ``max_step`` plus the rate limit's
        rounding (a finite number, so an infinite command fails the check)."""
        scale = np.maximum(np.maximum(np.abs(self.low), np.abs(self.high)), self.max_step)
        tol = self.max_step + STEP_TOLERANCE * (1.0 + scale)
        return np.where(np.isfinite(tol), tol, sys.float_info.max)


def _finite(x: np.ndarray) -> bool:
    """Every entry finite, and together they do not overflow (entries near 1e308 count as
    not finite, as in the joint filter: such a command is refused, not clipped)."""
    return math.isfinite(sum(x.tolist()))


class NormalizedFilter(FilterEngine):
    """The normalized stage: ``reset(start)`` once per episode (``start``: the command to
    begin from, zero on the Controller), then ``tick`` per tick (``FilterEngine``).

    Args:
        limits: what to enforce.
        critic: must be None (a learned critic is not supported for normalized commands).
    """

    engine = "python"

    def __init__(self, limits: NormalizedLimits, critic: RiskCritic | None = None) -> None:
        if critic is not None:
            raise ValueError(
                "a learned safety critic is not supported for normalized commands (dm_control "
                "tasks); run without one (spine-run --no-critic)"
            )
        super().__init__(limits, None)  # type: ignore[arg-type]  (NormalizedLimits, not SafetyLimits)
        self._low, self._high = limits.low, limits.high
        self._step, self._final_step = limits.max_step, limits.last_stage_step
        self._zero = np.zeros(self.n)

    def _start(self, start: np.ndarray) -> None:
        self.last = start

    def _tick(
        self, command: Input, joint_pos: Input, age: float, observation: Input, estop: bool, state_age: float
    ) -> TickReport:
        """One tick, stage by stage (``FilterEngine.tick``; ``joint_pos``, ``observation``
        and ``state_age`` are not read). Every target below is finite (the last command,
        zero or a command that passed the guard), so the clips see no NaN."""
        lim, last = self.limits, self.last
        if estop:
            target, bits = self._zero, ESTOP
        elif command is None:
            target, bits = last, WATCHDOG
        else:
            cmd = read_vector(command)
            if cmd.size != self.n or not _finite(cmd):
                target, bits = last, INPUT_GUARD
            elif not 0.0 <= age <= lim.watchdog_age:  # NaN and negative ages fail here too
                target, bits = (self._zero, WATCHDOG | DAMP) if age > lim.zero_age else (last, WATCHDOG)
            else:
                target, bits = cmd, 0
        bounded = np.minimum(np.maximum(target, self._low), self._high)
        if bounded.tobytes() != target.tobytes():
            bits |= ENVELOPE
        out = np.minimum(np.maximum(bounded, last - self._step), last + self._step)
        if out.tobytes() != bounded.tobytes():
            bits |= RATE_LIMIT
        ok = (self._low <= out) & (out <= self._high) & (np.abs(out - last) <= self._final_step)
        if not ok.all():  # 5: never reached while the stages above are correct
            out, bits = last, bits | LAST_STAGE
        self.last = out
        return TickReport(out.copy(), Stage(bits))
