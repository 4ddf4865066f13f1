"""SAC+HER's networks (``policies.sac_her``): the goal-conditioned tanh-Gaussian actor that holds
the normalizers, the twin Q critics, and the export twin of the actor for normalized commands."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from policies.networks import mlp
from policies.normalizer import RunningNormalizer
from sim.spec import JOINT_POS, TaskSpec, field_offset

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
JOINT_POSITION, NORMALIZED = "joint_position", "normalized"  # the action kinds the actor commands


class GoalActor(nn.Module):
    """``(observation (B, obs), goal (B, g))`` -> tanh-Gaussian over steps in [-1, 1]^J; its
    ``forward`` is the deterministic policy: absolute joint targets (B, J) in rad, or for
    normalized actions commands (B, J) in ``[-max_delta, max_delta]``. Holds the
    normalizers, so a copy of it is the export twin."""

    def __init__(self, spec: TaskSpec, hidden: int, layers: int) -> None:
        super().__init__()
        if spec.action.kind not in (JOINT_POSITION, NORMALIZED):
            raise ValueError(
                f"sac_her: task {spec.name!r} has action kind {spec.action.kind!r}; "
                f"sac_her commands {(JOINT_POSITION, NORMALIZED)}"
            )
        self.n_joints = spec.n_joints
        # joint-position targets step from the measured position; normalized commands from 0
        joint_targets = spec.action.kind == JOINT_POSITION
        self.q_start = field_offset(spec.observation, JOINT_POS) if joint_targets else None
        self.obs_norm = RunningNormalizer(spec.obs_size)
        self.goal_norm = RunningNormalizer(spec.goal.size)
        self.net = mlp(spec.obs_size + spec.goal.size, hidden, layers, 2 * spec.n_joints, nn.ReLU)
        self.register_buffer("max_delta", torch.tensor(spec.action.max_delta, dtype=torch.float32))

    def features(self, observation: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """Normalized ``[observation, goal]`` (B, obs + g), the input of actor and critics."""
        return torch.cat([self.obs_norm(observation), self.goal_norm(goal)], dim=-1)

    def mean_std(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pre-tanh Gaussian mean and std (B, J) from features ``x``."""
        mu, log_std = self.net(x).chunk(2, dim=-1)
        return mu, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX).exp()

    def sample(self, x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterized step ``a`` (B, J) in (-1, 1) and its log-density (B,) in nats."""
        mu, std = self.mean_std(x)
        u = mu + std * torch.randn(mu.shape, generator=gen)
        log_gauss = -0.5 * ((u - mu) / std) ** 2 - std.log() - 0.5 * math.log(2 * math.pi)
        log_jac = 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))  # log(1 - tanh(u)^2)
        return torch.tanh(u), (log_gauss - log_jac).sum(-1)

    def targets(self, observation: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Commands (B, J) for steps ``a`` (B, J) in [-1, 1]: absolute joint targets (rad),
        or normalized commands ``max_delta * a``."""
        if self.q_start is None:
            return self.max_delta * a
        return observation[..., self.q_start : self.q_start + self.n_joints] + self.max_delta * a

    def forward(self, observation: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        mu, _ = self.mean_std(self.features(observation, goal))
        return self.targets(observation, torch.tanh(mu))


class TwinQ(nn.Module):
    """Two independent critics ``Q(x (B, in), a (B, J))`` -> (2, B)."""

    def __init__(self, in_dim: int, n_joints: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.q1 = mlp(in_dim + n_joints, hidden, layers, 1, nn.ReLU)
        self.q2 = mlp(in_dim + n_joints, hidden, layers, 1, nn.ReLU)

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        xa = torch.cat([x, a], dim=-1)
        return torch.stack([self.q1(xa)[:, 0], self.q2(xa)[:, 0]])


class NormalizedMLPTwin(nn.Module):
    """``(observation (1, obs), goal (1, g)) -> (1, J)``: ``max_delta * tanh(net(cat))``, the
    actor's mean command for normalized actions (``net``: ``standardized``, its normalizer
    first, folded into the first Linear by the export)."""

    def __init__(self, net: nn.Sequential, max_delta: torch.Tensor) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("bound", max_delta.detach().float().clone())

    def forward(self, observation: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        return self.bound * torch.tanh(self.net(torch.cat([observation, goal], dim=-1)))
