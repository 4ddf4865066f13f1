"""``WarpVectorEnv``: ``sim.VectorEnv``'s interface over MuJoCo Warp worlds, torch in and out.

``WarpVectorEnv("reach", 4096, device="cuda:0")`` (or ``sim.make_vec(..., backend="warp")``)
has the CPU vector env's methods and conventions (``reset(seed)``: world ``i`` seeded with
``seed + i``; ``step(actions)``; same-step auto-reset with ``infos["final_obs"]`` and
``infos["_final_obs"]``; ``state()``; ``close()``), with these differences:

- arrays are torch tensors on the env's ``device``, float32 (rewards and infos included), and
  actions may be a tensor there (or anything ``torch.as_tensor`` takes). On a GPU nothing goes
  through the host per step; the host decides which worlds reset from its own step counters
  and draws their starts (see ``sim.warp.reach``).
- physics is float32 (MuJoCo Warp's), so trajectories match the CPU backend's within a
  tolerance (tests/sim/test_warp.py states it), not bit for bit.

Which tasks run here: ``sim.warp.supported_tasks()``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

import sim
from sim.spec import TaskSpec
from sim.warp.backend import WarpPhysics, require, torch
from sim.warp.randomization import WarpRandomization, batched_fields
from sim.warp.registry import warp_task_class

Obs = dict[str, Any]


class WarpVectorEnv:
    """``num_envs`` worlds of a task stepped by MuJoCo Warp; tensors ``(N, ...)`` on ``device``.

    Args:
        task: registry name, one of ``sim.warp.supported_tasks()``.
        num_envs: worlds N.
        device: Warp/torch device ("cuda:0", "cpu"); None: Warp's default (the GPU if any).
        randomization: optional ``sim.randomization.RandomizationConfig``, applied per world
            (``sim.warp.randomization`` says how each field maps).
        nconmax: contacts allocated per world (None: MuJoCo Warp's guess for the model).
        **task_kwargs: task config overrides, as for ``sim.make``.
    """

    def __init__(
        self,
        task: str,
        num_envs: int,
        device: str | None = None,
        randomization: Any = None,
        nconmax: int | None = None,
        **task_kwargs: Any,
    ) -> None:
        task_class = warp_task_class(task)  # names the supported tasks, Warp or not
        require()
        if num_envs < 1:
            raise ValueError(f"WarpVectorEnv: num_envs must be >= 1, got {num_envs}")
        template = sim.make(task, **task_kwargs)  # the task's definition: config, spec, model
        self.num_envs = num_envs
        physics = WarpPhysics(
            template.physics.model, num_envs, device, batched_fields(randomization), nconmax=nconmax
        )
        self.physics = physics
        self.device = physics.device
        self.task = task_class(template, physics)
        self._spec: TaskSpec = template.task_spec
        self.randomization = (
            None if randomization is None else WarpRandomization(randomization, physics, self._spec)
        )
        self.single_action_space: gym.spaces.Box = template.action_space
        self.single_observation_space: gym.spaces.Space = template.observation_space
        low, high = self.single_action_space.low, self.single_action_space.high
        self.action_space = gym.spaces.Box(
            np.broadcast_to(low, (num_envs, *low.shape)),
            np.broadcast_to(high, (num_envs, *high.shape)),
            dtype=self.single_action_space.dtype,
        )
        self._steps = np.zeros(num_envs, dtype=np.int64)  # host copy: which worlds truncate
        self._steps_t = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        physics.step(self.physics_steps_per_step)  # compiles (or loads) and captures the step
        self._reset_rows(np.arange(num_envs))

    # --- properties ----------------------------------------------------------------------
    @property
    def task_spec(self) -> TaskSpec:
        """The task spec (the CPU backend's, unchanged)."""
        return self._spec

    @property
    def physics_steps_per_step(self) -> int:
        """Physics steps in one control step: ``physics_hz / control_hz``."""
        return self.task.substeps

    # --- API -----------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> Obs:
        """Reset every world; world ``i`` gets ``seed + i`` (or continues its stream when None).

        Returns:
            ``observation`` (N, obs), ``achieved_goal`` (N, goal), ``desired_goal`` (N, goal).
        """
        rows = np.arange(self.num_envs)
        if seed is not None:
            seeds = [seed + int(i) for i in rows]
            self.task.seed(rows, seeds)
            if self.randomization is not None:
                self.randomization.seed(rows, seeds)
        self._reset_rows(rows)
        return self._observe(self.task.state())

    def step(self, actions: Any) -> tuple[Obs, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Step every world with its row of ``actions`` ``(N, act)`` (joint targets, rad).

        Returns:
            ``obs`` (key -> (N, ...), the reset observation where a world finished),
            ``reward`` (N,), ``terminated`` (N,) bool, ``truncated`` (N,) bool, ``infos``:
            ``cost`` (kind -> (N,)), ``distance``, ``is_success``, ... of the transition, plus
            ``final_obs`` and ``_final_obs`` (see ``sim.vector``). All on ``device``.
        """
        target = self._check(actions)
        if self.randomization is not None:
            target = self.randomization.delay(target)
        self.task.apply(target)
        self.physics.step(self.physics_steps_per_step)
        self._steps += 1
        self._steps_t += 1
        state = self.task.state()
        info = self.task.info(state)
        reward = self.task.reward(info)
        obs = self._observe(state)
        truncated = self._steps_t >= self._spec.episode_steps
        done = np.flatnonzero(self._steps >= self._spec.episode_steps)
        final_obs = {key: value.clone() for key, value in obs.items()}
        if len(done):
            self._reset_rows(done)
            idx = torch.as_tensor(done, device=self.device)
            fresh = self._observe(self.task.state(), rows=idx)
            for key, value in obs.items():
                value[idx] = fresh[key][idx]
        info["final_obs"] = final_obs
        info["_final_obs"] = truncated.clone()
        terminated = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        return obs, reward, terminated, truncated, info

    def state(self) -> dict[str, torch.Tensor]:
        """Named raw state of every world ``(N, size)`` (with observation noise, if randomized)."""
        state = self.task.state()
        if self.randomization is None:
            return state
        return self.randomization.noisy(state, rows=torch.zeros(0, dtype=torch.long, device=self.device))

    def close(self) -> None:
        """Drop the worlds (device memory is freed with them)."""
        self.physics = self.task = self.randomization = None  # type: ignore[assignment]

    def __enter__(self) -> WarpVectorEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals -----------------------------------------------------------------------
    def _check(self, actions: Any) -> torch.Tensor:
        """``actions`` as float32 on the device; ``ValueError`` unless ``(N, act)`` and finite."""
        target = torch.as_tensor(actions, dtype=torch.float32, device=self.device)
        expected = (self.num_envs, *self.single_action_space.shape)
        if tuple(target.shape) != expected:
            got = tuple(target.shape)
            raise ValueError(f"WarpVectorEnv.step: actions must have shape {expected}, got {got}")
        if not bool(torch.isfinite(target).all()):  # one sync per step: the contract's check
            raise ValueError(f"{self._spec.name}: actions are not finite")
        return target

    def _reset_rows(self, rows: np.ndarray) -> None:
        """New episodes in worlds ``rows``: parameters, then the task's start, then latency."""
        if self.randomization is not None:
            self.randomization.resample(rows)
        self.task.reset(rows)
        if self.randomization is not None:
            joint_pos = self.task.state()["joint_pos"]
            self.randomization.start(rows, joint_pos[torch.as_tensor(rows, device=self.device)])
        self._steps[rows] = 0
        self._steps_t[torch.as_tensor(rows, device=self.device)] = 0

    def _observe(self, state: dict[str, torch.Tensor], rows: torch.Tensor | None = None) -> Obs:
        """Goal-env observation of ``state``: the spec's fields in order (with fresh noise for
        worlds ``rows``, all when None, if randomized), the achieved goal and the goal (never
        noisy), float32."""
        noisy = state if self.randomization is None else self.randomization.noisy(state, rows)
        spec, task = self._spec, self.task
        for f in spec.observation:
            size = noisy[f.name].shape[1]
            if size != f.size:
                raise ValueError(f"field {f.name!r} has {size} values, the spec says {f.size}")
        return {
            "observation": torch.cat([noisy[f.name] for f in spec.observation], dim=1),
            "achieved_goal": state[task.env.achieved_field.name].clone(),
            "desired_goal": state[spec.goal.name].clone(),
        }
