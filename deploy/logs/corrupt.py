"""Corrupt messages in a log: found, skipped, counted and reported, never a reason to abort.

A message is corrupt when ``rosbags`` cannot decode it, when its arrays do not match its joint
names, when a value is not finite or beyond any joint's range (``MAX_ABS``), or when a value or
a stamp jumps far from both its neighbours, which agree with each other (an isolated spike):
what one flipped byte in a float or an integer looks like. A jump by whole turns of a joint
that wraps at +-pi is not a spike. A sustained departure (a log in degrees, a real gap) is not
one either: it is left to the unit check and the gap report.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

VALUE_JUMP_RAD = 1.0  # a joint position that leaves both neighbours by more than this is a spike
STAMP_JUMP_S = 1.0  # a stamp that leaves both neighbours by more than this (and 100 periods) is one
MAX_ABS = 1e3  # rad or rad/s: beyond any joint's position (even in degrees) or speed
EXAMPLES = 3  # corrupt messages described per topic


@dataclass
class Corrupt:
    """Corrupt messages skipped, per topic, with the first few described."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, topic: str, what: str) -> None:
        """Count one corrupt message on ``topic``; ``what`` says which and why."""
        self.counts[topic] += 1
        seen = self.examples.setdefault(topic, [])
        if len(seen) < EXAMPLES:
            seen.append(what)

    def notes(self) -> list[str]:
        """One line per topic, for a log's ``skipped`` list."""
        return [
            f"{n} corrupt message(s) on {topic} left out: "
            + "; ".join(self.examples[topic])
            + ("; ..." if n > EXAMPLES else "")
            for topic, n in sorted(self.counts.items())
        ]

    def to_dict(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))


def decode(reader: Any, conn: Any, raw: Any, index: int, corrupt: Corrupt) -> Any | None:
    """``rosbags``' decoding of one payload, or None (counted in ``corrupt``) if it fails."""
    try:
        return reader.deserialize(raw, conn.msgtype)
    except Exception as e:  # rosbags raises several types for a payload that does not decode
        corrupt.add(conn.topic, f"message {index} does not decode ({type(e).__name__}: {e})")
        return None


def stamp_spikes(stamps: np.ndarray) -> np.ndarray:
    """(N,) bool: stamps (ns, recording order) that leave both neighbours, which agree, by
    more than ``STAMP_JUMP_S`` and 100 median periods; at either end, by more than ten times the
    rest of the log's span as well."""
    s = np.asarray(stamps, dtype=np.float64)
    out = np.zeros(len(s), dtype=bool)
    if len(s) < 3:
        return out
    jump = max(STAMP_JUMP_S * 1e9, 100 * float(np.median(np.abs(np.diff(s)))))
    out[1:-1] = _spikes(s[:-2], s[1:-1], s[2:], jump)
    span = float(np.ptp(s[1:-1])) if len(s) > 3 else 0.0
    end = max(jump, 10 * span)
    out[0] = abs(s[0] - s[1]) > end and abs(s[2] - s[1]) <= jump / 2
    out[-1] = abs(s[-1] - s[-2]) > end and abs(s[-3] - s[-2]) <= jump / 2
    return out


def value_spikes(q: np.ndarray, jump: float = VALUE_JUMP_RAD) -> np.ndarray:
    """(N,) bool: rows of ``q`` (N, J) (rad, in time order) holding a value that is not finite,
    beyond ``MAX_ABS``, or a spike of more than ``jump`` from both neighbours."""
    q = np.asarray(q, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        out = ~np.all(np.isfinite(q), axis=1) | np.any(np.abs(q) > MAX_ABS, axis=1)
        if len(q) >= 3:
            mid = _spikes(q[:-2], q[1:-1], q[2:], jump) & ~_whole_turns(q[1:-1], q[1:-1] - q[:-2], jump)
            out[1:-1] |= mid.any(axis=1)
            first = (np.abs(q[0] - q[1]) > jump) & (np.abs(q[2] - q[1]) <= jump / 2)
            last = (np.abs(q[-1] - q[-2]) > jump) & (np.abs(q[-3] - q[-2]) <= jump / 2)
            out[0] |= bool(np.any(first & ~_whole_turns(q[0], q[0] - q[1], jump)))
            out[-1] |= bool(np.any(last & ~_whole_turns(q[-1], q[-1] - q[-2], jump)))
    return out


def isolated_out_of_range(values: np.ndarray, bound: float) -> np.ndarray:
    """(N,) bool: entries of ``values`` (N,) beyond ``bound`` or not finite whose neighbours are
    within it: one corrupt command among good ones (a run beyond it is not isolated)."""
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(v) | (np.abs(v) > bound)
        absurd = ~np.isfinite(v) | (np.abs(v) > MAX_ABS)
    good = ~bad
    isolated = bad & np.r_[len(v) > 1, good[:-1]] & np.r_[good[1:], len(v) > 1]
    return isolated | absurd


def _spikes(prev: np.ndarray, cur: np.ndarray, nxt: np.ndarray, jump: float) -> np.ndarray:
    return (np.abs(cur - prev) > jump) & (np.abs(cur - nxt) > jump) & (np.abs(nxt - prev) <= jump / 2)


def _whole_turns(value: np.ndarray, step: np.ndarray, jump: float) -> np.ndarray:
    """A step by a whole number of turns (within ``jump / 2``) to a value within one turn: a
    continuous joint wrapping at +-pi, not a corrupt value."""
    turns = np.round(step / (2 * np.pi))
    return (turns != 0) & (np.abs(step - 2 * np.pi * turns) <= jump / 2) & (np.abs(value) <= 2 * np.pi + 0.1)
