"""Latency percentiles of a callable, in microseconds."""

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
