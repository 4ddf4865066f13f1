"""The one-step student's plain-MLP network: ``D(x; sigma) = c_skip x + c_out mlp([c_in x, obs, goal])``.

An alternative to the residual ``ChunkDenoiser`` for ``diffusion_student`` (``policy.net=mlp``):
the student is only ever evaluated at ``sigma = sigma_max`` (its one Euler step from
``sigma_max * noise``), so it needs no noise-level embedding, no goal embedding and no null goal;
a plain LayerNorm/GELU MLP (``policies.networks.mlp``, the shape of GCBC's network) over the
scaled noisy chunk and the normalized condition. Its export twin (``policies.student_twin``) folds
every scaling into the Gemms and quantizes well to int8. The EDM scalings keep the input and
output at unit scale; being evaluated at one sigma only, they are constants of the map.
"""

from __future__ import annotations

import torch
from torch import nn

from policies.denoiser import edm_scalings
from policies.networks import mlp


class StudentMLP(nn.Module):
    """``(x (B, D), sigma, obs (B, obs_dim), goal (B, goal_dim), keep_goal) -> (B, D)``.

    Same signature as ``ChunkDenoiser.forward``; ``keep_goal`` is ignored (the student has no
    null goal: classifier-free guidance is distilled into it, its own guidance is always 1).

    Args:
        dim: ``D``, the flat chunk size (``chunk_length * n_joints``).
        obs_dim: normalized observation size.
        goal_dim: normalized goal size.
        hidden: width of the MLP's hidden layers.
        layers: number of hidden layers.
        sigma_data: std of the clean (normalized) data, for the EDM scalings.
    """

    def __init__(
        self, dim: int, obs_dim: int, goal_dim: int, hidden: int, layers: int, sigma_data: float
    ) -> None:
        super().__init__()
        self.sigma_data = sigma_data
        self.dim = dim
        self.mlp = mlp(dim + obs_dim + goal_dim, hidden, layers, dim)

    def forward(
        self,
        x: torch.Tensor,
        sigma: torch.Tensor,
        obs: torch.Tensor,
        goal: torch.Tensor,
        keep_goal: torch.Tensor,
    ) -> torch.Tensor:
        """Denoised chunk ``(B, D)`` from the noisy chunk ``x (B, D)`` at ``sigma`` (``()`` or
        ``(B,)``; in use always ``sigma_max``)."""
        del keep_goal  # no null goal: see the class docstring
        sigma = sigma.expand(x.shape[0]) if sigma.ndim == 0 else sigma
        c_skip, c_out, c_in, _ = edm_scalings(sigma, self.sigma_data)
        f = self.mlp(torch.cat([c_in[:, None] * x, obs, goal], dim=-1))
        return c_skip[:, None] * x + c_out[:, None] * f
