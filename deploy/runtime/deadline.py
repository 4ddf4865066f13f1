"""Deadline monitor: counts the ticks whose work overran their time budget.

    monitor = DeadlineMonitor(budget_us=0.5e6 / 20)   # half of a 20 Hz period
    late = monitor.record(elapsed_us)

A late tick is not an error by itself (the safety filter holds the last command); the count
and the worst overrun go into run summaries so that a slow machine or a too-large model shows.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DeadlineMonitor:
    """Ticks, late ticks and the worst time, against ``budget_us`` (µs per tick)."""

    budget_us: float
    ticks: int = 0
    late: int = 0
    worst_us: float = 0.0

    def __post_init__(self) -> None:
        if not self.budget_us > 0:
            raise ValueError(f"DeadlineMonitor: budget_us must be > 0, got {self.budget_us}")

    def record(self, elapsed_us: float) -> bool:
        """Count one tick that took ``elapsed_us``; returns whether it was late."""
        self.ticks += 1
        self.worst_us = max(self.worst_us, elapsed_us)
        is_late = elapsed_us > self.budget_us
        self.late += is_late
        return is_late

    def summary(self) -> dict[str, float]:
        """``budget_us``, ``ticks``, ``late``, ``late_fraction``, ``worst_us``."""
        return {
            "budget_us": self.budget_us,
            "ticks": self.ticks,
            "late": self.late,
            "late_fraction": self.late / max(self.ticks, 1),
            "worst_us": self.worst_us,
        }
