"""The safety filter's C engine (``deploy/safety/native/filter.c``), for the 1 kHz loop.

``SafetyFilter`` (deploy/safety/filter.py) is the reference and the readable statement of
every stage; the C tick repeats it operation for operation in double precision, so both give
bit-identical commands, stage bits, risks and choices (tests/deploy/test_safety_native.py and
tests/deploy/test_safety_extremes.py drive both with arbitrary input sequences).
``NativeSafetyFilter`` offers the same interface (``deploy.safety.interface.FilterEngine``);
with a learned critic the C tick calls the C evaluator of the critic graph directly
(``deploy.safety.native_critic``): one call per tick, no Python and no onnxruntime inside it.

Why: on a shared 2-core machine a 1 kHz loop wakes up with its caches emptied by other
processes, and a tick's cost is set by how much code and memory it touches. The Python tick
with the onnxruntime critic walks the interpreter, numpy and onnxruntime's session (p99
185-245 µs in the loop on such a host, 2026-12-02); the C tick is a few KB of code
(benchmarks/RESULTS.md, "Safety filter and critic").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deploy.safety.extension import NativeUnavailable, extension
from deploy.safety.interface import FilterEngine, Input, RiskCritic, read_vector
from deploy.safety.limits import SafetyLimits, Stage, TickReport

# The stage bits of filter.c's enum, which its tick returns as a plain int (tests check that
# they are ``Stage``'s values), and that int as a ``Stage`` (constructing one costs ~1 µs)
_GUARD, _WATCHDOG, _ENVELOPE, _RATE, _CRITIC = 1, 2, 4, 8, 16
_WORKSPACE, _ESTOP, _DAMP, _LAST = 32, 64, 128, 256
_STAGES = tuple(Stage(bits) for bits in range(2 * _LAST))
_C_FLOATS = (np.dtype(np.float64), np.dtype(np.float32))  # observations the C tick reads as they are


def _c_observation(observation: object) -> np.ndarray:
    """The observation as the C tick reads it: a contiguous float64 or float32 array, or an
    empty one (the critic then keeps the command and reports NaN, as for NaN)."""
    if type(observation) is np.ndarray and observation.dtype in _C_FLOATS:
        return np.ascontiguousarray(observation)
    return np.ascontiguousarray(read_vector(observation))


class NativeSafetyFilter(FilterEngine):
    """The filter's tick in C, behind the interface of ``SafetyFilter``.

    Args:
        limits: what to enforce.
        critic: a learned critic whose graph runs in C (a ``CriticGuard`` around a
            ``deploy.safety.native_critic.NativeOnnxCritic``), or None.

    Raises:
        NativeUnavailable: the extension is not built, or the critic does not run in C.
    """

    engine = "native"

    def __init__(self, limits: SafetyLimits, critic: RiskCritic | None = None) -> None:
        super().__init__(limits, critic)
        self._out = np.zeros(self.n)  # the C tick writes every command into this one array
        self._c = _c_filter(limits, critic, self._out)

    def _start(self, start: np.ndarray) -> None:
        """``start`` into the array the C tick writes; the C state forgets the last episode."""
        self._out[:] = start
        self.last = self._out
        self._c.reset()

    def _tick(
        self, command: Input, joint_pos: Input, age: float, observation: Input, estop: bool, state_age: float
    ) -> TickReport:
        """One tick in C (``FilterEngine.tick``)."""
        command = None if command is None else np.ascontiguousarray(read_vector(command))
        joint_pos = None if joint_pos is None else np.ascontiguousarray(read_vector(joint_pos))
        observation = None if observation is None else _c_observation(observation)
        bits, ran, choice, risk = self._c.tick(command, joint_pos, age, observation, estop, state_age)
        return TickReport(self._out.copy(), _STAGES[bits], risk, ran, choice)


def _c_filter(lim: SafetyLimits, critic: RiskCritic | None, out: np.ndarray) -> Any:
    """A ``deploy.safety._native.NativeFilter`` for ``lim`` and ``critic`` that writes its
    commands into ``out`` ``(n,)`` float64; ``NativeUnavailable`` if there is none."""
    ext = extension()
    kwargs: dict[str, Any] = {}
    if critic is not None:
        inner = getattr(critic, "critic", None)
        if getattr(inner, "engine", None) != "native":
            why = getattr(inner, "engine_note", "") or f"{type(critic).__name__} is not a native critic"
            raise NativeUnavailable(f"the critic runs in {why}")
        risks = np.full(inner.k, np.nan)
        critic.last_risks = risks  # the C tick writes each evaluation's risks here
        kwargs.update(
            critic=inner.evaluator, threshold=critic.threshold, period_ticks=critic.period_ticks, risks=risks
        )
    if lim.workspace_low is not None:
        kwargs.update(
            box_low=np.array(lim.workspace_low, float), box_high=np.array(lim.workspace_high, float)
        )
    if lim.ee_step is not None:
        kwargs["ee_step"] = lim.ee_step
    if lim.chain is not None and (lim.workspace_low is not None or lim.ee_step is not None):
        kwargs["rows_back"] = np.array(lim.chain._rows_back, dtype=np.float64).reshape(-1)
        kwargs["ee"] = np.array(lim.chain._ee, dtype=np.float64)
    f64 = np.float64
    return ext.NativeFilter(
        q_min=np.ascontiguousarray(lim.q_min, f64),
        q_max=np.ascontiguousarray(lim.q_max, f64),
        reach=np.ascontiguousarray(lim.reach, f64),
        max_step=np.ascontiguousarray(lim.max_step, f64),
        final_step=np.ascontiguousarray(lim.last_stage_step, f64),
        cbf=lim.cbf_fraction,
        sensor_timeout=lim.sensor_timeout,
        watchdog_age=lim.watchdog_age,
        damp_age=lim.damp_age,
        policy_period=lim.policy_period,
        frozen_ticks=lim.frozen_ticks,
        frozen_tolerance=lim.frozen_tolerance,
        interpolate=lim.interpolate,
        last=out,
        **kwargs,
    )
