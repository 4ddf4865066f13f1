"""Online goal-conditioned RL: soft actor-critic (Haarnoja et al. 2018) with hindsight
experience replay (Andrychowicz et al. 2017).

The actor maps ``(observation, goal)`` to a tanh-squashed Gaussian over ``a`` in [-1, 1]^J
and commands ``q + max_delta * a`` (``q``: the measured joint positions), the same bounded
step as GCBC; ``act`` and the export use the mean, ``q + max_delta * tanh(mu)``. For a task
whose actions are normalized commands (``action.kind == "normalized"``, dm_control's motor
commands: ``sim.tasks.dmc``) the command is ``max_delta * a``, in ``[-max_delta, max_delta]``,
and the graph's output is named ``action``. Twin
critics ``Q(s, g, a)`` with Polyak-averaged targets, entropy temperature tuned toward
``target_entropy``. The family owns its environments (a ``sim.vector.VectorEnv``) and
its replay (``policies.replay_buffer.EpisodeBuffer``); each ``update`` steps the envs its
share, then takes one gradient step on critics, actor and temperature.

Rewards come from ``(next achieved goal, goal)`` at sampling time, for stored and relabelled
goals alike: ``"sparse"`` is ``-1`` until the goal distance is below ``reward_threshold``,
then ``0``; ``"dense"`` is the env's own ``compute_reward`` (reach: ``-distance``). A task
without a goal (goal size 0: dm_control's cartpole, walker, ...) has a reward that depends on
no goal: the replay stores each step's ``info["reward"]`` and ``"dense"`` uses it.

Defaults are tuned on reach at 2 cm: the dense reward (sparse at 1 cm learned several times
slower) and ``action_l2``, without which the arm keeps drifting in its null space and off
the goal. Normalizers are running statistics over every collected step (warm-up included)
and keep updating while training; they are buffers, saved and exported with the weights.
The replay is checkpointed with the weights (``replay.safetensors`` + ``replay.json``: the
committed episodes, counters and random generator states); a resumed run restarts its envs'
episodes and goes on sampling from the restored replay, without a second warm-up.

    spine-train task=reach policy=sac_her dataset='' steps=12000 +eval_task.success_threshold=0.02
    spine-train task=dmc policy=sac_her dataset='' steps=6000 policy.action_l2=0   # docs/dmc.md
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file as load_numpy
from safetensors.numpy import save_file as save_numpy
from torch import nn
from torch.nn import functional as F

import sim
from policies import distributed
from policies.family import TrainContext
from policies.goal_io import goal_inputs, joint_target_io_spec
from policies.graphs import POLICY, PolicyGraph, Twin, as_stats, norm_stats
from policies.normalizer import RunningNormalizer
from policies.registry import register_policy
from policies.replay_buffer import EpisodeBuffer, RewardEpisodeBuffer
from policies.sac_networks import JOINT_POSITION, NORMALIZED, GoalActor, NormalizedMLPTwin, TwinQ
from policies.torch_graph import GraphActing
from policies.twins import goal_mlp_graph, head_rows, standardized
from sim.contract import TensorSpec
from sim.spec import TaskSpec
from sim.vector import VectorEnv

REPLAY_FILE, REPLAY_META = "replay.safetensors", "replay.json"  # in the checkpoint folder
REWARD_MODES = ("sparse", "dense")


@dataclass
class SACHERConfig:
    """SAC + HER hyper-parameters."""

    hidden: int = 256  # width of each hidden layer (actor and critics)
    layers: int = 2  # hidden layers
    lr: float = 1e-3  # Adam learning rate (actor, critics, temperature)
    gamma: float = 0.95  # discount per control step
    tau: float = 0.01  # Polyak rate of the target critics
    init_alpha: float = 0.05  # initial entropy temperature
    target_entropy: float = -1.0  # target entropy per action dimension (nats)
    num_envs: int = 8  # envs stepped together
    env_threads: int = 2  # physics threads of the VectorEnv
    env_steps_per_update: float = 4.0  # env steps (over all envs) per gradient step
    warmup_steps: int = 2_000  # env steps of uniform random actions before the first update
    buffer_episodes: int = 5_000  # episodes kept in the replay
    action_l2: float = 0.1  # actor penalty on mean squared step a (HER paper): stops null-space drift
    lr_decay: bool = True  # cosine-anneal the learning rates to 0 over the planned gradient steps
    her_k: int = 4  # relabelled per original goal: future_p = 1 - 1 / (1 + her_k)
    reward: str = "dense"  # "dense" (the env's compute_reward) or "sparse" (-1 / 0)
    reward_threshold: float = 0.01  # sparse: goal distance counted as reached (goal units)

    def __post_init__(self) -> None:
        if self.reward not in REWARD_MODES:
            raise ValueError(f"SACHERConfig.reward must be one of {REWARD_MODES}, got {self.reward!r}")


@register_policy("sac_her", config=SACHERConfig)
class SACHERPolicy(GraphActing, nn.Module):
    """SAC + HER policy; ``forward(observation (B, obs), goal (B, g))`` -> joint targets (B, J)."""

    family = "sac_her"
    action_kinds = (JOINT_POSITION, NORMALIZED)

    def __init__(self, spec: TaskSpec, config: SACHERConfig) -> None:
        super().__init__()
        if spec.goal.size == 0 and config.reward == "sparse":
            raise ValueError(
                f"SACHERConfig.reward='sparse' needs a goal; task {spec.name!r} ({spec.robot}) has "
                "none: use reward='dense' (the env's own reward)"
            )
        self.spec, self.config = spec, config
        self.actor = GoalActor(spec, config.hidden, config.layers)
        in_dim = spec.obs_size + spec.goal.size
        self.critic = TwinQ(in_dim, spec.n_joints, config.hidden, config.layers)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(config.init_alpha)))
        self._opts: dict[str, torch.optim.Optimizer] = {}
        self._scheds: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}
        self._env: VectorEnv | None = None

    @property
    def obs_norm(self) -> RunningNormalizer:
        return self.actor.obs_norm

    @property
    def goal_norm(self) -> RunningNormalizer:
        return self.actor.goal_norm

    # --- training ------------------------------------------------------------------------
    def setup_training(self, ctx: TrainContext) -> None:
        """Build the envs (seeded ``ctx.seed + i``), the replay and the Adam optimizers.

        Under torchrun each rank runs its own envs and replay, seeded ``rank_seed(ctx.seed)``,
        samples ``batch_size / N`` of the global batch from them, and the gradients are
        averaged (``policies.distributed``); the normalizers' sums are merged every update."""
        cfg = self.config
        self._dist = distributed.current()
        seed = self._dist.rank_seed(ctx.seed)
        # built here, not by VectorEnv(task, ...): a task may have a config field named "task" (dmc)
        envs = [sim.make(ctx.task, **ctx.task_kwargs) for _ in range(cfg.num_envs)]
        self._env = VectorEnv.from_envs(envs, threads=cfg.env_threads)
        env_spec = self._env.task_spec
        self._obs = self._env.reset(seed=seed)
        buffer = EpisodeBuffer if env_spec.goal.size else RewardEpisodeBuffer  # no goal: store rewards
        self._buffer = buffer(
            cfg.buffer_episodes, env_spec.episode_steps, cfg.num_envs,
            env_spec.obs_size, env_spec.goal.size, env_spec.n_joints,
        )  # fmt: skip
        self._compute_reward = self._env.envs[0].unwrapped.compute_reward
        self._rng = np.random.default_rng(seed)
        self._gen = torch.Generator().manual_seed(seed)
        self._batch_size = self._dist.local_batch(ctx.batch_size)
        self._credit, self._env_steps = 0.0, 0
        self._successes: list[float] = []  # is_success at the end of recent train episodes
        self._returns: list[float] = []  # summed rewards of recent train episodes
        self._episode_return = np.zeros(cfg.num_envs)
        self._opts = {
            "actor": torch.optim.Adam(self.actor.parameters(), lr=cfg.lr),
            "critic": torch.optim.Adam(self.critic.parameters(), lr=cfg.lr),
            "alpha": torch.optim.Adam([self.log_alpha], lr=cfg.lr),
        }
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR
        horizon = max(ctx.total_steps, 1)
        self._scheds = {k: cosine(o, T_max=horizon) for k, o in self._opts.items()} if cfg.lr_decay else {}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return dict(self._opts)

    def schedulers(self) -> dict[str, torch.optim.lr_scheduler.LRScheduler]:
        return dict(self._scheds)

    def update(self, step: int) -> dict[str, float]:
        """Collect (warm-up first, then ``env_steps_per_update`` per call), then one SAC step."""
        assert self._env is not None, "call setup_training first"
        cfg, n = self.config, self._env.num_envs
        while self._env_steps < cfg.warmup_steps or self._buffer.episodes == 0:
            self._collect(random=True)
        self._credit += cfg.env_steps_per_update
        while self._credit >= n:
            self._collect(random=False)
            self._credit -= n
        self.obs_norm.sync_ranks(self._dist)
        self.goal_norm.sync_ranks(self._dist)
        batch = self._buffer.sample(self._batch_size, self._rng, self.reward, 1.0 - 1.0 / (1 + cfg.her_k))
        metrics = self.sac_step({k: torch.as_tensor(v, dtype=torch.float32) for k, v in batch.items()})
        success = float(np.mean(self._successes[-100:])) if self._successes else 0.0
        ret = float(np.mean(self._returns)) if self._returns else 0.0
        return {**metrics, "env_steps": float(self._env_steps), "train_success": success, "train_return": ret}

    def reward(self, achieved: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Reward (B,) of reaching ``achieved`` (B, g) when aiming for ``goal`` (B, g)."""
        if self.config.reward == "dense":
            return self._compute_reward(achieved, goal, None)
        distance = np.linalg.norm(np.asarray(achieved, np.float64) - goal, axis=-1)
        return -(distance >= self.config.reward_threshold).astype(np.float64)

    @torch.no_grad()
    def _collect(self, random: bool) -> None:
        """One vector step: uniform steps in [-1, 1] (warm-up) or sampled from the actor."""
        obs, n = self._obs, self._env.num_envs
        self.obs_norm.update(obs["observation"])
        self.goal_norm.update(np.concatenate([obs["desired_goal"], obs["achieved_goal"]]))
        o = torch.as_tensor(obs["observation"], dtype=torch.float32)
        if random:
            a = torch.rand((n, self.spec.n_joints), generator=self._gen) * 2.0 - 1.0
        else:
            a, _ = self.actor.sample(self.actor.features(o, torch.as_tensor(obs["desired_goal"])), self._gen)
        targets = self.actor.targets(o, a).numpy().astype(np.float64)
        self._obs, reward, terminated, truncated, info = self._env.step(targets)
        if isinstance(self._buffer, RewardEpisodeBuffer):
            self._buffer.stage_rewards(reward)
        self._buffer.add(obs, a.numpy(), info["final_obs"], terminated, truncated)
        ended = terminated | truncated
        success = info.get("is_success", np.zeros(n, bool))
        self._successes = [*self._successes, *(float(s) for s in success[ended])][-100:]
        self._episode_return += reward
        self._returns = [*self._returns, *self._episode_return[ended].tolist()][-100:]
        self._episode_return[ended] = 0.0
        self._env_steps += n

    def sac_step(self, b: dict[str, torch.Tensor]) -> dict[str, float]:
        """One gradient step on critics, actor and temperature from a batch of
        ``observation`` (B, obs), ``goal`` (B, g), ``action`` (B, J) in [-1, 1],
        ``next_observation`` (B, obs), ``reward`` (B,), ``terminal`` (B,)."""
        cfg, alpha = self.config, self.log_alpha.exp().detach()
        x = self.actor.features(b["observation"], b["goal"])
        with torch.no_grad():
            x2 = self.actor.features(b["next_observation"], b["goal"])
            a2, logp2 = self.actor.sample(x2, self._gen)
            soft_q = self.critic_target(x2, a2).min(0).values - alpha * logp2
            y = b["reward"] + cfg.gamma * (1.0 - b["terminal"]) * soft_q
        critic_loss = F.mse_loss(self.critic(x, b["action"]), y.expand(2, -1), reduction="sum") / len(y)
        self._step("critic", critic_loss)

        a, logp = self.actor.sample(x, self._gen)
        self.critic.requires_grad_(False)  # the actor's gradient flows through, not into, Q
        q = self.critic(x, a).min(0).values
        actor_loss = (alpha * logp - q).mean() + cfg.action_l2 * (a * a).mean()
        self._step("actor", actor_loss)
        self.critic.requires_grad_(True)
        target = cfg.target_entropy * self.spec.n_joints
        alpha_loss = -(self.log_alpha * (logp.detach() + target)).mean()
        self._step("alpha", alpha_loss)
        for sched in self._scheds.values():
            sched.step()
        with torch.no_grad():
            src, dst = list(self.critic.parameters()), list(self.critic_target.parameters())
            torch._foreach_lerp_(dst, src, cfg.tau)
        return {
            "critic_loss": float(critic_loss.detach()),
            "actor_loss": float(actor_loss.detach()),
            "alpha": float(alpha),
            "entropy": float(-logp.detach().mean()),
            "q_mean": float(q.detach().mean()),
        }

    def _step(self, name: str, loss: torch.Tensor) -> None:
        opt = self._opts[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    # --- checkpointing of the replay (the trainer calls these) ----------------------------
    def save_state(self, directory: Path) -> None:
        """Write the replay and the collection counters next to the weights."""
        arrays = self._buffer.state_arrays()
        arrays["torch_generator"] = self._gen.get_state().numpy()
        save_numpy(arrays, str(directory / REPLAY_FILE))
        meta = {
            "env_steps": self._env_steps,
            "credit": self._credit,
            "successes": self._successes,
            "returns": self._returns,
            "rng": self._rng.bit_generator.state,
            "transitions": self._buffer.transitions,
        }
        (directory / REPLAY_META).write_text(json.dumps(meta))

    def load_state(self, directory: Path) -> None:
        """Restore what :meth:`save_state` wrote (a checkpoint without it keeps an empty replay)."""
        self.obs_norm.mark_synced()  # the loaded statistics are every rank's
        self.goal_norm.mark_synced()
        path, meta_path = directory / REPLAY_FILE, directory / REPLAY_META
        if not path.is_file() or not meta_path.is_file():
            print(f"{directory}: no saved replay; the resumed run refills it (warm-up included)")
            return
        try:
            arrays = load_numpy(str(path))
        except Exception as e:  # safetensors raises its own error types
            raise ValueError(f"{path}: not a readable replay file ({e})") from None
        self._buffer.load_state_arrays(arrays, str(path))
        self._gen.set_state(torch.from_numpy(arrays["torch_generator"]))
        meta = json.loads(meta_path.read_text())
        try:
            self._env_steps, self._credit = int(meta["env_steps"]), float(meta["credit"])
            self._successes = [float(x) for x in meta["successes"]]
            self._returns = [float(x) for x in meta.get("returns", [])]  # absent before dmc support
            self._rng.bit_generator.state = meta["rng"]
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{meta_path}: bad or missing field ({e})") from None

    # --- acting and export ---------------------------------------------------------------
    def close(self) -> None:
        """Close the training envs opened by :meth:`setup_training` (the trainer calls this)."""
        env = getattr(self, "_env", None)
        if env is not None:
            env.close()
            self._env = None

    def forward(self, observation: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        return self.actor(observation, goal)

    def io_spec(self) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        """Graph inputs and outputs (batch of 1), for the contract and the export: joint
        targets, or for normalized actions ``action`` (1, J)."""
        if self.actor.q_start is not None:
            return joint_target_io_spec(self.spec)
        s = self.spec
        desc = f"normalized commands ({s.action.unit}) in [-max_delta, max_delta] (task.action)"
        return goal_inputs(s), (TensorSpec("action", (1, s.n_joints), description=desc),)

    def graphs(self) -> tuple[PolicyGraph, ...]:
        """One graph every tick, the actor's deterministic output ``tanh`` of the Gaussian's
        mean: its twin a ``StepMLPTwin`` over the actor's mean rows (a ``NormalizedMLPTwin``
        for normalized actions)."""
        a = self.actor
        if a.q_start is not None:
            return (goal_mlp_graph(self, a.net, a.q_start, a.max_delta, out_rows=self.spec.n_joints),)

        def export() -> Twin:
            obs, goal = norm_stats(self.obs_norm, "obs_norm"), norm_stats(self.goal_norm, "goal_norm")
            mean, std = torch.cat([obs[0], goal[0]]), torch.cat([obs[1], goal[1]])
            body = standardized(head_rows(a.net, self.spec.n_joints), mean, std)
            twin = NormalizedMLPTwin(body, a.max_delta)
            return Twin(twin, {"observation": as_stats(*obs), "goal": as_stats(*goal)})

        inputs, outputs = self.io_spec()
        return (PolicyGraph(POLICY, inputs, outputs, self.forward, export),)
