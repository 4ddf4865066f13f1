"""Goal-conditioned behaviour cloning (GCBC): regress the expert's joint targets.

The module maps ``(observation, goal)`` to absolute joint-position targets. Its output is
``q + max_delta * tanh(net(norm(obs), norm(goal)))``: a bounded step from the measured joint
positions ``q``, so even an untrained network commands small moves. Normalizers are buffers
of this module and end up inside the ONNX graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from policies import distributed
from policies.dataset import GoalMix, TrajectoryDataset
from policies.family import BatchSampler, TrainContext
from policies.goal_io import joint_target_io_spec
from policies.graphs import PolicyGraph
from policies.networks import mlp
from policies.normalizer import Normalizer
from policies.optim import AdamWCosine
from policies.registry import register_policy
from policies.torch_graph import GraphActing
from policies.twins import goal_mlp_graph
from sim.contract import TensorSpec
from sim.spec import JOINT_POS, TaskSpec, field_offset

HINDSIGHT_GOALS = GoalMix(current=0.0, future=1.0, discount=None)  # relabel=True: uniform future


@dataclass
class GCBCConfig:
    """GCBC hyper-parameters."""

    hidden: int = 256  # width of each hidden layer
    layers: int = 2  # number of hidden layers (2 x 256: ~8 µs per exported call on one core)
    lr: float = 1e-3  # AdamW learning rate
    weight_decay: float = 1e-4  # AdamW weight decay
    ema_decay: float = 0.0  # moving average of the weights that is evaluated and saved (0: none)
    relabel: bool = False  # True: hindsight goals (uniform later state of the episode), not desired_goal

    def __post_init__(self) -> None:
        if not 0 <= self.ema_decay < 1:
            raise ValueError("GCBCConfig.ema_decay must be in [0, 1)")


@register_policy("gcbc", config=GCBCConfig)
class GCBCPolicy(GraphActing, AdamWCosine, nn.Module):
    """MLP policy ``(observation (B, obs), goal (B, g)) -> joint_target (B, n_joints)`` in rad."""

    family = "gcbc"

    def __init__(self, spec: TaskSpec, config: GCBCConfig) -> None:
        super().__init__()
        self.spec = spec
        self.config = config
        self.obs_norm = Normalizer(spec.obs_size)
        self.goal_norm = Normalizer(spec.goal.size)
        self.net = mlp(spec.obs_size + spec.goal.size, config.hidden, config.layers, spec.n_joints)
        self.q_start = field_offset(spec.observation, JOINT_POS)
        self.register_buffer("max_delta", torch.tensor(spec.action.max_delta, dtype=torch.float32))
        self._sampler: BatchSampler | None = None
        self._relabeler: TrajectoryDataset | None = None

    def fit_normalizers(self, data: dict[str, np.ndarray]) -> None:
        """Fit the input statistics on a dataset (keys ``observation`` and the goal source:
        ``desired_goal``, or ``next_achieved_goal`` with ``relabel``)."""
        self.obs_norm.fit(data["observation"])
        self.goal_norm.fit(data["next_achieved_goal" if self.config.relabel else "desired_goal"])

    def setup_training(self, ctx: TrainContext) -> None:
        """Fit the normalizers on the dataset; AdamW with a cosine schedule."""
        if ctx.data is None:
            raise ValueError("gcbc trains offline: give it a dataset (spine-train dataset=...)")
        self.fit_normalizers(ctx.data)
        if self.config.relabel:
            self._relabeler = TrajectoryDataset(ctx.data, seed=ctx.seed)
        self._sampler = BatchSampler(
            ctx.data, ("observation", "desired_goal", "action"), ctx.batch_size, ctx.seed
        )
        c = self.config
        self.setup_optimizer(self.parameters(), c.lr, c.weight_decay, ctx.total_steps, c.ema_decay)

    def update(self, step: int) -> dict[str, float]:
        """One AdamW step on a uniform batch."""
        assert self._sampler is not None, "call setup_training first"
        loss, metrics = self.loss(distributed.current().shard(self._sample()))  # torchrun: this rank's slice
        self.descend(loss)
        return metrics

    def _sample(self) -> dict[str, torch.Tensor]:
        """A uniform batch; with ``relabel``, ``desired_goal`` is a hindsight goal instead."""
        assert self._sampler is not None
        if self._relabeler is None:
            return self._sampler.sample()
        data = self._relabeler
        idx = data.sample_indices(self._sampler.batch_size)
        return {
            "observation": data.gather("observation", idx),
            "action": data.gather("action", idx),
            "desired_goal": data.gather("next_achieved_goal", data.sample_goals(idx, HINDSIGHT_GOALS)),
        }

    def _step(self, observation: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.obs_norm(observation), self.goal_norm(goal)], dim=-1)
        return torch.tanh(self.net(x))

    def _joint_pos(self, observation: torch.Tensor) -> torch.Tensor:
        return observation[..., self.q_start : self.q_start + self.spec.n_joints]

    def forward(self, observation: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        return self._joint_pos(observation) + self.max_delta * self._step(observation, goal)

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """MSE between predicted and expert steps, in units of ``max_delta``."""
        obs = batch["observation"]
        target = ((batch["action"] - self._joint_pos(obs)) / self.max_delta).clamp(-1.0, 1.0)
        loss = torch.mean((self._step(obs, batch["desired_goal"]) - target) ** 2)
        return loss, {"loss": float(loss.detach())}

    def io_spec(self) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        """Graph inputs and outputs (batch of 1), for the contract and the export."""
        return joint_target_io_spec(self.spec)

    def graphs(self) -> tuple[PolicyGraph, ...]:
        """One graph every tick, ``forward``; its twin a ``StepMLPTwin`` over ``net``."""
        return (goal_mlp_graph(self, self.net, self.q_start, self.max_delta),)
