"""Resample a mapped log onto the policy's clock by sample-and-hold, with a gap tolerance.

Tick ``k`` is at ``t0 + k / rate_hz``; it takes the latest joint state at or before it. A tick
whose latest state is older than ``max_gap_s`` lies in a gap: it is marked, never filled, and
splits the log into segments. Commands are held per joint the same way; a joint without a
logged command yet (or ever) gets its measured position, and ``from_log`` says which are real.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deploy.logs.mapped import MappedLog
from deploy.logs.read import LogError


@dataclass
class Ticks:
    """A log on the policy's clock; arrays have one row per tick (T ticks, J joints)."""

    stamps: np.ndarray  # (T,) int64 ns
    joint_pos: np.ndarray  # (T, J) rad, held
    joint_vel: np.ndarray  # (T, J) rad/s, held
    command: np.ndarray  # (T, J) rad, held logged target, measured position where none
    from_log: np.ndarray  # (T, J) bool: the command entry is a logged target
    age_s: np.ndarray  # (T,) age of the held joint state (s)
    segment: np.ndarray  # (T,) int: index of the gap-free run the tick is in, -1 in a gap
    rate_hz: float
    max_gap_s: float

    def __len__(self) -> int:
        return len(self.stamps)

    @property
    def valid(self) -> np.ndarray:
        """(T,) bool: the tick is outside every gap."""
        return self.segment >= 0

    def gaps(self) -> list[tuple[float, float]]:
        """Gaps as (start, end) seconds from the first tick."""
        t = (self.stamps - self.stamps[0]) / 1e9
        bad = ~self.valid
        edges = np.flatnonzero(np.diff(np.r_[0, bad.astype(np.int8), 0]))
        return [(float(t[a]), float(t[b - 1])) for a, b in zip(edges[::2], edges[1::2], strict=True)]

    def episodes(self, steps: int) -> np.ndarray:
        """(T,) episode index: each segment cut into runs of ``steps`` ticks; -1 in gaps.

        A segment's last run may be shorter; runs of a single tick are dropped (-1).
        """
        out = np.full(len(self), -1, dtype=np.int64)
        episode = 0
        for seg in np.unique(self.segment[self.segment >= 0]):
            idx = np.flatnonzero(self.segment == seg)
            for start in range(0, len(idx), steps):
                run = idx[start : start + steps]
                if len(run) >= 2:
                    out[run] = episode
                    episode += 1
        return out


def resample(
    log: MappedLog,
    rate_hz: float,
    max_gap_s: float,
    start_s: float = 0.0,
    end_s: float | None = None,
) -> Ticks:
    """Ticks at ``rate_hz`` from ``start_s`` to ``end_s`` (s after the first joint state; None: the end)."""
    if rate_hz <= 0 or max_gap_s <= 0:
        raise ValueError(f"resample: rate_hz ({rate_hz}) and max_gap_s ({max_gap_s}) must be > 0")
    s = log.joint_pos.stamps
    first, last = int(s[0]), int(s[-1])
    t_from = first + round(start_s * 1e9)
    t_to = last if end_s is None else min(last, first + round(end_s * 1e9))
    if t_to < t_from:
        raise LogError(
            f"log {log.path}: window [{start_s}, {end_s}] s is outside the log's {(last - first) / 1e9:.2f} s"
        )
    period = 1e9 / rate_hz
    stamps = t_from + np.round(np.arange(int((t_to - t_from) // period) + 1) * period).astype(np.int64)
    i = np.searchsorted(s, stamps, side="right") - 1
    age = (stamps - s[i]) / 1e9
    gap = age > max_gap_s
    pos, vel = log.joint_pos.values[i], log.joint_vel.values[i]
    command, from_log = pos.copy(), np.zeros(pos.shape, dtype=bool)
    if log.command is not None:
        k = np.searchsorted(log.command.stamps, stamps, side="right") - 1
        held = np.where(k[:, None] >= 0, log.command.values[np.maximum(k, 0)], np.nan)
        from_log = ~np.isnan(held)
        command = np.where(from_log, held, pos)
    segment = np.where(gap, -1, _runs(gap))
    return Ticks(stamps, pos, vel, command, from_log, age, segment, float(rate_hz), float(max_gap_s))


def _runs(gap: np.ndarray) -> np.ndarray:
    """Index of the gap-free run each tick is in (values at gap ticks are meaningless)."""
    starts = ~gap & np.r_[True, gap[:-1]]
    return np.cumsum(starts) - 1
