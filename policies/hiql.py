"""HIQL: hierarchical implicit Q-learning from goal-free offline data (arXiv 2307.11949).

One goal-conditioned value ``V(s, phi(g))`` (``policies.value``: expectile regression on
hindsight goals) serves two policies extracted from it by advantage-weighted regression:

- high level ``pi_h(s, g) -> z``: the representation ``z = phi(w)`` of a subgoal ``w``, trained
  toward the state ``k = subgoal_steps`` steps ahead in the data (or the goal, if nearer),
  weighted by ``exp(alpha_h * (V(s_{t+k}, g) - V(s, g)))``;
- low level ``pi_l(s, z) -> a``: a step toward the subgoal, trained on the dataset's action with
  weight ``exp(alpha_l * (V(s', w) - V(s, w)))`` for ``w = s_{t+k}``.

``phi`` only sees the goal (the paper's ``phi(g)`` variant), so a subgoal representation means
the same thing from any state and can be held while the agent moves: at inference the high level
runs every ``high_level_every`` control steps and the low level every step (``graphs()``: the
shipped executor, ``sim.execution.HierarchicalPolicy``, holds the subgoal in between). The low
level is this module's ``forward`` (and ``io_spec``), the high level ``high_level``; each has its
export twin here. Outputs are GCBC's: ``q + max_delta * tanh(net)``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from policies.dataset import GoalMix, TrajectoryDataset
from policies.family import TrainContext
from policies.goal_io import goal_inputs, joint_target_output, observation_input
from policies.graphs import HIGH_LEVEL, POLICY, PolicyGraph, Twin, as_stats, norm_stats, unit_stats
from policies.networks import mlp
from policies.normalizer import Normalizer
from policies.registry import register_policy
from policies.torch_graph import GraphActing
from policies.twins import StepMLPTwin, standardized
from policies.value import (
    GoalValue,
    OfflineValueTraining,
    awr_weights,
    delta_target,
    relabel,
    unit_scale,
    value_loss,
)
from sim.contract import TensorSpec
from sim.spec import JOINT_POS, TaskSpec, field_offset

ACTOR_GOALS = GoalMix(current=0.0, future=1.0, discount=None)  # uniform later state of the episode


@dataclass
class HIQLConfig:
    """HIQL hyper-parameters (OGBench's defaults where they fit a small CPU budget)."""

    hidden: int = 256  # width of each hidden layer (value heads, phi, both policies)
    layers: int = 3  # hidden layers of the value heads and phi
    actor_layers: int = 2  # hidden layers of each policy (the exported graphs: 2x256 runs in ~8 µs)
    rep_dim: int = 10  # size of the goal representation phi(g) (length sqrt(rep_dim))
    lr: float = 3e-4  # Adam learning rate (constant)
    discount: float = 0.99  # gamma of the -1 per step reward
    expectile: float = 0.7  # tau of the value's expectile regression
    high_temperature: float = 3.0  # AWR inverse temperature of the high-level policy
    low_temperature: float = 3.0  # AWR inverse temperature of the low-level policy
    target_tau: float = 0.005  # Polyak rate of the target value network
    subgoal_steps: int = 25  # k: training subgoals lie k control steps ahead in the data
    high_level_every: int = 5  # control steps between high-level calls, its subgoal held between (>= 1)
    value_p_current: float = 0.2  # value goals: the transition's own next state
    value_p_future: float = 0.5  # value goals: a later state, geometric(discount); rest random
    # checkpoints written before the actor had its own depth: its depth was ``layers``
    LEGACY_FIELDS: ClassVar[dict[str, str]] = {"actor_layers": "layers"}

    def __post_init__(self) -> None:
        for key in ("discount", "expectile"):
            if not 0.0 < getattr(self, key) < 1.0:
                raise ValueError(f"HIQLConfig.{key} must be in (0, 1), got {getattr(self, key)}")
        if not 0.0 < self.target_tau <= 1.0:
            raise ValueError(f"HIQLConfig.target_tau must be in (0, 1], got {self.target_tau}")
        for key in ("layers", "actor_layers", "rep_dim", "subgoal_steps", "high_level_every"):
            if getattr(self, key) < 1:
                raise ValueError(f"HIQLConfig.{key} must be >= 1, got {getattr(self, key)}")
        self.value_goals()  # probabilities checked by GoalMix

    def value_goals(self) -> GoalMix:
        return GoalMix(self.value_p_current, self.value_p_future, self.discount)


def as_subgoal_rep(z: torch.Tensor, rep_dim: int) -> torch.Tensor:
    """The high level's raw output ``z (..., rep)`` as a subgoal representation: rescaled to
    ``phi``'s length ``sqrt(rep_dim)``."""
    return unit_scale(z, float(np.sqrt(rep_dim)))


@register_policy("hiql", config=HIQLConfig)
class HIQLPolicy(GraphActing, OfflineValueTraining, nn.Module):
    """Low level ``(observation (B, obs), subgoal_rep (B, rep)) -> joint_target (B, n_joints)``;
    high level ``high_level(observation, goal (B, g)) -> subgoal_rep (B, rep)``."""

    family = "hiql"

    def __init__(self, spec: TaskSpec, config: HIQLConfig) -> None:
        super().__init__()
        self.spec, self.config = spec, config
        h, n = config.hidden, config.layers
        self.obs_norm = Normalizer(spec.obs_size)
        self.goal_norm = Normalizer(spec.goal.size)
        self.value = GoalValue(spec.obs_size, spec.goal.size, h, n, rep_dim=config.rep_dim)
        self.target_value = copy.deepcopy(self.value).requires_grad_(False)
        self.high_actor = mlp(spec.obs_size + spec.goal.size, h, config.actor_layers, config.rep_dim)
        self.low_actor = mlp(spec.obs_size + config.rep_dim, h, config.actor_layers, spec.n_joints)
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
        params = [*self.value.parameters(), *self.high_actor.parameters(), *self.low_actor.parameters()]
        self._opt = torch.optim.Adam(params, lr=self.config.lr)

    def sample_batch(self, data: TrajectoryDataset, batch_size: int) -> dict[str, torch.Tensor]:
        """Transitions with relabelled value goals, k-step subgoals and high-level goals.

        Goal ``j`` means ``next_achieved_goal[j]`` (the state after transition ``j``), so the
        subgoal ``k`` steps ahead of ``s_t`` is index ``t + k - 1`` (clipped at the episode's end).
        """
        idx = data.sample_indices(batch_size)
        value_goal, reward, mask = relabel(data, idx, self.config.value_goals())
        low_sub = data.future_index(idx, self.config.subgoal_steps - 1)
        high_goal = data.sample_goals(idx, ACTOR_GOALS)  # in [idx, episode end]
        high_sub = np.minimum(low_sub, high_goal)  # the goal itself when it is nearer than k
        return {
            "observation": data.gather("observation", idx),
            "next_observation": data.gather("next_observation", idx),
            "action": data.gather("action", idx),
            "value_goal": data.gather("next_achieved_goal", value_goal),
            "reward": reward,
            "mask": mask,
            "low_subgoal": data.gather("next_achieved_goal", low_sub),
            "high_goal": data.gather("next_achieved_goal", high_goal),
            "high_subgoal": data.gather("next_achieved_goal", high_sub),
            "high_subgoal_obs": data.gather("next_observation", high_sub),
        }

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Value loss + low-level AWR + high-level AWR, all on normalized inputs.

        The policies regress onto ``phi`` with its gradient stopped: ``phi`` is the value's.
        """
        cfg, value = self.config, self.value
        obs, next_obs = self.obs_norm(batch["observation"]), self.obs_norm(batch["next_observation"])
        goal, r, m = self.goal_norm(batch["value_goal"]), batch["reward"], batch["mask"]
        v_loss, metrics = value_loss(
            value, self.target_value, obs, next_obs, goal, r, m, cfg.discount, cfg.expectile
        )
        low_sub, high_goal = self.goal_norm(batch["low_subgoal"]), self.goal_norm(batch["high_goal"])
        with torch.no_grad():
            low_rep = value.encode(low_sub)
            low_adv = (value.from_rep(next_obs, low_rep) - value.from_rep(obs, low_rep)).mean(0)
            high_rep = value.encode(self.goal_norm(batch["high_subgoal"]))
            goal_rep = value.encode(high_goal)
            sub_obs = self.obs_norm(batch["high_subgoal_obs"])
            high_adv = (value.from_rep(sub_obs, goal_rep) - value.from_rep(obs, goal_rep)).mean(0)
        target = delta_target(batch["action"], self._joint_pos(batch["observation"]), self.max_delta)
        low_err = ((self._low_step(obs, low_rep) - target) ** 2).sum(-1)
        low_loss = (awr_weights(low_adv, cfg.low_temperature) * low_err).mean()
        high_err = ((self.high_actor(torch.cat([obs, high_goal], -1)) - high_rep) ** 2).sum(-1)
        high_loss = (awr_weights(high_adv, cfg.high_temperature) * high_err).mean()
        metrics.update(
            low_loss=float(low_loss.detach()),
            low_mse=float(low_err.detach().mean()),
            high_loss=float(high_loss.detach()),
            high_mse=float(high_err.detach().mean()),
            low_adv=float(low_adv.mean()),
            high_adv=float(high_adv.mean()),
        )
        return v_loss + low_loss + high_loss, metrics

    # --- acting --------------------------------------------------------------------------
    def high_level(self, observation: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """``(B, obs), (B, g) -> (B, rep)``: subgoal representation, rescaled like ``phi``'s."""
        x = torch.cat([self.obs_norm(observation), self.goal_norm(goal)], dim=-1)
        return as_subgoal_rep(self.high_actor(x), self.config.rep_dim)

    def _low_step(self, obs_n: torch.Tensor, rep: torch.Tensor) -> torch.Tensor:
        """Normalized step in [-1, 1] from a normalized observation and a subgoal rep."""
        return torch.tanh(self.low_actor(torch.cat([obs_n, rep], dim=-1)))

    def _joint_pos(self, observation: torch.Tensor) -> torch.Tensor:
        return observation[..., self.q_start : self.q_start + self.spec.n_joints]

    def forward(self, observation: torch.Tensor, subgoal_rep: torch.Tensor) -> torch.Tensor:
        """The low level: ``(B, obs), (B, rep) -> (B, n_joints)`` absolute joint targets."""
        step = self._low_step(self.obs_norm(observation), subgoal_rep)
        return self._joint_pos(observation) + self.max_delta * step

    # --- graphs and contract --------------------------------------------------------------
    def io_spec(self) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        """The low-level graph (``forward``, batch of 1), which runs at ``policy_hz``."""
        s, rep = self.spec, self.config.rep_dim
        inputs = (
            observation_input(s),
            TensorSpec(
                "subgoal_rep",
                (1, rep),
                description=f"high level's subgoal phi(w), length sqrt({rep}), held between its calls",
            ),
        )
        return inputs, (joint_target_output(s),)

    def graphs(self) -> tuple[PolicyGraph, ...]:
        """The low level every tick (``forward``); the high level, ``(observation, goal) ->
        subgoal_rep`` (``high_level``), every ``high_level_every`` ticks."""
        low_in, low_out = self.io_spec()
        high_in, high_out = (low_in[0], goal_inputs(self.spec)[1]), (low_in[1],)
        every = self.config.high_level_every
        return (
            PolicyGraph(POLICY, low_in, low_out, self.forward, self._low_twin),
            PolicyGraph(HIGH_LEVEL, high_in, high_out, self.high_level, self._high_twin, every),
        )

    def _low_twin(self) -> Twin:
        """``StepMLPTwin`` over ``low_actor``: the observation standardized, the subgoal as it is."""
        obs, rep = norm_stats(self.obs_norm, "obs_norm"), self.config.rep_dim
        body = standardized(
            self.low_actor, torch.cat([obs[0], torch.zeros(rep)]), torch.cat([obs[1], torch.ones(rep)])
        )
        twin = StepMLPTwin(body, self.q_start, self.spec.n_joints, self.max_delta)
        subgoal = self.io_spec()[0][1]
        return Twin(twin, {"observation": as_stats(*obs), subgoal.name: unit_stats(subgoal)})

    def _high_twin(self) -> Twin:
        """``HighLevelTwin`` over ``high_actor``; ``high_level`` itself traced as the fallback."""
        obs, goal = norm_stats(self.obs_norm, "obs_norm"), norm_stats(self.goal_norm, "goal_norm")
        body = standardized(self.high_actor, torch.cat([obs[0], goal[0]]), torch.cat([obs[1], goal[1]]))
        stats = {"observation": as_stats(*obs), "goal": as_stats(*goal)}
        return Twin(HighLevelTwin(body, self.config.rep_dim), stats, _TracedHighLevel(self))


class HighLevelTwin(nn.Module):
    """The high level ``(observation (1, obs), goal (1, g)) -> subgoal_rep (1, rep)`` with its
    normalizers inside (``net``: ``policies.twins.standardized``)."""

    def __init__(self, net: nn.Sequential, rep_dim: int) -> None:
        super().__init__()
        self.net, self.rep_dim = net, rep_dim

    def forward(self, observation: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        return as_subgoal_rep(self.net(torch.cat([observation, goal], dim=-1)), self.rep_dim)


class _TracedHighLevel(nn.Module):
    """``HIQLPolicy.high_level`` as a module: the fallback if ``HighLevelTwin`` drifts."""

    def __init__(self, policy: HIQLPolicy) -> None:
        super().__init__()
        self.policy = copy.deepcopy(policy).eval()

    def forward(self, observation: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        return self.policy.high_level(observation, goal)
