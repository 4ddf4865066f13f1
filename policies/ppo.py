"""On-policy RL at scale: PPO from rsl_rl (``rsl-rl-lib``, the ``scale`` extra) on Spine's
batched simulation, exported and run like every other goal-conditioned family.

Training is rsl_rl's own: its ``OnPolicyRunner`` (``policies.ppo_rsl.SpineRunner``) drives its
``PPO``, ``MLPModel`` actor and critic (empirical observation normalization inside both) over
``policies.ppo_rsl.SpineVecEnv``, the adapter of its ``VecEnv`` to Spine's batched envs
(``sim.make_vec``: MuJoCo on CPU threads, numpy; or MuJoCo Warp worlds, torch tensors on their
device). Each ``update`` is one rsl_rl learning iteration (``steps_per_env`` steps of
``num_envs`` envs, then its epochs of minibatches), so the trainer's ``steps`` count PPO
iterations.

The actor's distribution is rsl_rl's ``BetaDistribution`` over normalized steps ``a`` in
[-1, 1]: the env commands ``q + max_delta * a`` and rsl_rl's deterministic output, the Beta's
mean, is the mean step the trained (stochastic) policy takes. A Gaussian squashed by the env
(tanh or clip) would ship ``tanh(mean)``, a larger step than the policy took on average: on
reach (std ~1 after 150 iterations) that deterministic policy ended episodes at 0.33 m from
the goal where the stochastic one ended at 0.22 m.

What is saved, evaluated and exported is this module, a mirror of rsl_rl's actor taken after
every iteration: its MLP's weights as they are (the last layer's rows: the Beta's raw alpha,
then beta), and its empirical normalizer ``(x - mean) / (std + eps)`` split into Spine's
``obs_norm`` and ``goal_norm`` (``std + eps`` as their std). ``forward`` is the deterministic
policy, ``q + max_delta * (alpha - beta) / (alpha + beta)`` with ``alpha, beta = 1 +
softplus(mlp(...))``: the adapter's action map on rsl_rl's deterministic output. Its twin
(``BetaStepTwin``) has the normalizer in front of the MLP, folded into the first layer at
export, so the bundle runs through the Controller, the ROS nodes and replay unchanged, and
loading or exporting it needs no rsl_rl. The critic and the KL-adapted learning rate are
training state, saved beside the checkpoint as ``rsl_rl.safetensors`` + ``rsl_rl.json``
(rsl_rl's own ``save`` pickles: it is never called).

    spine-train task=reach policy=ppo dataset='' steps=300 policy.num_envs=64
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

import sim
from policies import distributed
from policies.family import TrainContext
from policies.goal_io import joint_target_io_spec
from policies.graphs import POLICY, PolicyGraph, Twin, as_stats, norm_stats
from policies.normalizer import Normalizer
from policies.registry import register_policy
from policies.torch_graph import GraphActing
from policies.twins import standardized
from sim.contract import TensorSpec
from sim.spec import JOINT_POS, TaskSpec, field_offset

if TYPE_CHECKING:  # rsl_rl is imported when training starts (policies.ppo_rsl), not to load or export
    from policies.ppo_rsl import SpineRunner, SpineVecEnv

OBS_GROUPS = ("observation", "goal")  # the TensorDict groups, in the graphs' input order


def step_targets(
    observation: torch.Tensor, a: torch.Tensor, q_start: int, max_delta: torch.Tensor
) -> torch.Tensor:
    """Absolute joint targets ``q + max_delta * clamp(a, -1, 1)`` (B, J) rad, from
    ``observation`` (B, obs) whose joint positions start at ``q_start`` and normalized steps
    ``a`` (B, J)."""
    q = observation[..., q_start : q_start + max_delta.numel()]
    return q + max_delta * a.clamp(-1.0, 1.0)


ACTIVATIONS: dict[str, type[nn.Module]] = {"elu": nn.ELU, "relu": nn.ReLU, "tanh": nn.Tanh}
SCHEDULES = ("adaptive", "fixed")
JOINT_POSITION = "joint_position"  # the action kind the adapter commands
STATE_FILE, STATE_META = "rsl_rl.safetensors", "rsl_rl.json"  # in the checkpoint folder


@dataclass
class PPOConfig:
    """PPO hyper-parameters (rsl_rl's names where it has one)."""

    hidden: int = 128  # width of each hidden layer (actor and critic)
    layers: int = 3  # hidden layers
    activation: str = "elu"  # "elu", "relu" or "tanh"
    num_envs: int = 64  # envs stepped together (per process under torchrun)
    env_threads: int = 2  # physics threads of the CPU VectorEnv
    steps_per_env: int = 24  # rollout length per env and iteration (rsl_rl: num_steps_per_env)
    learning_rate: float = 1e-3  # Adam learning rate (the start value when schedule is adaptive)
    schedule: str = "adaptive"  # "adaptive": rsl_rl moves the rate toward desired_kl; "fixed"
    desired_kl: float = 0.01  # target KL between old and new policy per minibatch (adaptive)
    num_learning_epochs: int = 5  # passes over each rollout
    num_mini_batches: int = 4  # minibatches per pass
    clip_param: float = 0.2  # PPO ratio clip (and value clip)
    gamma: float = 0.99  # discount per control step
    lam: float = 0.95  # GAE lambda
    value_loss_coef: float = 1.0  # weight of the value loss
    entropy_coef: float = 0.005  # weight of the entropy bonus
    max_grad_norm: float = 1.0  # gradient clipping (actor and critic separately)
    action_l2: float = 0.1  # reward penalty on the mean squared step a: stops drift at the goal
    backend: str = "cpu"  # sim.make_vec's: "cpu" (MuJoCo on threads, numpy) or "warp" (torch tensors)
    device: str = "cpu"  # rsl_rl's and the warp envs' device ("cuda": cuda:<local rank> under torchrun)

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"PPOConfig.activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}"
            )
        if self.schedule not in SCHEDULES:
            raise ValueError(f"PPOConfig.schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        for name in ("hidden", "layers", "num_envs", "env_threads", "steps_per_env", "num_mini_batches"):
            if getattr(self, name) < 1:
                raise ValueError(f"PPOConfig.{name} must be >= 1, got {getattr(self, name)}")
        if (self.num_envs * self.steps_per_env) % self.num_mini_batches:
            raise ValueError(
                f"PPOConfig: num_envs * steps_per_env ({self.num_envs * self.steps_per_env}) must be "
                f"divisible by num_mini_batches ({self.num_mini_batches})"
            )


def runner_config(c: PPOConfig) -> dict[str, Any]:
    """rsl_rl's ``OnPolicyRunner`` configuration (its ``train_cfg`` dict) for ``c``."""
    mlp = {
        "class_name": "MLPModel",
        "hidden_dims": [c.hidden] * c.layers,
        "activation": c.activation,
        "obs_normalization": True,  # normalization lives inside the model
    }
    beta = {"class_name": "BetaDistribution", "action_range": (-1.0, 1.0)}
    algorithm = {
        "class_name": "policies.ppo_rsl:LoggedPPO",
        "learning_rate": c.learning_rate,
        "schedule": c.schedule,
        "desired_kl": c.desired_kl,
        "num_learning_epochs": c.num_learning_epochs,
        "num_mini_batches": c.num_mini_batches,
        "clip_param": c.clip_param,
        "gamma": c.gamma,
        "lam": c.lam,
        "value_loss_coef": c.value_loss_coef,
        "entropy_coef": c.entropy_coef,
        "max_grad_norm": c.max_grad_norm,
    }
    return {
        "num_steps_per_env": c.steps_per_env,
        "save_interval": 1,  # unused: without a log dir rsl_rl writes nothing
        "obs_groups": {"actor": list(OBS_GROUPS), "critic": list(OBS_GROUPS)},
        "actor": {**mlp, "distribution_cfg": beta},
        "critic": mlp,
        "algorithm": algorithm,
    }


def actor_mlp(in_dim: int, c: PPOConfig, out_dim: int) -> nn.Sequential:
    """rsl_rl's ``MLP`` layout (Linear, activation, ..., Linear: the same state-dict keys; its
    trailing ``Unflatten`` has none) in plain torch, so a checkpoint loads and exports without
    rsl_rl."""
    dims, mods = [in_dim] + [c.hidden] * c.layers, []
    for d_in, d_out in itertools.pairwise(dims):
        mods += [nn.Linear(d_in, d_out), ACTIVATIONS[c.activation]()]
    return nn.Sequential(*mods, nn.Linear(dims[-1], out_dim))


@register_policy("ppo", config=PPOConfig)
class PPOPolicy(GraphActing, nn.Module):
    """rsl_rl PPO's deterministic actor ``(observation (B, obs), goal (B, g))`` -> joint targets
    (B, J) rad; trains through rsl_rl (``setup_training``, ``update``)."""

    family = "ppo"
    action_kinds = (JOINT_POSITION,)  # make_policy refuses other tasks (the adapter's action map)
    syncs_own_gradients = True  # under torchrun rsl_rl's PPO averages them (the trainer adds none)

    def __init__(self, spec: TaskSpec, config: PPOConfig) -> None:
        super().__init__()
        self.spec, self.config = spec, config
        self.obs_norm = Normalizer(spec.obs_size)
        self.goal_norm = Normalizer(spec.goal.size)
        self.net = actor_mlp(spec.obs_size + spec.goal.size, config, 2 * spec.n_joints)  # alpha, beta
        self.q_start = field_offset(spec.observation, JOINT_POS)
        self.register_buffer("max_delta", torch.tensor(spec.action.max_delta, dtype=torch.float32))
        self._env: SpineVecEnv | None = None
        self._runner: SpineRunner | None = None

    # --- training ------------------------------------------------------------------------
    def setup_training(self, ctx: TrainContext) -> None:
        """Build the batched envs (this rank's seeds), the adapter and rsl_rl's runner."""
        from policies.ppo_rsl import SpineRunner, SpineVecEnv, require_rsl_rl

        require_rsl_rl()
        dist, c = distributed.current(), self.config
        device = f"cuda:{dist.local_rank}" if c.device == "cuda" and dist.active else c.device
        env = _batched_env(ctx.task, ctx.task_kwargs, replace(c, device=device))
        self._env = SpineVecEnv(env, device, seed=dist.rank_seed(ctx.seed), action_l2=c.action_l2)
        self._runner = SpineRunner(self._env, runner_config(c), device)
        self._world = dist.world_size
        self._pull()

    def update(self, step: int) -> dict[str, float]:
        """One rsl_rl learning iteration (rollout, returns, PPO epochs), then the mirror."""
        assert self._runner is not None and self._env is not None, "call setup_training first"
        t0 = time.perf_counter()
        self._runner.learn(num_learning_iterations=1)
        seconds = time.perf_counter() - t0
        self._pull()
        alg, samples = self._runner.alg, self._env.num_envs * self.config.steps_per_env * self._world
        losses = {f"{k}_loss" if k != "entropy" else k: float(v) for k, v in alg.last_losses.items()}
        return {
            **losses,
            **self._env.episode_stats(),
            "action_std": float(alg.get_policy().output_std.detach().mean()),  # last minibatch's
            "learning_rate": float(alg.learning_rate),
            "env_steps": float(self._env.env_steps * self._world),
            "samples_per_s": samples / seconds,
        }

    @torch.no_grad()
    def _pull(self) -> None:
        """Copy rsl_rl's actor into this module: the MLP, and its normalizer split by input."""
        actor = self._runner.alg.get_policy()
        self.net.load_state_dict(actor.mlp.state_dict())
        norm, n_obs = actor.obs_normalizer, self.spec.obs_size
        mean, std = norm.mean.float(), norm.std.float() + norm.eps  # rsl_rl: (x - mean) / (std + eps)
        fitted = bool(norm.count > 0)
        for mine, rows in ((self.obs_norm, slice(0, n_obs)), (self.goal_norm, slice(n_obs, None))):
            mine.mean.copy_(mean[rows])
            mine.std.copy_(std[rows])
            mine.fitted.fill_(fitted)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"ppo": self._runner.alg.optimizer} if self._runner is not None else {}

    def schedulers(self) -> dict[str, Any]:
        return {}  # rsl_rl adapts the learning rate itself (saved in rsl_rl.json)

    # --- training state beside the checkpoint (the trainer calls these) ------------------
    def save_state(self, directory: Path) -> None:
        """rsl_rl's actor (with its std and normalizer) and critic as safetensors, the learning
        rate and counters as JSON."""
        alg = self._runner.alg
        tensors = {f"actor/{k}": v for k, v in alg.get_policy().state_dict().items()}
        tensors |= {f"critic/{k}": v for k, v in alg.critic.state_dict().items()}
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(directory / STATE_FILE))
        meta = {"learning_rate": alg.learning_rate, "env_steps": self._env.env_steps}
        (directory / STATE_META).write_text(json.dumps(meta))

    def load_state(self, directory: Path) -> None:
        """Restore what :meth:`save_state` wrote; without it only the actor's mean is known,
        so resuming is refused."""
        path, meta_path = directory / STATE_FILE, directory / STATE_META
        if not path.is_file() or not meta_path.is_file():
            raise FileNotFoundError(f"{directory}: no {STATE_FILE}/{STATE_META} to resume PPO from")
        tensors, alg = load_file(str(path)), self._runner.alg
        for name, module in (("actor", alg.get_policy()), ("critic", alg.critic)):
            prefix = f"{name}/"
            module.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
        meta = json.loads(meta_path.read_text())
        alg.learning_rate = float(meta["learning_rate"])
        for group in alg.optimizer.param_groups:
            group["lr"] = alg.learning_rate
        self._env.env_steps = int(meta["env_steps"])
        self._pull()

    def close(self) -> None:
        """Close the training envs (the trainer calls this)."""
        if self._env is not None:
            self._env.close()
            self._env, self._runner = None, None

    # --- acting and export ---------------------------------------------------------------
    def forward(self, observation: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        raw = self.net(torch.cat([self.obs_norm(observation), self.goal_norm(goal)], dim=-1))
        return step_targets(observation, beta_mean(raw), self.q_start, self.max_delta)

    def io_spec(self) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        """Graph inputs and outputs (batch of 1), for the contract and the export."""
        return joint_target_io_spec(self.spec)

    def graphs(self) -> tuple[PolicyGraph, ...]:
        """One graph every tick, ``forward``; its twin a ``BetaStepTwin`` over ``net``."""

        def export() -> Twin:
            obs, goal = norm_stats(self.obs_norm, "obs_norm"), norm_stats(self.goal_norm, "goal_norm")
            body = standardized(self.net, torch.cat([obs[0], goal[0]]), torch.cat([obs[1], goal[1]]))
            twin = BetaStepTwin(body, self.q_start, self.max_delta)
            return Twin(twin, {"observation": as_stats(*obs), "goal": as_stats(*goal)})

        inputs, outputs = self.io_spec()
        return (PolicyGraph(POLICY, inputs, outputs, self.forward, export),)


def beta_mean(raw: torch.Tensor) -> torch.Tensor:
    """rsl_rl's ``BetaDistribution`` mean on [-1, 1], ``(alpha - beta) / (alpha + beta)`` (B, J),
    from the MLP's output (B, 2J): raw alpha, then raw beta, each ``1 + softplus``."""
    alpha, beta = (1.0 + F.softplus(raw)).chunk(2, dim=-1)
    return (alpha - beta) / (alpha + beta)


class BetaStepTwin(nn.Module):
    """The export twin: ``(observation (1, obs), goal (1, g)) -> (1, J)`` joint targets,
    ``q + max_delta * beta_mean(net(cat))`` (the bound and the residual as one Gemm).

    Args:
        net: the actor's MLP on raw inputs (``policies.twins.standardized``).
        q_start: offset of the joint positions in ``observation``.
        max_delta: ``(J,)`` largest step per tick (rad).
    """

    def __init__(self, net: nn.Sequential, q_start: int, max_delta: torch.Tensor) -> None:
        super().__init__()
        self.net, self.q_start, self.n_joints = net, q_start, max_delta.numel()
        self.register_buffer("bound", torch.diag(max_delta.detach().float()))  # (J, J)

    def forward(self, observation: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        q = observation[:, self.q_start : self.q_start + self.n_joints]
        a = beta_mean(self.net(torch.cat([observation, goal], dim=-1)))
        return torch.addmm(q, a, self.bound)


def _batched_env(task: str, task_kwargs: dict[str, Any], c: PPOConfig) -> Any:
    """``num_envs`` copies of ``task`` on ``c.backend`` (``sim.make_vec``)."""
    if c.backend == "cpu":
        return sim.make_vec(task, c.num_envs, threads=c.env_threads, **task_kwargs)
    return sim.make_vec(task, c.num_envs, backend=c.backend, device=c.device, **task_kwargs)
