"""Expert datasets from a ``VectorEnv``: same ``.npz`` + ``.json`` as ``sim.collect.collect``.

``collect_batched("reach", 10_000, seed=0, out_dir=Path("data"), num_envs=16, threads=2)``
runs the task's expert on 16 envs at once. Experts act on stacked state: ``reach`` has a
batched damped least-squares expert (numpy over envs); any other task's registered expert
is called once per env (``LoopExpert``). Episodes are stored contiguously, in the order they
finish (env index breaks ties), and only the first ``episodes`` finished ones are kept.
Only ``sim.collect``'s ``"goal"`` mode is batched (no ``"navigate"`` yet).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sim.dataset_writer import NO_MODE, cost_key, dataset_dtypes, write_dataset
from sim.registry import expert_class
from sim.vector import VectorEnv

States = Mapping[str, np.ndarray]


class LoopExpert:
    """A task's registered expert, one instance per env, called row by row."""

    def __init__(self, venv: VectorEnv) -> None:
        cls = expert_class(venv.task_spec.name)
        self.experts = [cls(env) for env in venv.envs]

    def act(self, states: States) -> np.ndarray:
        """Actions ``(N, act)`` from stacked named state ``name -> (N, size)``."""
        return np.stack(
            [expert.act({k: v[i] for k, v in states.items()}) for i, expert in enumerate(self.experts)]
        )


class BatchedReachExpert:
    """``ReachExpert``'s damped least-squares step for all envs at once (same gains, read
    from a ``ReachExpert`` of env 0; equal to it up to floating-point rounding)."""

    def __init__(self, venv: VectorEnv) -> None:
        from sim.experts.reach_expert import ReachExpert
        from sim.tasks.reach import EE_POS, GOAL_FIELD, JOINT_POS

        ref = ReachExpert(venv.envs[0])
        self.max_step, self.damping, self.null_gain = ref.max_step, ref.damping, ref.null_gain
        self._max_delta, self._home = ref._max_delta, ref._home
        self._low, self._high = ref._low, ref._high
        self._keys = (JOINT_POS.name, GOAL_FIELD.name, EE_POS.name)
        self._physics = [env.unwrapped.physics for env in venv.envs]

    def act(self, states: States) -> np.ndarray:
        """Absolute joint targets ``(N, 7)`` (rad) from stacked state (``joint_pos`` (N, 7)
        rad, ``goal`` (N, 3) m, ``ee_pos`` (N, 3) m) of the envs' current physics."""
        q, goal, ee = (np.asarray(states[k], dtype=np.float64) for k in self._keys)
        err = goal - ee  # (N, 3) m
        dist = np.linalg.norm(err, axis=1, keepdims=True)
        err = np.where(dist > self.max_step, err * (self.max_step / np.maximum(dist, 1e-300)), err)
        jac = np.stack([p.ee_jacobian() for p in self._physics])  # (N, 3, 7) m/rad
        jac_t = jac.transpose(0, 2, 1)
        jjt = jac @ jac_t + self.damping**2 * np.eye(3)
        jac_pinv = jac_t @ np.linalg.inv(jjt)  # (N, 7, 3)
        null = np.eye(q.shape[1]) - jac_pinv @ jac  # (N, 7, 7)
        pull = self.null_gain * (self._home - q)
        dq = (jac_pinv @ err[..., None])[..., 0] + (null @ pull[..., None])[..., 0]
        dq = np.clip(dq, -self._max_delta, self._max_delta)
        return np.clip(q + dq, self._low, self._high)


BATCHED_EXPERTS: dict[str, Callable[[VectorEnv], Any]] = {"reach": BatchedReachExpert}
"""Task name -> batched expert class; tasks not listed get ``LoopExpert``."""


def batched_expert(venv: VectorEnv) -> Any:
    """An expert for ``venv``'s task with ``act(states (N, ...)) -> actions (N, act)``."""
    return BATCHED_EXPERTS.get(venv.task_spec.name, LoopExpert)(venv)


