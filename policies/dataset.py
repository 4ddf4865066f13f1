"""Trajectory-aware sampling over a collected dataset (``sim.collect`` format), shared by
every family: uniform transitions, hindsight goals (OGBench-style current / future-in-trajectory
/ random mixes) and fixed-length chunks of future actions (diffusion policies).

All samplers work on indices into the flat arrays; ``gather`` turns indices into tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


class TrajectoryDataset:
    """Flat transitions with their episode boundaries.

    Args:
        data: arrays from ``sim.collect.load_dataset`` (needs ``episode`` and ``done``); the
            transitions of an episode must be contiguous and in order, as the collectors write them.
        seed: seeds this dataset's own random generator.
    """

    def __init__(self, data: dict[str, np.ndarray], seed: int = 0) -> None:
        self.data = data
        self.size = len(data["episode"])
        episode = np.asarray(data["episode"])
        starts = np.flatnonzero(np.r_[True, episode[1:] != episode[:-1]])
        ends = np.r_[starts[1:] - 1, self.size - 1]
        lengths = ends - starts + 1
        self.episode_start = np.repeat(starts, lengths)  # (N,) first index of i's episode
        self.episode_end = np.repeat(ends, lengths)  # (N,) last index of i's episode
        self.rng = np.random.default_rng(seed)
        self._tensors: dict[str, torch.Tensor] = {}

    def tensor(self, key: str) -> torch.Tensor:
        """The whole array ``key`` as a float32 tensor (cached)."""
        if key not in self._tensors:
            self._tensors[key] = torch.as_tensor(np.asarray(self.data[key], dtype=np.float32))
        return self._tensors[key]

    def gather(self, key: str, idx: np.ndarray) -> torch.Tensor:
        """``data[key][idx]`` as float32; ``idx`` may be (B,) or (B, H)."""
        return self.tensor(key)[torch.as_tensor(idx)]

    def sample_indices(self, batch_size: int) -> np.ndarray:
        """(B,) uniform transition indices."""
        return self.rng.integers(self.size, size=batch_size)

    def sample_goals(self, idx: np.ndarray, mix: GoalMix) -> np.ndarray:
        """(B,) indices whose ``next_achieved_goal`` serves as the goal of transition ``idx``.

        With probability ``mix.current`` the goal is the transition's own outcome (index ``idx``),
        with ``mix.future`` a later state of the same episode (geometric with ``mix.discount``, or
        uniform when it is None), otherwise a random state of the dataset.
        """
        b = len(idx)
        u = self.rng.random(b)
        goal = self.rng.integers(self.size, size=b)  # random
        end = self.episode_end[idx]
        if mix.discount is None:
            span = end - idx + 1
            future = idx + np.floor(self.rng.random(b) * span).astype(np.int64)
        else:
            future = np.minimum(idx + self.rng.geometric(1.0 - mix.discount, size=b) - 1, end)
        take_future = u < mix.current + mix.future
        goal = np.where(take_future, future, goal)
        goal = np.where(u < mix.current, idx, goal)
        return goal

    def future_index(self, idx: np.ndarray, k: int) -> np.ndarray:
        """(B,) the index ``k`` steps later in the same episode (clipped at its last step)."""
        return np.minimum(idx + k, self.episode_end[idx])

    def chunk_indices(self, idx: np.ndarray, chunk_length: int) -> tuple[np.ndarray, np.ndarray]:
        """(B, H) indices of ``idx, idx+1, ..., idx+H-1`` clipped at each episode's end, and a
        (B, H) bool mask that is False where the chunk ran past the end (padding repeats the
        last action of the episode)."""
        raw = idx[:, None] + np.arange(chunk_length)[None, :]
        end = self.episode_end[idx][:, None]
        return np.minimum(raw, end), raw <= end


@dataclass(frozen=True)
class GoalMix:
    """Probabilities of hindsight goal sources; the remainder is random goals."""

    current: float = 0.2  # the transition's own next state
    future: float = 0.5  # a later state of the same trajectory
    discount: float | None = 0.99  # geometric future offsets; None: uniform over the rest

    def __post_init__(self) -> None:
        if not (0 <= self.current and 0 <= self.future and self.current + self.future <= 1):
            raise ValueError(f"GoalMix: probabilities must be >= 0 and sum to <= 1: {self}")
