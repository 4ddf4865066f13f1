"""Exponential moving average of a module's parameters (Polyak averaging), as Diffusion Policy
and EDM train with: the averaged weights are the ones evaluated, saved and exported.

    ema = ParamEMA(module.parameters(), max_decay=0.999)
    ...; optimizer.step(); ema.update()
    with ema.swapped():      # the module holds the averaged weights inside the block
        evaluate(module); save(module)

The average itself is :class:`torch.optim.swa_utils.AveragedModel` with
:func:`~torch.optim.swa_utils.get_ema_multi_avg_fn`; Spine keeps the glue: only trainable
parameters are averaged (buffers such as normalizer statistics are not, and stay live), the
decay warms up as ``min(max_decay, (1 + n) / (10 + n))`` after ``n`` updates so the average
forgets the random initialization within the first few hundred steps, and the swap that lets
checkpoints hold the average while resume gets the live weights back.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


class ParamEMA:
    """Shadow copies of ``params`` updated with ``shadow += (1 - decay) * (param - shadow)``.

    Only parameters with ``requires_grad`` are followed (each once). The shadows start equal
    to the parameters at construction."""

    def __init__(self, params: Iterable[torch.nn.Parameter], max_decay: float) -> None:
        if not 0.0 < max_decay < 1.0:
            raise ValueError(f"ParamEMA: max_decay must be in (0, 1), got {max_decay}")
        self.params = list(dict.fromkeys(p for p in params if p.requires_grad))
        # AveragedModel follows a module: a ParameterList over the live parameters (no copy,
        # no buffers), which it deep-copies into the shadows.
        self._live = torch.nn.ParameterList(self.params)
        self._average = AveragedModel(self._live, use_buffers=False).requires_grad_(False)
        self._average.update_parameters(self._live)  # n_averaged 0 -> 1: W_0^EMA = W_0
        self.shadow: list[torch.Tensor] = list(self._average.module.parameters())
        self.max_decay = max_decay
        self._avg_fn_decay: float | None = None  # the decay self._average.multi_avg_fn applies
        self._swapped = False

    @property
    def updates(self) -> int:
        """How many updates the average has taken (AveragedModel also counts its initial copy)."""
        return int(self._average.n_averaged) - 1

    def decay(self) -> float:
        """The decay of the next update."""
        n = self.updates
        return min(self.max_decay, (1 + n) / (10 + n))

    @torch.no_grad()
    def update(self) -> None:
        """Move the shadows toward the current parameters (call after each optimizer step)."""
        if self._swapped:
            raise RuntimeError("ParamEMA.update inside swapped(): the module holds the average")
        decay = self.decay()
        if decay != self._avg_fn_decay:  # every update while warming up, then never again
            self._average.multi_avg_fn = get_ema_multi_avg_fn(decay)
            self._avg_fn_decay = decay
        self._average.update_parameters(self._live)

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
        self._average.n_averaged.fill_(updates + 1)