def collect_batched(
    task: str,
    episodes: int,
    seed: int,
    out_dir: Path,
    task_kwargs: dict[str, Any] | None = None,
    action_noise: float = 0.0,
    num_envs: int = 16,
    threads: int = 2,
    randomization: Any = None,
) -> Path:
    """Roll out ``task``'s expert on a ``VectorEnv`` until ``episodes`` episodes finished.

    Args:
        task: registry name; needs a registered expert.
        episodes: number of episodes to keep.
        seed: env ``i`` first resets with ``seed + i``; also seeds the action noise
            (with ``num_envs=1`` the dataset is ``sim.collect.collect``'s, up to rounding).
        out_dir: folder for ``<task>.npz`` and ``<task>.json``; created if missing.
        task_kwargs: task config overrides.
        action_noise: std of Gaussian noise added to the expert's actions (action units).
        num_envs: envs stepped together.
        threads: threads stepping their physics.
        randomization: optional ``RandomizationConfig`` for every env.

    Returns:
        Path of the ``.npz`` file (arrays as in ``sim.dataset_writer.DATASET_KEYS`` plus the costs).
    """
    venv = VectorEnv(task, num_envs, threads, randomization=randomization, **(task_kwargs or {}))
    expert, spec = batched_expert(venv), venv.task_spec
    low, high = venv.single_action_space.low, venv.single_action_space.high
    noise_rng = np.random.default_rng(seed)
    # every array but ``episode``, numbered once the kept episodes are known
    columns: dict[str, list[np.ndarray]] = {k: [] for k in dataset_dtypes(spec.cost_kinds) if k != "episode"}
    start = np.zeros(num_envs, dtype=np.int64)  # step index where each env's episode began
    finished: list[tuple[int, int, int, bool]] = []  # (env, first step, last step, success)
    t0 = time.perf_counter()
    obs = venv.reset(seed=seed)
    t = 0
    while len(finished) < episodes:
        expert_action = expert.act(venv.state())
        noise = action_noise * noise_rng.standard_normal(expert_action.shape)
        action = np.clip(expert_action + noise, low, high)
        next_obs, reward, terminated, truncated, info = venv.step(action)
        done = terminated | truncated
        final = info["final_obs"]
        row = {
            "observation": obs["observation"],
            "achieved_goal": obs["achieved_goal"],
            "desired_goal": obs["desired_goal"],
            "action": action,
            "expert_action": expert_action,
            "next_observation": final["observation"],
            "next_achieved_goal": final["achieved_goal"],
            "reward": reward,
            "step": t - start,
            "done": done,
            "expert_mode": info.get("mode", np.full(num_envs, NO_MODE)),
            **{cost_key(kind): info["cost"][kind] for kind in spec.cost_kinds},
        }
        for key, value in row.items():
            columns[key].append(value)
        for i in np.flatnonzero(done):
            finished.append((int(i), int(start[i]), t, bool(info["is_success"][i])))
            start[i] = t + 1
        obs, t = next_obs, t + 1
    elapsed = time.perf_counter() - t0
    venv.close()

    kept = finished[:episodes]
    env_idx = np.concatenate([np.full(last - first + 1, i) for i, first, last, _ in kept])
    step_idx = np.concatenate([np.arange(first, last + 1) for _, first, last, _ in kept])
    lengths = [last - first + 1 for _, first, last, _ in kept]
    arrays = {key: np.stack(values)[step_idx, env_idx] for key, values in columns.items()}
    arrays["episode"] = np.repeat(np.arange(len(kept)), lengths)
    meta = {
        "task_kwargs": dict(task_kwargs or {}),
        "mode": "goal",
        "seed": seed,
        "episodes": len(kept),
        "action_noise": action_noise,
        "expert": type(expert).__name__,
        "expert_success_rate": sum(ok for *_, ok in kept) / max(len(kept), 1),
        "elapsed_s": round(elapsed, 3),
        "collector": {"name": "collect_batched", "num_envs": num_envs, "threads": threads},
        "randomization": None if randomization is None else randomization.to_dict(),
    }
    return write_dataset(out_dir, task, spec, arrays, meta)
