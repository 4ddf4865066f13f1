"""The safety filter's tick in C (``deploy/safety/native/filter.c``), for the 1 kHz loop.

``SafetyFilter`` (deploy/safety/filter.py) stays the reference and the readable statement of every
stage; the C tick repeats it operation for operation in double precision, so both give
bit-identical commands, stage bits, risks and choices (tests/deploy/test_safety_native.py
drives both with arbitrary input sequences). With a learned critic, the C tick calls the C
evaluator of the critic graph directly (``deploy.safety.native_critic``): one call per tick, no
Python and no onnxruntime inside it.

Why: on a shared 2-core machine a 1 kHz loop wakes up with its caches emptied by other
processes, and a tick's cost is set by how much code and memory it touches. The Python tick
with the onnxruntime critic walks the interpreter, numpy and onnxruntime's session (p99
185-245 µs in the loop on such a host, 2026-12-02); the C tick is a few KB of code
(benchmarks/RESULTS.md, "Safety filter and critic").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from deploy.safety.native_critic import NativeUnavailable, extension

if TYPE_CHECKING:
    from deploy.safety.filter import SafetyFilter

ENGINES = ("auto", "native", "python")


def native_tick(filt: SafetyFilter, last: np.ndarray) -> Any:
    """A ``deploy.safety._native.NativeFilter`` for ``filt``'s limits and critic that writes its
    commands into ``last`` ``(n,)`` float64; ``NativeUnavailable`` if there is none."""
    ext = extension()
    lim, critic = filt.limits, filt.critic
    kwargs: dict[str, Any] = {}
    if critic is not None:
        inner = getattr(critic, "critic", None)
        if getattr(inner, "engine", None) != "native":
            why = getattr(inner, "engine_note", "") or f"{type(critic).__name__} is not a native critic"
            raise NativeUnavailable(f"the critic runs in {why}")
        risks = np.full(inner.k, np.nan)
        critic.last_risks = risks  # the C tick writes each evaluation's risks here
        kwargs.update(
            critic=inner._native, threshold=critic.threshold, period_ticks=critic.period_ticks, risks=risks
        )
    if lim.workspace_low is not None:
        kwargs.update(
            box_low=np.array(lim.workspace_low, float), box_high=np.array(lim.workspace_high, float)
        )
    if lim.ee_speed_max is not None:
        kwargs["ee_step"] = lim.ee_speed_max * lim.tick_period
    if lim.chain is not None and (lim.workspace_low is not None or lim.ee_speed_max is not None):
        kwargs["rows_back"] = np.array(lim.chain._rows_back, dtype=np.float64).reshape(-1)
        kwargs["ee"] = np.array(lim.chain._ee, dtype=np.float64)
    f64 = np.float64
    return ext.NativeFilter(
        q_min=np.ascontiguousarray(lim.q_min, f64),
        q_max=np.ascontiguousarray(lim.q_max, f64),
        reach=np.ascontiguousarray(filt._reach, f64),
        max_step=np.ascontiguousarray(filt._max_step, f64),
        final_step=np.ascontiguousarray(filt._final_step, f64),
        cbf=filt._cbf,
        sensor_timeout=lim.sensor_timeout,
        watchdog_age=lim.watchdog_periods * lim.policy_period,
        damp_age=lim.damp_periods * lim.policy_period,
        policy_period=lim.policy_period,
        frozen_ticks=lim.frozen_ticks,
        frozen_tolerance=lim.frozen_tolerance,
        interpolate=lim.interpolate,
        last=last,
        **kwargs,
    )
