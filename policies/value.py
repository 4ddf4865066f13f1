"""Goal-conditioned value learning shared by the offline GCRL families (GCIVL, HIQL).

``V(s, g)`` estimates minus the discounted number of steps from ``s`` to the goal ``g``:
hindsight goals are relabelled from the dataset (``TrajectoryDataset.sample_goals``), the
reward is 0 on the transition that reaches the goal and -1 otherwise, and reaching the goal
ends the episode (mask 0). The value is learned by expectile regression toward one-step TD
targets ``r + gamma * m * V_target(s', g)`` over the dataset's own actions (implicit V-learning,
IVL, as in HIQL arXiv 2307.11949 and OGBench arXiv 2410.20092): an expectile above 0.5 leans
toward the better outcomes in the data, i.e. toward the optimal value, without learning Q.

Policies are extracted by advantage-weighted regression (AWR): the regression loss of each
sample is weighted by ``exp(temperature * advantage)``, clipped.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from policies import distributed
from policies.dataset import GoalMix, TrajectoryDataset
from policies.networks import mlp

MAX_AWR_WEIGHT = 100.0  # clip on exp(temperature * advantage), so a few samples cannot dominate


class GoalRep(nn.Module):
    """Learned goal representation ``phi(g)``: an MLP whose output is rescaled to length
    ``sqrt(rep_dim)`` (so its scale cannot drift), ``(B, goal) -> (B, rep_dim)``."""

    def __init__(self, goal_size: int, hidden: int, layers: int, rep_dim: int) -> None:
        super().__init__()
        self.net = mlp(goal_size, hidden, layers, rep_dim)
        self.scale = float(np.sqrt(rep_dim))

    def forward(self, goal: torch.Tensor) -> torch.Tensor:
        return unit_scale(self.net(goal), self.scale)


def unit_scale(z: torch.Tensor, scale: float) -> torch.Tensor:
    """``z (..., d)`` rescaled to length ``scale`` along its last axis."""
    return z / z.norm(dim=-1, keepdim=True).clamp_min(1e-6) * scale


class GoalValue(nn.Module):
    """Two value heads ``V_i(s, psi(g)) -> (2, B)`` on normalized inputs.

    ``psi`` is the identity, or with ``rep_dim > 0`` a learned ``GoalRep`` (HIQL): then the goal
    only reaches the value through ``phi(g)``, which makes ``phi`` a goal representation that
    keeps what the value needs.

    Args:
        obs_size: observation features.
        goal_size: goal features.
        hidden, layers: MLP width and depth (heads and ``phi``).
        rep_dim: size of ``phi(g)``; 0 for no representation.
    """

    def __init__(self, obs_size: int, goal_size: int, hidden: int, layers: int, rep_dim: int = 0) -> None:
        super().__init__()
        self.rep = GoalRep(goal_size, hidden, layers, rep_dim) if rep_dim > 0 else None
        in_dim = obs_size + (rep_dim if rep_dim > 0 else goal_size)
        self.heads = nn.ModuleList([mlp(in_dim, hidden, layers, 1) for _ in range(2)])

    def encode(self, goal: torch.Tensor) -> torch.Tensor:
        """``psi(g)``: ``(B, goal) -> (B, rep_dim)`` (or the goal itself)."""
        return goal if self.rep is None else self.rep(goal)

    def from_rep(self, obs: torch.Tensor, rep: torch.Tensor) -> torch.Tensor:
        """``(B, obs), (B, rep) -> (2, B)`` values of both heads."""
        x = torch.cat([obs, rep], dim=-1)
        return torch.stack([head(x).squeeze(-1) for head in self.heads])

    def forward(self, obs: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        return self.from_rep(obs, self.encode(goal))


def expectile_loss(adv: torch.Tensor, diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """Asymmetric squared loss ``|expectile - 1[adv < 0]| * diff**2`` (elementwise).

    With ``expectile > 0.5`` a positive ``adv`` (the target is above the current estimate)
    weighs more than a negative one, so the fit is an upper expectile of the targets.
    """
    weight = torch.where(adv >= 0, expectile, 1.0 - expectile)
    return weight * diff**2


def relabel(
    dataset: TrajectoryDataset, idx: np.ndarray, mix: GoalMix
) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    """Hindsight goals for transitions ``idx (B,)``.

    Returns ``(goal_idx (B,), reward (B,), mask (B,))``: the goal of transition ``i`` is
    ``next_achieved_goal[goal_idx[i]]``; it is reached (reward 0, mask 0) exactly when
    ``goal_idx == idx``, else reward -1 and mask 1.
    """
    goal_idx = dataset.sample_goals(idx, mix)
    success = torch.as_tensor(goal_idx == idx, dtype=torch.float32)
    return goal_idx, success - 1.0, 1.0 - success


def value_loss(
    value: GoalValue,
    target: GoalValue,
    obs: torch.Tensor,
    next_obs: torch.Tensor,
    goal: torch.Tensor,
    reward: torch.Tensor,
    mask: torch.Tensor,
    discount: float,
    expectile: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """IVL loss of both heads on normalized ``obs, next_obs (B, obs)``, ``goal (B, goal)``.

    Each head regresses ``r + discount * m * V_target_i(s', g)``; which side of the expectile a
    sample is on is decided by the target network's ``r + discount * m * min_i V_target_i(s', g)
    - mean_i V_target_i(s, g)`` (shared by both heads, as in HIQL).
    """
    with torch.no_grad():
        next_v = target(next_obs, goal)  # (2, B)
        q = reward + discount * mask * next_v.min(0).values
        adv = q - target(obs, goal).mean(0)
        q_each = reward + discount * mask * next_v  # (2, B)
    v = value(obs, goal)
    loss = expectile_loss(adv, q_each - v, expectile).mean(1).sum()
    return loss, {"value_loss": float(loss.detach()), "v_mean": float(v.detach().mean())}


def awr_weights(adv: torch.Tensor, temperature: float) -> torch.Tensor:
    """``exp(temperature * adv)`` clipped at ``MAX_AWR_WEIGHT``; ``(B,) -> (B,)``."""
    return torch.exp(temperature * adv).clamp(max=MAX_AWR_WEIGHT)


@torch.no_grad()
def soft_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """``target <- (1 - tau) * target + tau * online``, parameter by parameter."""
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        t.lerp_(o, tau)


def delta_target(action: torch.Tensor, joint_pos: torch.Tensor, max_delta: torch.Tensor) -> torch.Tensor:
    """Absolute joint targets ``(B, n)`` as steps from ``joint_pos (B, n)`` in units of
    ``max_delta (n,)``, clipped to [-1, 1]: the space the policies' ``tanh`` outputs live in."""
    return ((action - joint_pos) / max_delta).clamp(-1.0, 1.0)


