"""Expert dataset collection: run a task's scripted expert, save transitions as ``.npz``.

``collect("reach", 300, seed=0, out_dir=Path("data"))`` writes ``data/reach.npz`` (flat
arrays, no pickle) and ``data/reach.json`` (task spec, mode, seed, counts, success rate, time).

Two modes:
- ``"goal"``: each episode, the expert drives to the task's own goal (``expert.act(state)``).
- ``"navigate"``: goal-free data, as OGBench's ``navigate`` datasets. The expert wanders for
  whole episodes: ``expert.wander(state, rng, first) -> (action, target)`` heads for a
  temporary target it draws itself and draws the next on arrival (``first`` marks an
  episode's first step). ``desired_goal`` and ``reward`` are then relative to that temporary
  target; goal-conditioned learners relabel goals with hindsight to stitch trajectories.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

import sim
from sim.dataset_writer import DATASET_KEYS, NO_MODE, cost_key, dataset_dtypes, load_dataset, write_dataset
from sim.registry import expert_class

# The dataset format (keys, writer, reader) lives in sim.dataset_writer; re-exported here for
# the many ``from sim.collect import load_dataset`` callers.
__all__ = ["DATASET_KEYS", "MODES", "NO_MODE", "collect", "cost_key", "load_dataset"]

MODES = ("goal", "navigate")
"""Collection modes: drive to the task's goal, or wander between the expert's own targets."""


def collect(
    task: str,
    episodes: int,
    seed: int,
    out_dir: Path,
    task_kwargs: dict[str, Any] | None = None,
    action_noise: float = 0.0,
    mode: str = "goal",
    randomization: Any = None,
) -> Path:
    """Roll out ``task``'s expert for ``episodes`` episodes and save every transition.

    Args:
        task: registry name; needs a registered expert (``@register_expert``).
        episodes: number of episodes.
        seed: seeds the first reset (later resets continue its stream), the action noise
            and, in navigate mode, the expert's choice of targets.
        out_dir: folder for ``<task>.npz`` and ``<task>.json``; created if missing.
        task_kwargs: task config overrides, e.g. ``{"episode_steps": 50}``.
        action_noise: std of Gaussian noise added to the expert's targets (action units:
            rad for joint angles, m for the maze's x/y).
        mode: ``"goal"`` or ``"navigate"`` (see the module docstring); navigate episodes
            always run ``episode_steps`` steps.
        randomization: a ``sim.randomization.RandomizationConfig`` to wrap the task in
            (seeded with ``seed``), or None for the nominal task.

    Returns:
        Path of the ``.npz`` file.
    """
    if mode not in MODES:
        raise ValueError(f"collect: mode={mode!r} is not one of {MODES}")
    expert_cls = expert_class(task)
    env = sim.make(task, **(task_kwargs or {}))
    if randomization is not None:
        from sim.randomization import Randomized

        env = Randomized(env, randomization, seed)
    expert = expert_cls(env)
    if mode == "navigate" and not callable(getattr(expert, "wander", None)):
        raise ValueError(
            f"collect: mode='navigate' needs an expert with wander(state, rng, first); "
            f"{type(expert).__name__} (task {task!r}) has none"
        )
    spec = env.task_spec
    noise_rng = np.random.default_rng(seed)
    wander_rng = np.random.default_rng([seed, 1])  # kept apart from the noise stream
    rows: dict[str, list[Any]] = {key: [] for key in dataset_dtypes(spec.cost_kinds)}
    successes, targets_reached = 0, 0
    start = time.perf_counter()
    for episode in tqdm(range(episodes), desc=f"collect {task} ({mode})", disable=None):
        obs, _ = env.reset(seed=seed if episode == 0 else None)
        goal = obs["desired_goal"]
        for step in range(spec.episode_steps):
            if mode == "navigate":
                expert_action, target = expert.wander(env.state(), wander_rng, first=step == 0)
                targets_reached += step > 0 and not np.array_equal(target, goal)
                goal = np.asarray(target, dtype=np.float32)
            else:
                expert_action, goal = expert.act(env.state()), obs["desired_goal"]
            noise = action_noise * noise_rng.standard_normal(expert_action.shape)
            action = np.clip(expert_action + noise, env.action_space.low, env.action_space.high)
            next_obs, reward, terminated, truncated, info = env.step(action)
            if mode == "navigate":
                reward = env.compute_reward(next_obs["achieved_goal"], goal, info)
            row = {
                "observation": obs["observation"],
                "achieved_goal": obs["achieved_goal"],
                "desired_goal": goal,
                "action": action,
                "expert_action": expert_action,
                "next_observation": next_obs["observation"],
                "next_achieved_goal": next_obs["achieved_goal"],
                "reward": reward,
                "episode": episode,
                "step": step,
                "done": terminated or truncated,
                "expert_mode": info.get("mode", NO_MODE),
                **{cost_key(kind): info["cost"][kind] for kind in spec.cost_kinds},
            }
            for key, value in row.items():
                rows[key].append(value)
            obs = next_obs
            if terminated or truncated:
                break
        successes += bool(info["is_success"])
    elapsed = time.perf_counter() - start
    env.close()

    meta = {
        "task_kwargs": dict(task_kwargs or {}),
        "mode": mode,
        "seed": seed,
        "episodes": episodes,
        "action_noise": action_noise,
        "randomization": None if randomization is None else randomization.to_dict(),
        "expert": type(expert).__name__,
        # navigate episodes have no goal of their own: count the temporary targets reached
        "expert_success_rate": successes / max(episodes, 1) if mode == "goal" else None,
        "navigate_targets_reached": targets_reached if mode == "navigate" else None,
        "elapsed_s": round(elapsed, 3),
    }
    return write_dataset(out_dir, task, spec, rows, meta)
