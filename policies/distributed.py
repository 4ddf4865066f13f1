"""Data-parallel training under ``torchrun``: the same Hydra command on N processes.

    torchrun --nproc_per_node=2 -m policies.train_app task=reach policy=gcbc dataset=... out=...
    torchrun --nnodes=2 --node_rank=0 --master_addr=10.0.0.1 --master_port=29500 \\
        --nproc_per_node=8 -m policies.train_app ...

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and ``MASTER_ADDR/PORT``;
:func:`init` reads them and joins the process group (gloo on CPU, NCCL when the ranks train on
CUDA). Without them (a plain ``spine-train``) every function here is the single-process no-op.

How a step is split, so that N processes compute what one does (``batch_size`` is the *global*
batch, the same Hydra value for 1 or N processes):

- Every rank seeds torch, numpy and the family's samplers with the same seed, so each draws the
  same global batch (indices, hindsight goals, diffusion noise) and the same initial weights
  (also broadcast from rank 0, in case a family draws them from elsewhere).
- Rank r keeps its contiguous slice ``[r * B / N, (r + 1) * B / N)`` of that batch
  (:meth:`Dist.shard`): each rank runs the networks on B / N samples.
- Before each optimizer step the gradients are averaged over the ranks (a step pre-hook on every
  optimizer, :meth:`Dist.sync_gradients`). The mean of N slice-mean gradients is the
  global-batch mean gradient, so the update equals one process's up to float summation order.
- Only rank 0 evaluates, logs, draws the progress bar and writes checkpoints; logged losses are
  averaged over the ranks first (:meth:`Dist.mean_metrics`).
- A rank that stops answering fails the others after ``SPINE_DIST_TIMEOUT_S`` (900 s)
  instead of hanging them; ``SPINE_DIST_BACKEND=gloo`` keeps CUDA machines on gloo.
- What must differ between ranks (an online family's environments) is seeded from
  :meth:`Dist.rank_seed`: an online family's ranks each collect their own experience, so its
  result matches one process statistically, not step for step.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as torch_dist

RANK_SEED_STRIDE = 1_000_003  # rank r's environment seeds start at seed + r * this


@dataclass(frozen=True)
class Dist:
    """This process's place among the ranks (``world_size`` 1: not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def rank_seed(self, seed: int) -> int:
        """The seed of this rank's own random streams (environments): ``seed`` on rank 0."""
        return seed + self.rank * RANK_SEED_STRIDE

    def local_batch(self, global_batch: int, what: str = "batch_size") -> int:
        """This rank's share of a global batch; refuses a batch the ranks cannot split evenly."""
        if global_batch % self.world_size:
            raise ValueError(
                f"{what}={global_batch} is the global batch: it must divide evenly over "
                f"WORLD_SIZE={self.world_size} processes"
            )
        return global_batch // self.world_size

    def shard(self, batch: Any) -> Any:
        """This rank's contiguous slice along dim 0 of a tensor, array or dict of them."""
        if not self.active:
            return batch
        if isinstance(batch, Mapping):
            return {k: self.shard(v) for k, v in batch.items()}
        n = self.local_batch(len(batch), "the global batch")
        return batch[self.rank * n : (self.rank + 1) * n]

    def sync_gradients(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Average ``params``' gradients over the ranks (a missing gradient counts as zero)."""
        if not self.active:
            return
        params = [p for p in params if p.requires_grad]
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        torch_dist.all_reduce(flat, op=torch_dist.ReduceOp.SUM)
        flat /= self.world_size
        offset = 0
        for p in params:
            n = p.grad.numel()
            p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
            offset += n

    def attach(self, optimizers: Iterable[torch.optim.Optimizer]) -> None:
        """Average gradients before every ``step()`` of these optimizers."""
        if not self.active:
            return
        for opt in optimizers:
            params = [p for group in opt.param_groups for p in group["params"]]
            opt.register_step_pre_hook(lambda *_, params=params: self.sync_gradients(params))

    def broadcast_module(self, module: torch.nn.Module) -> None:
        """Rank 0's parameters and buffers on every rank."""
        if not self.active:
            return
        with torch.no_grad():
            for t in [*module.parameters(), *module.buffers()]:
                torch_dist.broadcast(t.data, src=0)

    def mean_metrics(self, metrics: Mapping[str, float]) -> dict[str, float]:
        """Each metric averaged over the ranks (every rank must call this at the same step)."""
        if not self.active or not metrics:
            return dict(metrics)
        values = torch.tensor([float(v) for v in metrics.values()], dtype=torch.float64)
        torch_dist.all_reduce(values, op=torch_dist.ReduceOp.SUM)
        return {k: float(v) / self.world_size for k, v in zip(metrics, values, strict=True)}

    def barrier(self) -> None:
        if self.active:
            torch_dist.barrier()

    def max_abs_difference(self, module: torch.nn.Module) -> float:
        """Largest difference of any parameter or floating buffer (normalizer statistics)
        between this rank and rank 0 (a sync check)."""
        if not self.active:
            return 0.0
        worst = torch.zeros((), dtype=torch.float64)
        tensors = [*module.parameters(), *(b for b in module.buffers() if b.is_floating_point())]
        for p in tensors:
            ref = p.detach().clone()
            torch_dist.broadcast(ref, src=0)
            worst = torch.maximum(worst, (p.detach() - ref).abs().max().double())
        torch_dist.all_reduce(worst, op=torch_dist.ReduceOp.MAX)
        return float(worst)


_CURRENT = Dist()


def init() -> Dist:
    """Join the process group ``torchrun`` describes (once); ``Dist()`` when not under it."""
    global _CURRENT
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _CURRENT
    if not torch_dist.is_initialized():
        gpu = torch.cuda.is_available() and os.environ.get("SPINE_DIST_BACKEND") != "gloo"
        backend = "nccl" if gpu else "gloo"
        timeout = datetime.timedelta(seconds=float(os.environ.get("SPINE_DIST_TIMEOUT_S", "900")))
        torch_dist.init_process_group(backend=backend, timeout=timeout)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    _CURRENT = Dist(torch_dist.get_rank(), torch_dist.get_world_size(), local_rank)
    return _CURRENT


def current() -> Dist:
    """The ``Dist`` that :func:`init` set up (single process before or without it)."""
    return _CURRENT


def shutdown() -> None:
    """Leave the process group (after the last collective)."""
    global _CURRENT
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()
    _CURRENT = Dist()
