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
runs every ``high_level_every`` control steps and the low level every step. The low level is
this module's ``forward`` (and ``io_spec``); the high level's rate is the contract's
``high_level_hz`` (``contract_fields``). Outputs are GCBC's: ``q + max_delta * tanh(net)``.
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
from policies.goal_io import goal_env_tensors, joint_target_output, observation_input
from policies.networks import mlp
from policies.normalizer import Normalizer
from policies.registry import register_policy
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
    high_level_every: int = 5  # control steps between high-level calls in act() (>= 1)
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


@register_policy("hiql", config=HIQLConfig)
class HIQLPolicy(OfflineValueTraining, nn.Module):
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
        self._subgoal: torch.Tensor | None = None  # held (1, rep) subgoal representation
        self._age = 0  # control steps since the high level last ran

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
    def reset(self) -> None:
        """Forget the held subgoal: the next ``act`` runs the high level."""
        self._subgoal, self._age = None, 0

    @torch.no_grad()
    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Joint targets (float64, action units) for one goal-env observation dict.

        Runs the high level on the first call after ``reset`` and then every
        ``high_level_every`` calls, holding its subgoal in between; the low level every call.
        """
        o, g = goal_env_tensors(obs)
        if self._subgoal is None or self._age >= self.config.high_level_every:
            self._subgoal, self._age = self.high_level(o, g), 0
        self._age += 1
        return self(o, self._subgoal)[0].numpy().astype(np.float64)

    def high_level(self, observation: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """``(B, obs), (B, g) -> (B, rep)``: subgoal representation, rescaled like ``phi``'s."""
        x = torch.cat([self.obs_norm(observation), self.goal_norm(goal)], dim=-1)
        return unit_scale(self.high_actor(x), float(np.sqrt(self.config.rep_dim)))

    def _low_step(self, obs_n: torch.Tensor, rep: torch.Tensor) -> torch.Tensor:
        """Normalized step in [-1, 1] from a normalized observation and a subgoal rep."""
        return torch.tanh(self.low_actor(torch.cat([obs_n, rep], dim=-1)))

    def _joint_pos(self, observation: torch.Tensor) -> torch.Tensor:
        return observation[..., self.q_start : self.q_start + self.spec.n_joints]

    def forward(self, observation: torch.Tensor, subgoal_rep: torch.Tensor) -> torch.Tensor:
        """The low level: ``(B, obs), (B, rep) -> (B, n_joints)`` absolute joint targets."""
        step = self._low_step(self.obs_norm(observation), subgoal_rep)
        return self._joint_pos(observation) + self.max_delta * step

    # --- contract ------------------------------------------------------------------------
    def io_spec(self) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        """The low-level graph (``forward``, batch of 1), which runs at ``policy_hz``.

        The high-level graph, ``(observation, goal) -> subgoal_rep`` (``high_level``), runs
        every ``high_level_every`` control steps: ``high_level_hz`` in ``contract_fields``.
        """
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

    def contract_fields(self) -> dict[str, float]:
        """Contract fields beyond ``io_spec``: the high level's rate (Hz)."""
        return {"high_level_hz": self.spec.control_hz / self.config.high_level_every}
