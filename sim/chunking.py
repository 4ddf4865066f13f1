"""What runs on which tick: action-chunk execution and the high level's subgoal hold.

A chunked policy plans ``H = chunk_length`` joint targets at once; the control loop needs one
per tick. Numpy only: the runtime (``deploy.runtime``) and training-time evaluation
(``policies.torch_graph``) execute chunks and hold subgoals with these same classes.

- ``RecedingHorizon``: execute the first ``execute_steps`` targets of a chunk, one per tick,
  then plan again (Diffusion Policy's receding-horizon control).
- ``TemporalEnsemble``: plan every ``every`` ticks and command, on each tick, the weighted
  mean of every chunk's target for that tick; weights ``exp(-decay * i)`` with ``i = 0`` the
  oldest plan (ACT's temporal ensembling, Zhao et al. 2023), which smooths plan switches.
- ``SubgoalHold``: the high level of a hierarchical policy runs every ``every`` ticks; its
  output is held for the low level in between.

Every class has ``due()`` (must the graph run before this tick's ``pop``/``value``?) and
``reset()`` (new episode). No allocation per tick beyond the ensemble's small mean.
"""

from __future__ import annotations

from collections import deque

import numpy as np


class RecedingHorizon:
    """Queue of the first ``execute_steps`` targets of the latest chunk.

    Args:
        execute_steps: targets executed per chunk (1..H).
        n_joints: joints per target.
    """

    def __init__(self, execute_steps: int, n_joints: int) -> None:
        if execute_steps < 1:
            raise ValueError(f"RecedingHorizon: execute_steps must be >= 1, got {execute_steps}")
        self.execute_steps = execute_steps
        self._queue = np.zeros((execute_steps, n_joints))
        self._next = execute_steps  # empty

    def reset(self) -> None:
        self._next = self.execute_steps

    def due(self) -> bool:
        """Whether the queue is empty (plan before ``pop``)."""
        return self._next >= self.execute_steps

    def push(self, chunk: np.ndarray) -> None:
        """Replace the queue by ``chunk[:execute_steps]``; ``chunk`` is ``(H, J)`` (rad)."""
        if len(chunk) < self.execute_steps:
            raise ValueError(f"chunk of {len(chunk)} targets, execute_steps is {self.execute_steps}")
        self._queue[:] = chunk[: self.execute_steps]
        self._next = 0

    def pop(self) -> np.ndarray:
        """This tick's target ``(J,)`` (a view, valid until the next ``push``)."""
        if self.due():
            raise RuntimeError("RecedingHorizon.pop: the queue is empty; push a chunk first")
        target = self._queue[self._next]
        self._next += 1
        return target


class TemporalEnsemble:
    """Weighted mean over the overlapping chunks that cover the current tick.

    Args:
        chunk_length: targets per chunk ``H``.
        every: ticks between plans (1: plan every tick, as in ACT); at most ``H``.
        decay: ``m`` in the weights ``exp(-m * i)``, ``i = 0`` the oldest plan still covering
            the tick (0: plain mean).
    """

    def __init__(self, chunk_length: int, every: int = 1, decay: float = 0.01) -> None:
        if not 1 <= every <= chunk_length:
            raise ValueError(
                f"TemporalEnsemble: every must be in 1..{chunk_length} (chunk_length), got {every}"
            )
        self.chunk_length, self.every, self.decay = chunk_length, every, decay
        self._plans: deque[tuple[int, np.ndarray]] = deque(maxlen=-(-chunk_length // every))
        self._tick = 0

    def reset(self) -> None:
        self._plans.clear()
        self._tick = 0

    def due(self) -> bool:
        """Whether a plan is due on this tick."""
        return self._tick % self.every == 0

    def push(self, chunk: np.ndarray) -> None:
        """Add the chunk ``(H, J)`` planned on this tick (copied)."""
        if len(chunk) != self.chunk_length:
            raise ValueError(f"chunk of {len(chunk)} targets, chunk_length is {self.chunk_length}")
        self._plans.append((self._tick, np.array(chunk, dtype=np.float64)))

    def pop(self) -> np.ndarray:
        """This tick's target ``(J,)``: the weighted mean of the chunks covering it."""
        t = self._tick
        rows = [chunk[t - start] for start, chunk in self._plans if start <= t < start + self.chunk_length]
        if not rows:
            raise RuntimeError("TemporalEnsemble.pop: no chunk covers this tick; push one first")
        w = np.exp(-self.decay * np.arange(len(rows)))
        self._tick += 1
        return (w @ np.asarray(rows)) / w.sum()


class SubgoalHold:
    """Holds the high level's output for ``every`` ticks.

    Args:
        every: ticks between high-level calls (``policy_hz / high_level_hz``).
    """

    def __init__(self, every: int) -> None:
        if every < 1:
            raise ValueError(f"SubgoalHold: every must be >= 1, got {every}")
        self.every = every
        self._age = every  # nothing held yet

    def reset(self) -> None:
        self._age = self.every

    def due(self) -> bool:
        """Whether the high level must run on this tick."""
        return self._age >= self.every

    def ran(self) -> None:
        """The high level just produced a fresh subgoal."""
        self._age = 0

    def tick(self) -> None:
        """One control tick used the held subgoal."""
        self._age += 1
