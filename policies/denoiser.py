"""The diffusion policy's network: an EDM-preconditioned residual MLP over flat action chunks.

``D(x; sigma, obs, goal) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x, c_noise(sigma), cond)``
(Karras et al. 2022, Table 1) with

    c_skip = sd^2 / (sigma^2 + sd^2)      c_out = sigma sd / sqrt(sigma^2 + sd^2)
    c_in   = 1 / sqrt(sigma^2 + sd^2)     c_noise = ln(sigma) / 4

where ``sd`` is ``sigma_data``, the std of the (normalized) clean data. At sigma = 0 the
denoiser returns its input exactly. ``F`` is a residual MLP (pre-LayerNorm blocks) over the
scaled chunk concatenated with its condition: the normalized observation, a goal embedding
and Fourier features of ``c_noise``. A learned null embedding replaces the goal's where
``keep_goal`` is 0: classifier-free guidance.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def edm_scalings(
    sigma: torch.Tensor, sigma_data: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(c_skip, c_out, c_in, c_noise)``, each shaped like ``sigma``; ``c_noise`` clamps sigma
    at 1e-8 so that sigma = 0 stays finite (``c_out`` is then 0 anyway)."""
    var = sigma**2 + sigma_data**2
    c_skip = sigma_data**2 / var
    c_out = sigma * sigma_data / var.sqrt()
    c_in = 1.0 / var.sqrt()
    c_noise = sigma.clamp_min(1e-8).log() / 4.0
    return c_skip, c_out, c_in, c_noise


class FourierEmbedding(nn.Module):
    """``(B,)`` scalar -> ``(B, 2 * n)`` sin/cos features at fixed log-spaced frequencies."""

    def __init__(self, n: int = 16, max_freq: float = 64.0) -> None:
        super().__init__()
        self.register_buffer("freqs", torch.exp(torch.linspace(0.0, math.log(max_freq), n)))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angle = t[:, None] * self.freqs
        return torch.cat([angle.sin(), angle.cos()], dim=-1)


class ResidualBlock(nn.Module):
    """Pre-LayerNorm residual block that sees the condition: ``h + W2 gelu(W1 [LN(h), c])``."""

    def __init__(self, width: int, cond_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width + cond_dim, width)
        self.fc2 = nn.Linear(width, width)

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return h + self.fc2(nn.functional.gelu(self.fc1(torch.cat([self.norm(h), cond], dim=-1))))


class ChunkDenoiser(nn.Module):
    """EDM denoiser for flat normalized chunks ``x (B, D)`` (``D = chunk_length * n_joints``).

    Args:
        dim: ``D``, the flat chunk size.
        obs_dim: normalized observation size.
        goal_dim: normalized goal size.
        hidden: width of the residual trunk.
        layers: number of residual blocks.
        sigma_data: std of the clean data (1 for standardized chunks).
        goal_embed: size of the goal embedding (and of the learned null goal).
    """

    def __init__(
        self,
        dim: int,
        obs_dim: int,
        goal_dim: int,
        hidden: int,
        layers: int,
        sigma_data: float,
        goal_embed: int = 64,
    ) -> None:
        super().__init__()
        self.sigma_data = sigma_data
        self.noise_embed = FourierEmbedding()
        self.goal_embed = nn.Linear(goal_dim, goal_embed)
        self.null_goal = nn.Parameter(torch.zeros(goal_embed))  # the "no goal" embedding
        cond_dim = obs_dim + goal_embed + 2 * self.noise_embed.freqs.numel()
        self.inp = nn.Linear(dim + cond_dim, hidden)
        self.blocks = nn.ModuleList(ResidualBlock(hidden, cond_dim) for _ in range(layers))
        self.out_norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, dim)
        nn.init.zeros_(self.out.weight)  # F = 0 at init: D starts as c_skip x
        nn.init.zeros_(self.out.bias)

    def forward(
        self,
        x: torch.Tensor,
        sigma: torch.Tensor,
        obs: torch.Tensor,
        goal: torch.Tensor,
        keep_goal: torch.Tensor,
    ) -> torch.Tensor:
        """Denoised estimate ``(B, D)`` of the clean chunk.

        Args:
            x: noisy chunk ``(B, D)``.
            sigma: noise level, ``()`` or ``(B,)``.
            obs: normalized observation ``(B, obs_dim)``.
            goal: normalized goal ``(B, goal_dim)``.
            keep_goal: ``(B,)`` 1 to condition on the goal, 0 for the null goal (CFG).
        """
        sigma = sigma.expand(x.shape[0]) if sigma.ndim == 0 else sigma
        c_skip, c_out, c_in, c_noise = edm_scalings(sigma, self.sigma_data)
        keep = keep_goal[:, None]
        g = keep * self.goal_embed(goal) + (1 - keep) * self.null_goal
        cond = torch.cat([obs, g, self.noise_embed(c_noise)], dim=-1)
        h = self.inp(torch.cat([c_in[:, None] * x, cond], dim=-1))
        for block in self.blocks:
            h = block(h, cond)
        f = self.out(self.out_norm(h))
        return c_skip[:, None] * x + c_out[:, None] * f
