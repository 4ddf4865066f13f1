"""A time series read from a log: values observed at stamps, held until the next."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Series:
    """``values[i]`` was observed at ``stamps[i]`` (ns)."""

    stamps: np.ndarray  # (N,) int64 ns
    values: np.ndarray  # (N, D) float64

    def __len__(self) -> int:
        return len(self.stamps)

    def hold(self, stamp: int) -> np.ndarray | None:
        """Sample-and-hold: the latest value at or before ``stamp`` (None before the first)."""
        i = int(np.searchsorted(self.stamps, stamp, side="right")) - 1
        return None if i < 0 else self.values[i]
