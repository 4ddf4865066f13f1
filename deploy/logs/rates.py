"""The measured rate of a topic in a log: how often it was published, and its largest gap.

Every report and every log tool's console line states it for the joint states (and each
mapped topic), so a 500 Hz log resampled to 25 Hz, or a log with holes, says so plainly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class MeasuredRate:
    """Rate of one topic from its stamps (sorted), in the log's own clock."""

    topic: str
    messages: int
    duration_s: float  # last stamp minus first
    rate_hz: float  # 1 / median interval between consecutive stamps (NaN: fewer than 2 messages)
    max_gap_s: float  # largest interval between consecutive stamps

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One line, e.g. ``/joint_states: 10598 messages over 106.0 s at 100.0 Hz, largest gap 0.064 s``."""
        if self.messages < 2:
            return f"{self.topic}: {self.messages} message(s), no rate"
        return (
            f"{self.topic}: {self.messages} messages over {self.duration_s:.1f} s at "
            f"{self.rate_hz:.1f} Hz, largest gap {self.max_gap_s:.3f} s"
        )


def measured_rate(topic: str, stamps: np.ndarray) -> MeasuredRate:
    """The rate of ``topic`` from its ``stamps`` (ns, any order): median and largest interval."""
    s = np.sort(np.asarray(stamps, dtype=np.int64))
    if len(s) < 2:
        return MeasuredRate(topic, len(s), 0.0, float("nan"), 0.0)
    d = np.diff(s) / 1e9
    median = float(np.median(d))
    rate = 1.0 / median if median > 0 else float("inf")
    return MeasuredRate(topic, len(s), float(s[-1] - s[0]) / 1e9, rate, float(d.max()))


def describe_rate(rate: MeasuredRate | dict[str, Any] | None) -> str:
    """``MeasuredRate.describe`` of a rate or of its ``to_dict`` (as reports hold it)."""
    if rate is None:
        return "no measured rate"
    return (rate if isinstance(rate, MeasuredRate) else MeasuredRate(**rate)).describe()
