"""Feature normalizer that lives inside the policy module and is baked into its ONNX graph."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from policies import distributed


class NotFitted(RuntimeError):
    """A normalizer was used for export before its statistics were fitted."""


class Normalizer(nn.Module):
    """``(x - mean) / std`` with statistics stored as buffers (saved and exported with weights).

    Args:
        size: feature dimension.
        eps: floor on the standard deviation, so constant features do not blow up.
    """

    def __init__(self, size: int, eps: float = 1e-3) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("std", torch.ones(size))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def fit(self, data: np.ndarray | torch.Tensor) -> None:
        """Fit mean and std on ``data`` of shape ``(N, size)``; NaN rows are an error."""
        x = torch.as_tensor(np.asarray(data), dtype=torch.float32)
        if x.ndim != 2 or x.shape[1] != self.mean.numel():
            raise ValueError(f"normalizer expects (N, {self.mean.numel()}), got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("normalizer: data has NaN or Inf")
        self.mean.copy_(x.mean(0))
        self.std.copy_(x.std(0).clamp_min(self.eps))
        self.fitted.fill_(True)

    def check_fitted(self, name: str) -> None:
        if not bool(self.fitted):
            raise NotFitted(f"normalizer {name!r} has no fitted statistics; fit it before export")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class RunningNormalizer(Normalizer):
    """A ``Normalizer`` whose mean and std follow all data seen so far (float64 sums as
    buffers, so a checkpoint resumes the statistics)."""

    def __init__(self, size: int, eps: float = 1e-3) -> None:
        super().__init__(size, eps)
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("total", torch.zeros(size, dtype=torch.float64))
        self.register_buffer("total_sq", torch.zeros(size, dtype=torch.float64))
        self.mark_synced()

    def update(self, data: np.ndarray) -> None:
        """Add rows of ``data`` (N, size) to the statistics; NaN is an error."""
        if self.mean.numel() == 0:  # an empty goal (a task without one): nothing to learn
            self.fitted.fill_(True)
            return
        x = torch.as_tensor(np.asarray(data, np.float64)).reshape(-1, self.mean.numel())
        if not torch.isfinite(x).all():
            raise ValueError("normalizer: data has NaN or Inf")
        self.count += len(x)
        self.total += x.sum(0)
        self.total_sq += (x * x).sum(0)
        mean = self.total / self.count
        var = (self.total_sq / self.count - mean * mean).clamp_min(0.0)
        self.mean.copy_(mean)
        self.std.copy_(var.sqrt().clamp_min(self.eps))
        self.fitted.fill_(True)

    def _sums(self) -> torch.Tensor:
        return torch.cat([self.count.reshape(1), self.total, self.total_sq])

    def mark_synced(self) -> None:
        """The statistics now held are every rank's (fresh, or loaded from a checkpoint)."""
        self._synced = self._sums().clone()

    def sync_ranks(self, dist: distributed.Dist) -> None:
        """Under torchrun: add every rank's rows since the last sync to every rank's statistics,
        so the ranks' normalizers (part of the weights a step uses) agree again."""
        if not dist.active or self.mean.numel() == 0:
            return
        sums = self._sums()
        delta = sums - self._synced
        torch.distributed.all_reduce(delta)
        merged = self._synced + delta
        self._synced = merged.clone()
        n = self.mean.numel()
        self.count.copy_(merged[0])
        self.total.copy_(merged[1 : 1 + n])
        self.total_sq.copy_(merged[1 + n :])
        if self.count > 0:
            mean = self.total / self.count
            self.mean.copy_(mean)
            var = (self.total_sq / self.count - mean * mean).clamp_min(0.0)
            self.std.copy_(var.sqrt().clamp_min(self.eps))
