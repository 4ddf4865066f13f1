"""Latency percentiles of a callable, in microseconds.

One figure means one thing wherever Spine prints it: **policy step** is the Controller's policy
call, ``agent(observation=..., goal=...)`` (every graph the step runs, chunk and subgoal
execution; not building the observation), timed with ``perf_counter_ns`` around that call.
spine-run and spine-replay time it on the ticks the policy ran, in the control loop; spine-export
times the same call in a warm loop (``policy_step_latency``). **graph alone** (spine-export,
per graph) is one onnxruntime call on bound buffers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np


def percentiles(samples_us: Sequence[float]) -> dict[str, float]:
    """p50 / p99 / p99.9 / max / mean of samples in µs (NaN for an empty list)."""
    a = np.asarray(samples_us, dtype=np.float64)
    if a.size == 0:
        return {k: float("nan") for k in ("p50", "p99", "p999", "max", "mean")}
    p50, p99, p999 = np.percentile(a, [50, 99, 99.9])
    return {
        "p50": float(p50),
        "p99": float(p99),
        "p999": float(p999),
        "max": float(a.max()),
        "mean": float(a.mean()),
    }


def measure_latency(fn: Callable[[], object], calls: int = 2000, warmup: int = 200) -> dict[str, float]:
    """Time ``calls`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(calls):
        t0 = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - t0) / 1e3)
    return percentiles(samples)


def policy_step_latency(
    agent: Callable[..., object], states: Sequence[tuple[object, object]], calls: int = 2000
) -> dict[str, float]:
    """The policy step (the Controller's timed call) on ``(observation, goal)`` pairs, cycled."""
    i = 0

    def step() -> None:
        nonlocal i
        obs, goal = states[i % len(states)]
        agent(observation=obs, goal=goal)
        i += 1

    return measure_latency(step, calls=calls)
