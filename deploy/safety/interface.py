"""What every engine of the safety filter offers its callers, and what they share.

``FilterEngine`` is the interface (``reset``, ``tick``, ``__call__``, ``warm``, ``last``,
``engine``); ``SafetyFilter`` (deploy/safety/filter.py, the numpy reference) and
``NativeSafetyFilter`` (deploy/safety/native_filter.py, the C engine) implement it, and
``deploy.safety.engines.make_filter`` picks one. Both read a tick's vectors with ``read_vector``,
so that they refuse the same malformed input, and call a learned critic through ``RiskCritic``.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from typing import ClassVar, Protocol

import numpy as np

from deploy.safety.limits import SafetyLimits, Stage, TickReport

UNREADABLE = np.empty(0)  # a vector that is not real numbers: the wrong size for any robot
REAL_KINDS = "fiu"  # dtype kinds read as joint values: float, signed and unsigned int
Input = np.ndarray | None  # a vector that reaches a tick (command, joint state, observation)


def read_vector(x: object) -> np.ndarray:
    """``x`` as a flat float64 vector; ``UNREADABLE`` (size 0) if it is not an array of real
    numbers (object, string, complex, bool arrays; ragged lists): malformed input, which the
    input guard refuses like a vector of the wrong size."""
    if type(x) is np.ndarray and x.dtype == np.float64:  # the usual case: no conversion
        return x.reshape(-1)
    try:
        a = np.asarray(x)
        if a.dtype.kind not in REAL_KINDS:
            return UNREADABLE
        return a.astype(np.float64, copy=False).reshape(-1)
    except (TypeError, ValueError, OverflowError):
        return UNREADABLE


class RiskCritic(Protocol):
    """What the filter needs of a learned critic (``deploy.safety.critic.CriticGuard`` is one)."""

    period_ticks: int  # re-evaluate an unchanged command every this many ticks

    def evaluate(
        self, observation: np.ndarray, action: np.ndarray, hold: np.ndarray
    ) -> tuple[np.ndarray, float, int]:
        """(chosen command (n,) rad, Q_risk of ``action``, chosen candidate index)."""
        ...


class FilterEngine(ABC):
    """The safety filter as its callers use it: ``reset`` once per episode, then ``tick`` (or
    ``__call__``) per tick; the stages are in deploy/safety/filter.py.

    Args:
        limits: what to enforce.
        critic: a learned critic (stage 3), or None for the deterministic stages only.

    Attributes:
        last: the last safe command ``(n,)`` (rad); None before ``reset``.
        engine: ``"python"`` or ``"native"``.
        engine_note: why this is not the native engine, where ``make_filter`` fell back.
    """

    engine: ClassVar[str]

    def __init__(self, limits: SafetyLimits, critic: RiskCritic | None = None) -> None:
        self.limits = limits
        self.critic = critic
        self.n = limits.q_min.size
        self.last: np.ndarray | None = None
        self.engine_note = ""
        self._shadow: FilterEngine | None = None  # the twin that ``warm`` ticks

    def reset(self, joint_pos: np.ndarray) -> None:
        """Start from the measured position (clipped into the envelope); it must be finite."""
        q = np.asarray(joint_pos, dtype=np.float64).reshape(-1)
        if q.size != self.n or not np.all(np.isfinite(q)):
            raise ValueError(f"safety reset needs {self.n} finite joint positions, got {q}")
        self._start(np.clip(q, self.limits.q_min, self.limits.q_max))
        if self._shadow is not None:
            self._shadow.reset(q)

    @abstractmethod
    def _start(self, start: np.ndarray) -> None:
        """Forget the last episode: ``start`` ``(n,)`` (rad) is the last safe command now."""

    def tick(
        self,
        command: np.ndarray | None,
        joint_pos: np.ndarray | None,
        command_age: float,
        *,
        observation: np.ndarray | None = None,
        estop: bool = False,
        state_age: float = 0.0,
    ) -> TickReport:
        """Filter one tick.

        Args:
            command: the policy's joint targets ``(n,)`` (rad), or None when there is none yet;
                anything but ``n`` finite real numbers is refused (input guard: hold).
            joint_pos: measured joint positions ``(n,)`` (rad), or None when missing; refused
                like the command.
            command_age: seconds since the policy produced ``command``, from a monotonic
                clock: NaN or negative holds (watchdog), infinite damps.
            observation: the policy's observation vector, for the critic (stage 3 is skipped
                without it; one the critic cannot read keeps the command, risk NaN).
            estop: the e-stop input; while True the arm holds where it was when it engaged.
            state_age: seconds since ``joint_pos`` was measured; NaN or negative: not fresh.

        Returns:
            The report; ``report.command`` is a new array.
        """
        if self.last is None:
            raise RuntimeError(f"{type(self).__name__} used before reset()")
        return self._tick(command, joint_pos, command_age, observation, estop, state_age)

    @abstractmethod
    def _tick(
        self, command: Input, joint_pos: Input, age: float, observation: Input, estop: bool, state_age: float
    ) -> TickReport:
        """``tick`` on a filter that has been reset."""

    def __call__(
        self, command: np.ndarray | None, joint_pos: np.ndarray, command_age: float
    ) -> tuple[np.ndarray, Stage]:
        """One tick of the deterministic stages: ``(safe command, stages)``; see ``tick``."""
        report = self.tick(command, joint_pos, command_age)
        return report.command, report.stages

    def warm(self, command: Input, joint_pos: Input, command_age: float, observation: Input = None) -> None:
        """Tick a shadow twin of this filter (same class, limits and critic graph, a state of
        its own) on these inputs and discard the result; this filter is left as it was.

        A fast loop calls it shortly before each deadline (with the latest inputs) so that the
        real tick finds its code and data in the caches: on a shared VM a tick that follows a
        millisecond of idling or spinning otherwise pays 10x for them (benchmarks/RESULTS.md,
        "Safety filter and critic"). It costs one more tick of CPU per period.
        """
        if self.last is None:
            raise RuntimeError(f"{type(self).__name__} used before reset()")
        if self._shadow is None:
            self._shadow = type(self)(self.limits, copy.copy(self.critic))
            self._shadow.reset(self.last)
        self._shadow.tick(command, joint_pos, command_age, observation=observation)
