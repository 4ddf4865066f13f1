"""A temporal U-Net denoiser: EDM-preconditioned 1D convolutions over a chunk's time axis.

The MLP denoiser (``policies.denoiser.ChunkDenoiser``) sees a chunk as one flat vector; this
one sees it as ``J`` channels over ``H`` steps, as Diffusion Policy's convolutional denoiser
does (Chi et al. 2023, sec. 3.3): neighbouring steps share filters, so a smooth trajectory and
a turn at some step cost the same parameters wherever they happen in the chunk. Same call and
same EDM wrapper as the MLP denoiser, so ``DiffusionPolicy`` swaps one for the other:

    D(x; sigma, obs, goal) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x, cond)

``cond`` is an MLP of ``[obs, goal embedding (or the learned null goal), Fourier(c_noise)]``
and enters every residual block by FiLM (a per-channel scale and shift). The U-Net has
``levels`` resolutions (``width * 2**i`` channels at level ``i``; the time axis halves between
levels, so ``H`` must be divisible by ``2 ** (levels - 1)``), two residual blocks per level on
the way down, two in the middle, and two per level on the way up after concatenating the skip.
The output convolution starts at zero: ``F = 0`` and ``D = c_skip x`` at initialization.
"""

from __future__ import annotations

import torch
from torch import nn

from policies.denoiser import FourierEmbedding, edm_scalings


def _groups(channels: int) -> int:
    """GroupNorm groups: 8 where the channels allow it."""
    return 8 if channels % 8 == 0 else 1


class ConvBlock(nn.Module):
    """``conv -> GroupNorm -> SiLU``, FiLM from the condition, again, plus a residual path."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int, kernel: int) -> None:
        super().__init__()
        pad = kernel // 2
        self.conv1 = nn.Conv1d(c_in, c_out, kernel, padding=pad)
        self.norm1 = nn.GroupNorm(_groups(c_out), c_out)
        self.film = nn.Linear(cond_dim, 2 * c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, kernel, padding=pad)
        self.norm2 = nn.GroupNorm(_groups(c_out), c_out)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``h (B, c_in, T)``, ``cond (B, cond_dim)`` -> ``(B, c_out, T)``."""
        y = nn.functional.silu(self.norm1(self.conv1(h)))
        scale, shift = self.film(cond)[:, :, None].chunk(2, dim=1)
        y = y * (1 + scale) + shift
        y = nn.functional.silu(self.norm2(self.conv2(y)))
        return y + self.skip(h)


class ChunkUNet(nn.Module):
    """EDM denoiser for flat normalized chunks ``x (B, H * J)``, convolving over the H steps.

    Args:
        chunk_length: ``H``, steps per chunk.
        n_joints: ``J``, values per step (the convolution's input channels).
        obs_dim: normalized observation size.
        goal_dim: normalized goal size.
        width: channels at the finest level (doubled at each coarser one).
        levels: resolutions of the U-Net.
        kernel: convolution size along the time axis (odd).
        sigma_data: std of the clean data the denoiser sees.
        goal_embed: size of the goal embedding (and of the learned null goal).
        cond_dim: size of the condition vector the blocks see.
    """

    def __init__(
        self,
        chunk_length: int,
        n_joints: int,
        obs_dim: int,
        goal_dim: int,
        width: int,
        levels: int,
        kernel: int,
        sigma_data: float,
        goal_embed: int = 64,
        cond_dim: int = 128,
    ) -> None:
        super().__init__()
        if levels < 1 or chunk_length % 2 ** (levels - 1):
            raise ValueError(  # the U-Net halves the chunk's time horizon levels - 1 times
                f"ChunkUNet: chunk_length = horizon {chunk_length} is not divisible by 2**(levels-1), "
                f"levels={levels}"
            )
        if kernel % 2 == 0:
            raise ValueError(f"ChunkUNet: kernel must be odd, got {kernel}")
        self.chunk_length, self.n_joints, self.sigma_data = chunk_length, n_joints, sigma_data
        self.noise_embed = FourierEmbedding()
        self.goal_embed = nn.Linear(goal_dim, goal_embed)
        self.null_goal = nn.Parameter(torch.zeros(goal_embed))  # the "no goal" embedding
        raw = obs_dim + goal_embed + 2 * self.noise_embed.freqs.numel()
        self.cond = nn.Sequential(nn.Linear(raw, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim))
        chans = [width * 2**i for i in range(levels)]
        self.down = nn.ModuleList()
        self.pool = nn.ModuleList()
        c_prev = n_joints
        for i, ch in enumerate(chans):
            self.down.append(
                nn.ModuleList([ConvBlock(c_prev, ch, cond_dim, kernel), ConvBlock(ch, ch, cond_dim, kernel)])
            )
            if i < levels - 1:
                self.pool.append(nn.Conv1d(ch, ch, 3, stride=2, padding=1))
            c_prev = ch
        self.mid = nn.ModuleList([ConvBlock(c_prev, c_prev, cond_dim, kernel) for _ in range(2)])
        self.unpool = nn.ModuleList()
        self.up = nn.ModuleList()
        for ch in reversed(chans[:-1]):
            self.unpool.append(nn.ConvTranspose1d(c_prev, c_prev, 4, stride=2, padding=1))
            self.up.append(
                nn.ModuleList(
                    [ConvBlock(c_prev + ch, ch, cond_dim, kernel), ConvBlock(ch, ch, cond_dim, kernel)]
                )
            )
            c_prev = ch
        self.out = nn.Conv1d(c_prev, n_joints, 1)
        nn.init.zeros_(self.out.weight)  # F = 0 at init: D starts as c_skip x
        nn.init.zeros_(self.out.bias)

    def _trunk(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The U-Net ``(B, J, H) -> (B, J, H)``."""
        skips = []
        for i, blocks in enumerate(self.down):
            for block in blocks:
                h = block(h, cond)
            if i < len(self.pool):
                skips.append(h)
                h = self.pool[i](h)
        for block in self.mid:
            h = block(h, cond)
        for unpool, blocks in zip(self.unpool, self.up, strict=True):
            h = torch.cat([unpool(h), skips.pop()], dim=1)
            for block in blocks:
                h = block(h, cond)
        return self.out(h)

    def forward(
        self,
        x: torch.Tensor,
        sigma: torch.Tensor,
        obs: torch.Tensor,
        goal: torch.Tensor,
        keep_goal: torch.Tensor,
    ) -> torch.Tensor:
        """Denoised estimate ``(B, H * J)`` of the clean chunk (arguments as ``ChunkDenoiser``)."""
        sigma = sigma.expand(x.shape[0]) if sigma.ndim == 0 else sigma
        c_skip, c_out, c_in, c_noise = edm_scalings(sigma, self.sigma_data)
        keep = keep_goal[:, None]
        g = keep * self.goal_embed(goal) + (1 - keep) * self.null_goal
        cond = self.cond(torch.cat([obs, g, self.noise_embed(c_noise)], dim=-1))
        h = (c_in[:, None] * x).view(-1, self.chunk_length, self.n_joints).transpose(1, 2)
        f = self._trunk(h, cond).transpose(1, 2).reshape(x.shape)
        return c_skip[:, None] * x + c_out[:, None] * f
