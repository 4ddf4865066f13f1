"""Exponential moving average of a module's parameters (Polyak averaging), as Diffusion Policy
and EDM train with: the averaged weights are the ones evaluated, saved and exported.

    ema = ParamEMA(module.parameters(), max_decay=0.999)
    ...; optimizer.step(); ema.update()
    with ema.swapped():      # the module holds the averaged weights inside the block
        evaluate(module); save(module)

The decay warms up as ``min(max_decay, (1 + n) / (10 + n))`` after ``n`` updates, so the
average forgets the random initialization within the first few hundred steps.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch


class ParamEMA:
    """Shadow copies of ``params`` updated with ``shadow += (1 - decay) * (param - shadow)``."""

    def __init__(self, params: Iterable[torch.nn.Parameter], max_decay: float) -> None:
        if not 0.0 < max_decay < 1.0:
            raise ValueError(f"ParamEMA: max_decay must be in (0, 1), got {max_decay}")
        self.params = [p for p in params if p.requires_grad]
        self.shadow = [p.detach().clone() for p in self.params]
        self._views = [p.detach() for p in self.params]  # share storage: built once, not per update
        self.max_decay = max_decay
        self.updates = 0
        self._swapped = False

    def decay(self) -> float:
        """The decay of the next update."""
        return min(self.max_decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        """Move the shadows toward the current parameters (call after each optimizer step)."""
        if self._swapped:
            raise RuntimeError("ParamEMA.update inside swapped(): the module holds the average")
        weight = 1.0 - self.decay()
        torch._foreach_lerp_(self.shadow, self._views, weight)
        self.updates += 1

    @torch.no_grad()
    def _swap(self) -> None:
        for p, s in zip(self.params, self.shadow, strict=True):
            tmp = p.detach().clone()
            p.copy_(s)
            s.copy_(tmp)
        self._swapped = not self._swapped

    @contextmanager
    def swapped(self) -> Iterator[None]:
        """Inside the block the parameters are the averages (and the shadows the live
        weights); outside, the live weights again. Re-entering is a no-op."""
        if self._swapped:
            yield
            return
        self._swap()
        try:
            yield
        finally:
            self._swap()

    def live(self) -> list[torch.Tensor]:
        """The live (training) weights, whether or not the average is swapped in."""
        return [t.detach().clone() for t in (self.shadow if self._swapped else self.params)]

    @torch.no_grad()
    def restore(self, live: list[torch.Tensor], updates: int) -> None:
        """Resume: the module's current parameters become the average (they were saved from
        inside :meth:`swapped`), ``live`` the training weights, after ``updates`` updates."""
        if self._swapped:
            raise RuntimeError("ParamEMA.restore inside swapped()")
        if len(live) != len(self.params):
            raise ValueError(f"ParamEMA.restore: {len(live)} live tensors for {len(self.params)} parameters")
        for p, s, t in zip(self.params, self.shadow, live, strict=True):
            if t.shape != p.shape:
                raise ValueError(
                    f"ParamEMA.restore: live tensor {tuple(t.shape)} for parameter {tuple(p.shape)}"
                )
            s.copy_(p.detach())
            p.copy_(t)
        self.updates = updates
