"""Feature normalizer that lives inside the policy module and is baked into its ONNX graph."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


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
