"""Small network builders shared by the policy families."""

from __future__ import annotations

from torch import nn


def mlp(in_dim: int, hidden: int, layers: int, out_dim: int, act: type[nn.Module] = nn.GELU) -> nn.Sequential:
    """``layers`` hidden layers of width ``hidden`` with LayerNorm, then a linear head."""
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers):
        mods += [nn.Linear(d, hidden), nn.LayerNorm(hidden), act()]
        d = hidden
    mods.append(nn.Linear(d, out_dim))
    return nn.Sequential(*mods)
