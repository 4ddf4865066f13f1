"""Logs to datasets: convert a real robot log into Spine's training dataset (``sim.collect`` format).

    spine-log-dataset LOG --mapping configs/replay/widowx200.yaml --out data/ [--start S --end S]

The log is read through its topic mapping, resampled to the task's control rate by
sample-and-hold, and cut into episodes of ``episode_steps`` ticks inside gap-free segments.
Each pair of consecutive ticks is a transition: the observation is built from the named
state (``sim.observation.build_observation``, the one function sim, runtime and replay share),
the end effector comes from the robot's MuJoCo model, and the action is the logged command
(the measured position for joints the log does not command). ``desired_goal`` is a hindsight
goal: where the end effector was at the episode's last tick; GCBC's ``relabel`` draws other
future goals from the same trajectories.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import sim
from deploy.logs.mapped import read_mapped
from deploy.logs.mapping import LogMapping, load_mapping
from deploy.logs.read import LogError
from deploy.logs.resample import resample
from deploy.offline.evaluate import forward_kinematics, hindsight_goals
from sim.dataset_writer import COST_DTYPE, NO_MODE, cost_key, write_dataset
from sim.observation import build_observation


def log_to_dataset(
    log_path: Path,
    mapping: LogMapping,
    out_dir: Path,
    start_s: float = 0.0,
    end_s: float | None = None,
    name: str | None = None,
) -> Path:
    """Write ``<out_dir>/<name>.npz`` + ``.json`` from ``log_path``; returns the ``.npz`` path."""
    t0 = time.perf_counter()
    env = sim.make(mapping.robot)
    spec = env.task_spec
    log = read_mapped(log_path, mapping, spec.joint_names, spec.joint_pos_min, spec.joint_pos_max)
    ticks = resample(log, spec.control_hz, mapping.resample.max_gap_s, start_s, end_s)
    ee = forward_kinematics(env.physics, ticks.joint_pos)
    episode = ticks.episodes(spec.episode_steps)
    goal = hindsight_goals(ee, episode)
    i = np.flatnonzero((episode[:-1] >= 0) & (episode[:-1] == episode[1:]))  # transition i -> i+1
    if i.size == 0:
        raise LogError(f"log {log_path}: no two consecutive ticks without a gap; nothing to convert")
    obs = np.stack(
        [
            build_observation({"joint_pos": q, "joint_vel": v, "ee_pos": e}, spec.observation)
            for q, v, e in zip(ticks.joint_pos, ticks.joint_vel, ee, strict=True)
        ]
    )
    ep_index = np.unique(episode[i], return_inverse=True)[1]
    first = np.r_[True, ep_index[1:] != ep_index[:-1]]
    step = np.arange(len(i)) - np.maximum.accumulate(np.where(first, np.arange(len(i)), 0))
    done = np.r_[ep_index[1:] != ep_index[:-1], True]
    achieved_next = ee[i + 1]
    arrays: dict[str, np.ndarray] = {
        "observation": obs[i],
        "achieved_goal": ee[i],
        "desired_goal": goal[i],
        "action": ticks.command[i],
        "expert_action": ticks.command[i],
        "next_observation": obs[i + 1],
        "next_achieved_goal": achieved_next,
        "reward": -np.linalg.norm(achieved_next - goal[i], axis=-1),
        "episode": ep_index,
        "step": step,
        "done": done,
        "expert_mode": np.full(len(i), NO_MODE),
    }
    arrays.update(_costs(env, ticks.joint_pos[i + 1], ee, i, spec.control_hz))
    meta: dict[str, Any] = {
        "task_kwargs": {},
        "mode": "log",
        "source_log": str(log_path),
        "mapping": mapping.source,
        "window_s": [start_s, end_s],
        "episodes": int(ep_index.max() + 1),
        "commanded_joints": [n for n, c in zip(spec.joint_names, log.commanded, strict=True) if c],
        "action_from_log_fraction": float(ticks.from_log[i].mean()),
        "gaps_s": ticks.gaps(),
        "skipped": log.skipped,
        "limit_excursions": log.limit_excursions,
        "stamps": {t: s.to_dict() for t, s in log.stamps.items()},
        "goals": "hindsight: end-effector position at the episode's last tick",
        "elapsed_s": round(time.perf_counter() - t0, 3),
    }
    return write_dataset(out_dir, name or spec.name + "_log", spec, arrays, meta)


def _costs(
    env: Any, q_next: np.ndarray, ee: np.ndarray, i: np.ndarray, rate_hz: float
) -> dict[str, np.ndarray]:
    """The task's cost kinds after each transition: joint_limit from the measured positions,
    speed from the end effector's displacement over one tick (others: 0, not observable)."""
    cfg, spec = env.config, env.task_spec
    lo, hi = np.asarray(spec.joint_pos_min), np.asarray(spec.joint_pos_max)
    margin = np.minimum(q_next - lo, hi - q_next).min(axis=1)
    speed = np.linalg.norm(ee[i + 1] - ee[i], axis=1) * rate_hz
    values = {
        "joint_limit": margin < getattr(cfg, "joint_limit_threshold", 0.05),
        "speed": speed > getattr(cfg, "speed_threshold", np.inf),
    }
    return {
        cost_key(k): np.asarray(values.get(k, np.zeros(len(i))), dtype=COST_DTYPE) for k in spec.cost_kinds
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="spine-log-dataset", description=__doc__.splitlines()[0])
    ap.add_argument("log", type=Path, help="rosbag2 folder (MCAP or sqlite3) or ROS 1 .bag")
    ap.add_argument("--mapping", type=Path, required=True, help="topic mapping YAML (configs/replay/)")
    ap.add_argument("--out", type=Path, required=True, help="dataset folder")
    ap.add_argument("--start", type=float, default=0.0, help="window start (s after the first joint state)")
    ap.add_argument("--end", type=float, default=None, help="window end (s); default: the end of the log")
    ap.add_argument("--name", default=None, help="dataset file name (default <task>_log)")
    args = ap.parse_args(argv)
    try:
        path = log_to_dataset(args.log, load_mapping(args.mapping), args.out, args.start, args.end, args.name)
    except (FileNotFoundError, ValueError) as e:
        print(f"spine-log-dataset: {e}", file=sys.stderr)
        return 1
    meta = json.loads(path.with_suffix(".json").read_text())
    print(f"wrote {path}: {meta['transitions']} transitions in {meta['episodes']} episodes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