class OfflineValueTraining:
    """Training steps shared by the offline value families (GCIVL, HIQL): one Adam optimizer
    over every loss (constant learning rate), then a Polyak step of the target value.

    The family sets ``_opt``, ``_data`` and ``_batch_size`` in ``setup_training`` and
    provides ``sample_batch``, ``loss``, ``value``, ``target_value`` and ``config.target_tau``.
    """

    _opt: torch.optim.Optimizer | None
    _data: TrajectoryDataset | None
    _batch_size: int

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {} if self._opt is None else {"policy": self._opt}

    def schedulers(self) -> dict[str, torch.optim.lr_scheduler.LRScheduler]:
        return {}  # constant learning rate

    def update(self, step: int) -> dict[str, float]:
        """One Adam step on all the family's losses, then a Polyak step of the target value."""
        assert self._opt is not None and self._data is not None, "call setup_training first"
        batch = self.sample_batch(self._data, self._batch_size)  # type: ignore[attr-defined]
        loss, metrics = self.loss(distributed.current().shard(batch))  # type: ignore[attr-defined]  # torchrun: this rank's slice
        self._opt.zero_grad(set_to_none=True)
        loss.backward()
        self._opt.step()
        soft_update(self.target_value, self.value, self.config.target_tau)  # type: ignore[attr-defined]
        return metrics
