"""The single-optimizer training step shared by the regression-style families (GCBC, diffusion
and its student): AdamW, its learning rate cosine-annealed to 0 over the planned steps, and an
optional moving average of the weights (``policies.ema``) that evaluation and checkpoints use."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from policies.ema import ParamEMA

EMA_LIVE = "ema_live.safetensors"  # the live (training) weights next to an averaged checkpoint


class AdamWCosine:
    """Mixin: ``setup_optimizer`` in ``setup_training``, then ``descend(loss)`` per update.

    Exposes the optimizer and scheduler under the name ``"policy"`` (what checkpoints and
    resumes store). With ``ema_decay > 0`` the trainer evaluates and saves inside
    :meth:`averaged`, so a checkpoint holds the averaged weights; ``save_state`` keeps the live
    ones beside it for ``resume``."""

    _opt: torch.optim.Optimizer | None = None
    _sched: torch.optim.lr_scheduler.LRScheduler | None = None
    _ema: ParamEMA | None = None

    def setup_optimizer(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float,
        weight_decay: float,
        total_steps: int,
        ema_decay: float = 0.0,
    ) -> None:
        """AdamW over ``params``; cosine schedule to 0 over ``total_steps`` (at least 1); a
        moving average of ``params`` with decay ``ema_decay`` (0: none)."""
        params = list(params)
        self._opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
        self._sched = torch.optim.lr_scheduler.CosineAnnealingLR(self._opt, T_max=max(total_steps, 1))
        self._ema = ParamEMA(params, ema_decay) if ema_decay > 0 else None

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {} if self._opt is None else {"policy": self._opt}

    def schedulers(self) -> dict[str, torch.optim.lr_scheduler.LRScheduler]:
        return {} if self._sched is None else {"policy": self._sched}

    def descend(self, loss: torch.Tensor) -> None:
        """One optimizer step on ``loss``, then one scheduler step (and one average update)."""
        assert self._opt is not None and self._sched is not None, "call setup_training first"
        self._opt.zero_grad(set_to_none=True)
        loss.backward()
        self._opt.step()
        self._sched.step()
        if self._ema is not None:
            self._ema.update()

    def averaged(self) -> AbstractContextManager[None]:
        """A block in which the module holds its averaged weights (a no-op without EMA)."""
        return nullcontext() if self._ema is None else self._ema.swapped()

    def save_state(self, directory: Path) -> None:
        """With EMA: the live weights and the update count, as ``ema_live.safetensors``."""
        if self._ema is not None:
            tensors = {f"live.{i}": t.contiguous() for i, t in enumerate(self._ema.live())}
            save_file(tensors, str(Path(directory) / EMA_LIVE), metadata={"updates": str(self._ema.updates)})

    def load_state(self, directory: Path) -> None:
        """Resume with EMA: the loaded (averaged) weights become the average again and the live
        ones come back from ``ema_live.safetensors``; without that file both start equal."""
        if self._ema is None:
            return
        path = Path(directory) / EMA_LIVE
        if not path.is_file():
            print(f"{directory}: no {EMA_LIVE}; the moving average restarts from the loaded weights")
            self._ema.restore([p.detach().clone() for p in self._ema.params], 0)
            return
        with safe_open(str(path), framework="pt") as f:
            updates = int((f.metadata() or {}).get("updates", "0"))
        tensors = load_file(str(path))
        self._ema.restore([tensors[f"live.{i}"] for i in range(len(tensors))], updates)
