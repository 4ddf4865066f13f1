"""The single-optimizer training step shared by the regression-style families (GCBC, diffusion
and its student): AdamW, its learning rate cosine-annealed to 0 over the planned steps."""

from __future__ import annotations

from collections.abc import Iterable

import torch


class AdamWCosine:
    """Mixin: ``setup_optimizer`` in ``setup_training``, then ``descend(loss)`` per update.

    Exposes the optimizer and scheduler under the name ``"policy"`` (what checkpoints and
    resumes store)."""

    _opt: torch.optim.Optimizer | None = None
    _sched: torch.optim.lr_scheduler.LRScheduler | None = None

    def setup_optimizer(
        self, params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float, total_steps: int
    ) -> None:
        """AdamW over ``params``; cosine schedule to 0 over ``total_steps`` (at least 1)."""
        self._opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
        self._sched = torch.optim.lr_scheduler.CosineAnnealingLR(self._opt, T_max=max(total_steps, 1))

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {} if self._opt is None else {"policy": self._opt}

    def schedulers(self) -> dict[str, torch.optim.lr_scheduler.LRScheduler]:
        return {} if self._sched is None else {"policy": self._sched}

    def descend(self, loss: torch.Tensor) -> None:
        """One optimizer step on ``loss``, then one scheduler step."""
        assert self._opt is not None and self._sched is not None, "call setup_training first"
        self._opt.zero_grad(set_to_none=True)
        loss.backward()
        self._opt.step()
        self._sched.step()
