"""Expert dataset collection: run a task's scripted expert, save transitions as ``.npz``.

``collect("reach", 300, seed=0, out_dir=Path("data"))`` writes ``data/reach.npz`` (flat
arrays, no pickle) and ``data/reach.json`` (task spec, seed, counts, success rate, time).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

import sim
from sim.registry import expert_class

# Arrays in every dataset: name -> (dtype, what it holds); N = transitions. Each of the
# task's cost kinds adds a float32 ``cost_<kind>`` array (0 or 1, after the action).
DATASET_KEYS: dict[str, tuple[type, str]] = {
    "observation": (np.float32, "(N, obs) observation before the action"),
    "achieved_goal": (np.float32, "(N, goal) achieved goal before the action"),
    "desired_goal": (np.float32, "(N, goal) desired goal"),
    "action": (np.float32, "(N, act) executed absolute joint targets (rad)"),
    "expert_action": (np.float32, "(N, act) expert's targets before action noise (rad)"),
    "next_observation": (np.float32, "(N, obs) observation after the action"),
    "next_achieved_goal": (np.float32, "(N, goal) achieved goal after the action"),
    "reward": (np.float32, "(N,) reward of the transition"),
    "episode": (np.int32, "(N,) episode index"),
    "step": (np.int32, "(N,) control step within the episode"),
    "done": (np.bool_, "(N,) last transition of its episode"),
}


def cost_key(kind: str) -> str:
    """Dataset array name of the cost ``kind``, e.g. ``"cost_collision"``."""
    return f"cost_{kind}"


def collect(
    task: str,
    episodes: int,
    seed: int,
    out_dir: Path,
    task_kwargs: dict[str, Any] | None = None,
    action_noise: float = 0.0,
) -> Path:
    """Roll out ``task``'s expert for ``episodes`` episodes and save every transition.

    Args:
        task: registry name; needs a registered expert (``@register_expert``).
        episodes: number of episodes.
        seed: seeds the first reset (later resets continue its stream) and the action noise.
        out_dir: folder for ``<task>.npz`` and ``<task>.json``; created if missing.
        task_kwargs: task config overrides, e.g. ``{"episode_steps": 50}``.
        action_noise: std of Gaussian noise added to the expert's targets (rad).

    Returns:
        Path of the ``.npz`` file.
    """
    expert_cls = expert_class(task)
    env = sim.make(task, **(task_kwargs or {}))
    expert = expert_cls(env)
    spec = env.task_spec
    noise_rng = np.random.default_rng(seed)
    dtypes = {key: dtype for key, (dtype, _) in DATASET_KEYS.items()}
    dtypes.update({cost_key(kind): np.float32 for kind in spec.cost_kinds})
    rows: dict[str, list[Any]] = {key: [] for key in dtypes}
    successes = 0
    start = time.perf_counter()
    for episode in tqdm(range(episodes), desc=f"collect {task}", disable=None):
        obs, _ = env.reset(seed=seed if episode == 0 else None)
        for step in range(spec.episode_steps):
            expert_action = expert.act(env.state())
            noise = action_noise * noise_rng.standard_normal(expert_action.shape)
            action = np.clip(expert_action + noise, env.action_space.low, env.action_space.high)
            next_obs, reward, terminated, truncated, info = env.step(action)
            row = {
                "observation": obs["observation"],
                "achieved_goal": obs["achieved_goal"],
                "desired_goal": obs["desired_goal"],
                "action": action,
                "expert_action": expert_action,
                "next_observation": next_obs["observation"],
                "next_achieved_goal": next_obs["achieved_goal"],
                "reward": reward,
                "episode": episode,
                "step": step,
                "done": terminated or truncated,
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

    arrays = {key: np.asarray(rows[key], dtype=dtype) for key, dtype in dtypes.items()}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{task}.npz"
    np.savez_compressed(path, **arrays)
    meta = {
        "task": spec.to_dict(),
        "task_kwargs": dict(task_kwargs or {}),
        "seed": seed,
        "episodes": episodes,
        "transitions": len(arrays["reward"]),
        "action_noise": action_noise,
        "expert": type(expert).__name__,
        "expert_success_rate": successes / max(episodes, 1),
        "elapsed_s": round(elapsed, 3),
        "arrays": {key: doc for key, (_, doc) in DATASET_KEYS.items()},
        "cost_arrays": [cost_key(kind) for kind in spec.cost_kinds],
    }
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    return path


def load_dataset(path: Path) -> dict[str, np.ndarray]:
    """Load a collected ``.npz`` without pickle; check its arrays against ``DATASET_KEYS``
    and, when the JSON sidecar is there, the task's cost arrays.

    Raises:
        KeyError: an array is missing (the message names the file and the key).
        ValueError: arrays disagree on the number of transitions.
    """
    path = Path(path)
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    required = list(DATASET_KEYS)
    sidecar = path.with_suffix(".json")
    if sidecar.exists():
        required += json.loads(sidecar.read_text()).get("cost_arrays", [])
    for key in required:
        if key not in arrays:
            raise KeyError(f"dataset {path} has no array {key!r} (has {sorted(arrays)})")
    n = len(arrays["reward"])
    for key, value in arrays.items():
        if len(value) != n:
            raise ValueError(f"dataset {path}: array {key!r} has {len(value)} rows, expected {n}")
    return arrays
