"""Goal-conditioned implicit V-learning (GCIVL): offline GCRL from goal-free data.

A goal-conditioned value ``V(s, g)`` is learned by expectile regression on hindsight-relabelled
goals (``policies.value``); the policy is extracted from it by advantage-weighted regression,
with the one-step advantage ``A(s, a, g) = V(s', g) - V(s, g)`` of the dataset's action
(OGBench arXiv 2410.20092; the flat policy HIQL arXiv 2307.11949 builds on).

The policy's output is GCBC's: ``q + max_delta * tanh(actor(norm(obs), norm(goal)))``, absolute
joint targets a bounded step from the measured joint positions ``q``. Normalizers are buffers.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from policies.dataset import GoalMix, TrajectoryDataset
from policies.family import TrainContext
from policies.goal_io import joint_target_io_spec
from policies.graphs import PolicyGraph
from policies.networks import mlp
from policies.normalizer import Normalizer
from policies.registry import register_policy
from policies.torch_graph import GraphActing
from policies.twins import goal_mlp_graph
from policies.value import (
    GoalValue,
    OfflineValueTraining,
    awr_weights,
    delta_target,
    relabel,
    value_loss,
)
from sim.contract import TensorSpec
from sim.spec import JOINT_POS, TaskSpec, field_offset

ACTOR_GOALS = GoalMix(current=0.0, future=1.0, discount=None)  # uniform later state of the episode


@dataclass
class GCIVLConfig:
    """GCIVL hyper-parameters (OGBench's defaults where they fit a small CPU budget)."""

    hidden: int = 256  # width of each hidden layer (value heads and actor)
    layers: int = 3  # hidden layers of the value heads
    actor_layers: int = 2  # hidden layers of the actor (the exported graph: 2x256 runs in ~8 µs)
    lr: float = 3e-4  # Adam learning rate (constant)
    discount: float = 0.99  # gamma of the -1 per step reward
    expectile: float = 0.7  # tau of the value's expectile regression (0.5: SARSA-like mean)
    temperature: float = 10.0  # AWR inverse temperature alpha: weights exp(alpha * A)
    target_tau: float = 0.005  # Polyak rate of the target value network
    value_p_current: float = 0.2  # value goals: the transition's own next state
    value_p_future: float = 0.5  # value goals: a later state, geometric(discount); rest random
    # checkpoints written before the actor had its own depth: its depth was ``layers``
    LEGACY_FIELDS: ClassVar[dict[str, str]] = {"actor_layers": "layers"}

    def __post_init__(self) -> None:
        for key in ("discount", "expectile"):
            if not 0.0 < getattr(self, key) < 1.0:
                raise ValueError(f"GCIVLConfig.{key} must be in (0, 1), got {getattr(self, key)}")
        if not 0.0 < self.target_tau <= 1.0:
            raise ValueError(f"GCIVLConfig.target_tau must be in (0, 1], got {self.target_tau}")
        for key in ("layers", "actor_layers"):
            if getattr(self, key) < 1:
                raise ValueError(f"GCIVLConfig.{key} must be >= 1, got {getattr(self, key)}")
        self.value_goals()  # probabilities checked by GoalMix

    def value_goals(self) -> GoalMix:
        return GoalMix(self.value_p_current, self.value_p_future, self.discount)


@register_policy("gcivl", config=GCIVLConfig)
class GCIVLPolicy(GraphActing, OfflineValueTraining, nn.Module):
    """``(observation (B, obs), goal (B, g)) -> joint_target (B, n_joints)``, plus its value."""

    family = "gcivl"

    def __init__(self, spec: TaskSpec, config: GCIVLConfig) -> None:
        super().__init__()
        self.spec, self.config = spec, config
        self.obs_norm = Normalizer(spec.obs_size)
        self.goal_norm = Normalizer(spec.goal.size)
        self.value = GoalValue(spec.obs_size, spec.goal.size, config.hidden, config.layers)
        self.target_value = copy.deepcopy(self.value).requires_grad_(False)
        self.actor = mlp(spec.obs_size + spec.goal.size, config.hidden, config.actor_layers, spec.n_joints)
        self.q_start = field_offset(spec.observation, JOINT_POS)
        self.register_buffer("max_delta", torch.tensor(spec.action.max_delta, dtype=torch.float32))
        self._opt: torch.optim.Optimizer | None = None
        self._data: TrajectoryDataset | None = None
        self._batch_size = 0

    # --- training ------------------------------------------------------------------------
    def setup_training(self, ctx: TrainContext) -> None:
        """Fit the normalizers (goals: achieved states, the space hindsight goals come from)."""
        if ctx.data is None:
            raise ValueError(f"{self.family} trains offline: give it a dataset (spine-train dataset=...)")
        self.obs_norm.fit(ctx.data["observation"])
        self.goal_norm.fit(ctx.data["next_achieved_goal"])
        self._data = TrajectoryDataset(ctx.data, seed=ctx.seed)
        self._batch_size = ctx.batch_size
        params = [*self.value.parameters(), *self.actor.parameters()]
        self._opt = torch.optim.Adam(params, lr=self.config.lr)

    def sample_batch(self, data: TrajectoryDataset, batch_size: int) -> dict[str, torch.Tensor]:
        """Transitions with relabelled value goals (and rewards, masks) and actor goals."""
        idx = data.sample_indices(batch_size)
        value_goal, reward, mask = relabel(data, idx, self.config.value_goals())
        actor_goal = data.sample_goals(idx, ACTOR_GOALS)
        return {
            "observation": data.gather("observation", idx),
            "next_observation": data.gather("next_observation", idx),
            "action": data.gather("action", idx),
            "value_goal": data.gather("next_achieved_goal", value_goal),
            "reward": reward,
            "mask": mask,
            "actor_goal": data.gather("next_achieved_goal", actor_goal),
        }

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Value (expectile TD) loss plus AWR actor loss, both on normalized inputs."""
        cfg, value = self.config, self.value
        obs, next_obs = self.obs_norm(batch["observation"]), self.obs_norm(batch["next_observation"])
        goal, r, m = self.goal_norm(batch["value_goal"]), batch["reward"], batch["mask"]
        v_loss, metrics = value_loss(
            value, self.target_value, obs, next_obs, goal, r, m, cfg.discount, cfg.expectile
        )
        goal = self.goal_norm(batch["actor_goal"])
        with torch.no_grad():
            adv = (value(next_obs, goal) - value(obs, goal)).mean(0)
            weight = awr_weights(adv, cfg.temperature)
        target = delta_target(batch["action"], self._joint_pos(batch["observation"]), self.max_delta)
        err = ((self._step(obs, goal) - target) ** 2).sum(-1)
        actor_loss = (weight * err).mean()
        metrics.update(
            actor_loss=float(actor_loss.detach()),
            actor_mse=float(err.detach().mean()),
            adv_mean=float(adv.mean()),
        )
        return v_loss + actor_loss, metrics

    # --- acting --------------------------------------------------------------------------
    def _step(self, obs_n: torch.Tensor, goal_n: torch.Tensor) -> torch.Tensor:
        """Normalized step in [-1, 1] from normalized inputs."""
        return torch.tanh(self.actor(torch.cat([obs_n, goal_n], dim=-1)))

    def _joint_pos(self, observation: torch.Tensor) -> torch.Tensor:
        return observation[..., self.q_start : self.q_start + self.spec.n_joints]

    def forward(self, observation: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        step = self._step(self.obs_norm(observation), self.goal_norm(goal))
        return self._joint_pos(observation) + self.max_delta * step

    def io_spec(self) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        """Graph inputs and outputs (batch of 1), for the contract and the export."""
        return joint_target_io_spec(self.spec)

    def graphs(self) -> tuple[PolicyGraph, ...]:
        """One graph every tick, ``forward``; its twin a ``StepMLPTwin`` over the actor."""
        return (goal_mlp_graph(self, self.actor, self.q_start, self.max_delta),)
