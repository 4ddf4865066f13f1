"""Logs to datasets: convert a real robot log into Spine's training dataset (``sim.collect`` format).

    spine-log-dataset LOG --mapping configs/replay/widowx200.yaml --out data/ [--start S --end S]
        [--actions command|next-position]

The log is read through its topic mapping, resampled to the task's control rate by
sample-and-hold (a mapping whose ``resample.rate_hz`` asks for another rate is refused: the
policy runs at the task's rate), and cut into episodes of ``episode_steps`` ticks inside
gap-free segments. Each pair of consecutive ticks is a transition: the observation is built
from the named state (``sim.observation.build_observation``, the one function sim, runtime and
replay share), the end effector comes from the robot's MuJoCo model, and the action is:

- ``command`` (default): the logged command (the measured position for joints the log never
  commands); a log without commands is refused, since every action would be the measured
  position and a policy trained on it learns to stand still;
- ``next_position``: the next tick's measured position, for every joint (asked for explicitly;
  the console and the JSON sidecar say so).

``desired_goal`` is a hindsight goal: where the end effector was at the episode's last tick;
GCBC's ``relabel`` draws other future goals from the same trajectories.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from deploy.logs.log_report import log_facts, print_log_summary
from deploy.logs.mapped import read_mapped
from deploy.logs.mapping import LogMapping, load_mapping
from deploy.logs.read import LogError
from deploy.logs.resample import resample
from deploy.offline.evaluate import forward_kinematics, hindsight_goals
from sim.dataset_writer import COST_DTYPE, NO_MODE, cost_key, write_dataset
from sim.observation import build_observation
from sim.robot_env import make_robot_env

ACTIONS = ("command", "next_position")


def log_to_dataset(
    log_path: Path,
    mapping: LogMapping,
    out_dir: Path,
    start_s: float = 0.0,
    end_s: float | None = None,
    name: str | None = None,
    actions: str = "command",
) -> Path:
    """Write ``<out_dir>/<name>.npz`` + ``.json`` from ``log_path``; returns the ``.npz`` path.

    ``actions``: ``command`` (logged commands) or ``next_position`` (the next measured position).
    """
    t0 = time.perf_counter()
    if actions not in ACTIONS:
        raise ValueError(f"actions {actions!r}: choose one of {ACTIONS}")
    env = make_robot_env(mapping.robot)
    spec = env.task_spec
    rate = mapping.resample.rate_hz
    if rate is not None and abs(rate - spec.control_hz) > 1e-9:
        raise LogError(
            f"mapping {mapping.source}: resample.rate_hz is {rate:g} Hz, but a dataset for task "
            f"{spec.name} is at its control rate, {spec.control_hz:g} Hz, the rate its policy runs at; "
            f"set resample.rate_hz: null (or {spec.control_hz:g}) to convert this log"
        )
    if actions == "next_position":  # no command is used: a log without the command topic converts too
        mapping = replace(mapping, command=None)
    log = read_mapped(log_path, mapping, spec.joint_names, spec.joint_pos_min, spec.joint_pos_max)
    if actions == "command" and (log.command is None or not log.commanded.any()):
        what = (
            f"mapping {mapping.source} names no command topic"
            if mapping.command is None
            else f"{mapping.command.topic} holds no command for the robot's joints"
        )
        raise LogError(
            f"log {log_path}: no commands ({what}); every action would be the measured position and "
            f"a policy trained on it learns to stand still. Map the command topic, or ask for actions "
            f"from the next measured position (--actions next-position)"
        )
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
    action = ticks.joint_pos[i + 1] if actions == "next_position" else ticks.command[i]
    arrays: dict[str, np.ndarray] = {
        "observation": obs[i],
        "achieved_goal": ee[i],
        "desired_goal": goal[i],
        "action": action,
        "expert_action": action,
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
        "actions": _describe_actions(actions, spec.joint_names, log.commanded),
        "action_from_log_fraction": float(ticks.from_log[i].mean()) if actions == "command" else 0.0,
        "rate_hz": ticks.rate_hz,
        "max_gap_s": ticks.max_gap_s,
        "gaps_s": ticks.gaps(),
        **log_facts(log),
        "limit_excursions": log.limit_excursions,
        "stamps": {t: s.to_dict() for t, s in log.stamps.items()},
        "goals": "hindsight: end-effector position at the episode's last tick",
        "elapsed_s": round(time.perf_counter() - t0, 3),
    }
    return write_dataset(out_dir, name or spec.name + "_log", spec, arrays, meta)


def _describe_actions(actions: str, names: list[str], commanded: np.ndarray) -> str:
    """What the dataset's actions are, in words (JSON sidecar and console)."""
    if actions == "next_position":
        return "the next tick's measured position, every joint (--actions next-position)"
    held = [n for n, c in zip(names, commanded, strict=True) if not c]
    also = f"; joints never commanded hold their measured position: {held}" if held else ""
    return f"the logged commands{also}"


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
    ap.add_argument(
        "--actions",
        choices=["command", "next-position"],
        default="command",
        help="actions: the logged commands (default; a log without commands is refused) or the "
        "next measured position",
    )
    args = ap.parse_args(argv)
    actions = args.actions.replace("-", "_")
    try:
        mapping = load_mapping(args.mapping)
        path = log_to_dataset(args.log, mapping, args.out, args.start, args.end, args.name, actions)
    except (FileNotFoundError, ValueError) as e:
        print(f"spine-log-dataset: {e}", file=sys.stderr)
        return 1
    meta = json.loads(path.with_suffix(".json").read_text())
    print_log_summary("spine-log-dataset", meta)
    print(f"spine-log-dataset: actions are {meta['actions']}")
    print(f"wrote {path}: {meta['transitions']} transitions in {meta['episodes']} episodes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
