"""Spine's side of rsl_rl (``rsl-rl-lib``, the ``scale`` extra): its ``VecEnv`` over a Spine
batched goal env, and its own ``OnPolicyRunner`` and ``PPO`` with two small hooks.

- ``SpineVecEnv``: observations as a ``TensorDict`` of two groups, ``observation`` (N, obs) and
  ``goal`` (N, g) (the desired goal), in the task spec's field order; rsl_rl's ``obs_groups``
  concatenate them in that order for actor and critic. An action ``a`` (N, J) is a normalized
  step in [-1, 1] (clamped there); the env commands ``q + max_delta * a`` (``step_targets``),
  the bounded step around the measured joint positions ``q`` that every goal-conditioned family
  and its exported graph command. The reward is the env's, less ``action_l2`` times the mean
  squared step (stops the arm drifting once at the goal; the logged returns are the env's
  alone). ``dones`` are ``terminated | truncated``; ``extras["time_outs"]`` are
  the truncations (rsl_rl bootstraps those). The batched env auto-resets on the same step
  (``sim.vector``): the returned observation of a finished env starts its next episode, as
  rsl_rl expects. It takes ``sim.make_vec``'s envs on either backend alike: ``VectorEnv``
  (numpy; targets go to it as float64 arrays) and ``WarpVectorEnv`` (torch tensors on its
  device; targets stay tensors there).
- ``SpineRunner``: rsl_rl's runner whose process group is Spine's (``policies.distributed``,
  ``torchrun``, gloo on CPU) instead of its own NCCL set-up; its learning loop is rsl_rl's.
- ``LoggedPPO``: rsl_rl's PPO keeping the losses of its last update (the runner logs them only
  through a log writer, and its writer also pickles checkpoints with ``torch.save``).

Without the ``scale`` extra this module still imports (the rest of Spine does not need rsl_rl);
building any of these classes then raises ``ImportError`` saying what to install.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import torch

from policies import distributed
from policies.ppo import step_targets  # the family's action map (ppo imports this file lazily)
from sim.spec import JOINT_POS, TaskSpec, field_offset

try:  # the scale extra: pip install 'spine[scale]'
    from rsl_rl.algorithms import PPO
    from rsl_rl.env import VecEnv
    from rsl_rl.runners import OnPolicyRunner
    from tensordict import TensorDict

    IMPORT_ERROR: ImportError | None = None
except ImportError as e:  # the classes below refuse to build (require_rsl_rl)
    PPO = VecEnv = OnPolicyRunner = object  # type: ignore[assignment,misc]
    TensorDict = None  # type: ignore[assignment,misc]
    IMPORT_ERROR = e

STATS_EPISODES = 100  # finished episodes the training statistics average over


def require_rsl_rl() -> None:
    """Raise ``ImportError`` naming the extra unless rsl_rl and tensordict import."""
    if IMPORT_ERROR is not None:
        raise ImportError(
            f"PPO trains with rsl_rl, which does not import ({IMPORT_ERROR}): "
            "pip install -c constraints.txt -e '.[scale]'"
        )


class SpineVecEnv(VecEnv):
    """rsl_rl's ``VecEnv`` over a Spine batched goal env (``sim.vector.VectorEnv`` or the same
    API returning torch tensors).

    Args:
        env: the batched env (``num_envs``, ``task_spec``, ``reset(seed)``, ``step(targets)``);
            this adapter closes it.
        device: where observations, rewards and dones live (rsl_rl's device).
        seed: env ``i`` resets first with ``seed + i``.
        action_l2: weight of the penalty ``mean_j(a_j^2)`` subtracted from each step's reward.
    """

    def __init__(
        self, env: Any, device: str | torch.device = "cpu", seed: int = 0, action_l2: float = 0.0
    ) -> None:
        require_rsl_rl()
        self.action_l2 = action_l2
        spec: TaskSpec = env.task_spec
        self.env, self.spec = env, spec
        self.num_envs, self.num_actions = env.num_envs, spec.n_joints
        self.max_episode_length = spec.episode_steps
        self.device = torch.device(device)
        self.cfg = {"task": spec.name, "num_envs": env.num_envs}
        self.q_start = field_offset(spec.observation, JOINT_POS)
        self.max_delta = torch.tensor(spec.action.max_delta, dtype=torch.float32, device=self.device)
        self.episode_length_buf = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self._return = torch.zeros(self.num_envs, dtype=torch.float64, device=self.device)
        self.finished: dict[str, deque[float]] = {
            k: deque(maxlen=STATS_EPISODES) for k in ("return", "success", "final_distance")
        }
        self.env_steps = 0  # vector steps x envs since construction
        first = env.reset(seed=seed)
        self._torch_env = isinstance(first["observation"], torch.Tensor)
        self._obs = self._observe(first)

    # --- rsl_rl's VecEnv -----------------------------------------------------------------
    def get_observations(self) -> TensorDict:
        """The current observations: ``observation`` (N, obs) and ``goal`` (N, g), float32."""
        return self._obs

    def step(self, actions: torch.Tensor) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict]:
        """Command ``step_targets`` of ``actions`` (N, J) for one control step.

        Returns:
            observations (a finished env's: the first of its next episode), rewards (N,)
            float32 (the env's, less the action penalty), dones (N,) long, extras with
            ``time_outs`` (N,) bool and, when episodes ended, ``log`` (their env return, success
            and final goal distance).
        """
        a = actions.to(self.device).clamp(-1.0, 1.0)
        targets = step_targets(self._obs["observation"], a, self.q_start, self.max_delta)
        command = targets if self._torch_env else targets.detach().cpu().numpy().astype(np.float64)
        obs, reward, terminated, truncated, info = self.env.step(command)
        reward = self._tensor(reward, torch.float32)
        terminated, truncated = self._tensor(terminated, torch.bool), self._tensor(truncated, torch.bool)
        done = terminated | truncated
        self._obs = self._observe(obs)
        self.episode_length_buf += 1
        self._return += reward
        self.env_steps += self.num_envs
        if self.action_l2:
            reward = reward - self.action_l2 * (a * a).mean(-1)
        extras: dict[str, Any] = {"time_outs": truncated & ~terminated}
        if bool(done.any()):
            extras["log"] = self._finish(done, info)
        return self._obs, reward, done.long(), extras

    # --- Spine's side --------------------------------------------------------------------
    def episode_stats(self) -> dict[str, float]:
        """Means over the last ``STATS_EPISODES`` finished episodes (empty before the first)."""
        return {f"train_{k}": float(np.mean(v)) for k, v in self.finished.items() if v}

    def close(self) -> None:
        self.env.close()

    def _finish(self, done: torch.Tensor, info: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Record the episodes that ended in this step and restart their counters."""
        ended = {"return": self._return[done].float()}
        for key, name in (("is_success", "success"), ("distance", "final_distance")):
            if key in info:  # the last step's info: the final state of the episode
                ended[name] = self._tensor(info[key], torch.float32)[done]
        for name, values in ended.items():
            self.finished[name].extend(values.tolist())
        self._return[done] = 0.0
        self.episode_length_buf[done] = 0
        return {f"/episode/{name}": values for name, values in ended.items()}

    def _observe(self, obs: dict[str, Any]) -> TensorDict:
        groups = {"observation": obs["observation"], "goal": obs["desired_goal"]}
        return TensorDict(
            {k: self._tensor(v, torch.float32) for k, v in groups.items()},
            batch_size=[self.num_envs],
            device=self.device,
        )

    def _tensor(self, x: Any, dtype: torch.dtype) -> torch.Tensor:
        return torch.as_tensor(x, device=self.device).to(dtype)


class LoggedPPO(PPO):
    """rsl_rl's PPO; ``last_losses`` holds what its last ``update`` returned."""

    last_losses: dict[str, float]

    def update(self) -> dict[str, float]:
        self.last_losses = super().update()
        return self.last_losses


class SpineRunner(OnPolicyRunner):
    """rsl_rl's ``OnPolicyRunner`` in Spine's process group: under ``torchrun`` its PPO averages
    gradients, KL and normalizer statistics over the ranks (rsl_rl's own multi-GPU code) on any
    device; rsl_rl's own set-up would start an NCCL group and insist on ``cuda:<local rank>``."""

    def __init__(self, env: SpineVecEnv, train_cfg: dict, device: str = "cpu") -> None:
        require_rsl_rl()
        super().__init__(env, train_cfg, log_dir=None, device=device)  # no log dir: no pickles

    def _configure_multi_gpu(self) -> None:
        dist = distributed.current()
        self.gpu_world_size, self.is_distributed = dist.world_size, dist.active
        self.gpu_local_rank, self.gpu_global_rank = dist.local_rank, dist.rank
        ranks = {"global_rank": dist.rank, "local_rank": dist.local_rank, "world_size": dist.world_size}
        self.cfg["multi_gpu"] = ranks if dist.active else None
