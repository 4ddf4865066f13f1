"""``spine-run``: drive the MuJoCo robot through the Controller and record every tick.

    spine-run runs/bundle --task reach --episodes 20 --seed 1000 --log runs/run [--video runs/run/ep0.mp4]

Writes ``<log>/log`` (a rosbag2, MCAP by default, standard messages) and ``<log>/summary.json``
(success rate, safety interventions by stage, policy step latency: ``deploy.runtime.latency``);
with ``--video``, also a video (.mp4 or .gif) of the first episode. No torch.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

import sim
from deploy.logs.writer import RunLogWriter, observation_fields
from deploy.runtime.bundle import load_bundle, spec_kwargs
from deploy.runtime.controller import Controller
from deploy.runtime.latency import percentiles
from deploy.safety.config import load_safety_config
from deploy.safety.filter import Stage
from deploy.safety.model_limits import sim_chain
from deploy.safety.normalized import NORMALIZED
from sim.video import GLUnavailableError, VideoWriter, render_frame


def run(
    bundle: Path,
    task: str,
    episodes: int,
    seed: int,
    log_dir: Path,
    task_kwargs: dict[str, Any] | None = None,
    storage: str = "mcap",
    video: Path | None = None,
    chunk_mode: str = "receding",
    critic: Path | bool | None = None,
    safety: str | Path | None = None,
) -> dict[str, Any]:
    """Run ``episodes`` closed-loop episodes in sim through the Controller; returns the summary.

    ``video``: also render the first episode (640x480, one frame per control step) to this
    ``.mp4`` or ``.gif``. ``chunk_mode``: how a chunked policy's chunks are executed
    (``"receding"`` or ``"ensemble"``); its noise generator is seeded with ``seed``.
    ``critic``: a ``critic.onnx`` for the safety filter; None uses the bundle's own when it has
    one, False runs without a critic. ``safety``: a ``configs/safety/`` name or YAML path (None:
    the shipped default); a box or Cartesian limit takes the arm's chain from its MuJoCo model.
    """
    render = {"render_mode": "rgb_array"} if video else {}
    env = sim.make(task, **render, **(task_kwargs or {}))
    recorder = VideoWriter(video, env.task_spec.control_hz) if video else None
    config = load_safety_config(safety)
    joints = env.task_spec.action.kind != NORMALIZED  # normalized commands: no arm (refused below)
    chain = sim_chain(env) if config.needs_chain and joints else None
    ctrl = Controller(
        bundle, env.task_spec, seed=seed, chunk_mode=chunk_mode, critic=critic, safety=config, chain=chain
    )
    log_dir.mkdir(parents=True, exist_ok=True)
    period_ns = round(1e9 / env.task_spec.control_hz)
    stamp, successes, distances, returns = 0, 0, [], []
    stages: Counter[str] = Counter()
    costs: Counter[str] = Counter()
    policy_us, filter_us, risks = [], [], []
    critic_evals = vetoes = 0
    spec = env.task_spec
    log_fields = {"goal_field": spec.goal.name, "observation": observation_fields(spec.observation)}
    with RunLogWriter(log_dir / "log", spec.joint_names, storage, **log_fields) as writer:
        for ep in tqdm(range(episodes), desc=f"run {task}", unit="episode"):
            env.reset(seed=seed + ep)
            film = recorder if ep == 0 else None
            if film:
                film.append(render_frame(env))
            state = env.state()
            ctrl.reset(state)
            done, episode_return = False, 0.0
            while not done:
                tick = ctrl.step_info(state)
                writer.write_tick(stamp, state, tick, ep)
                _, reward, terminated, truncated, info = env.step(tick.command)
                episode_return += float(reward)
                done = terminated or truncated
                state, stamp = env.state(), stamp + period_ns
                stages.update(tick.stages.names())
                costs.update(k for k, v in info["cost"].items() if v > 0)
                if tick.policy_ran:
                    policy_us.append(tick.policy_us)
                filter_us.append(tick.filter_us)
                if tick.critic_ran:
                    critic_evals += 1
                    vetoes += tick.choice > 0
                    risks.append(tick.risk)
                if film:
                    film.append(render_frame(env))
            if film:
                film.close()
            successes += bool(info["is_success"])
            distances.append(float(info["distance"]))
            returns.append(episode_return)
    ticks = len(filter_us)
    summary = {
        "task": task,
        "bundle": str(bundle),
        "episodes": episodes,
        "seed": seed,
        "safety": str(safety or "default"),
        "success_rate": successes / max(episodes, 1),
        "final_distance_mean_m": float(np.mean(distances)),
        "return_mean": float(np.mean(returns)),  # summed env reward per episode
        "ticks": ticks,
        "interventions": {s.name.lower(): stages.get(s.name.lower(), 0) for s in Stage if s},
        "cost_steps": dict(costs),
        "policy_latency_us": percentiles(policy_us),
        "filter_latency_us": percentiles(filter_us),
        "deadline": ctrl.deadline.summary(),
        "critic": None
        if ctrl.critic is None
        else {
            "evaluations": critic_evals,
            "vetoes": vetoes,
            "veto_rate": vetoes / max(critic_evals, 1),
            "risk": percentiles([r for r in risks if np.isfinite(r)]),
            "threshold": ctrl.critic.threshold,
        },
        "log": str(log_dir / "log"),
        "storage": storage,
        "video": str(video) if video else None,
    }
    (log_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def sim_task_of(bundle: Path, task: str | None, robot: str | None) -> tuple[str, dict[str, Any]]:
    """The task to run a bundle in (``task``, else the one it was trained on) and its keyword
    arguments: ``robot`` (else the robot config it was trained with, if any), and, in the task
    it was trained on, the config fields that shape its spec as trained (``spec_kwargs``:
    dm_control's domain and task)."""
    contract = load_bundle(bundle).contract
    trained = contract.train_config.get("config", {}).get("task", {})  # the task's keyword arguments
    robot = robot or (trained.get("robot") if isinstance(trained, dict) else None) or ""
    task = task or contract.task.name
    kwargs = spec_kwargs(contract) if task == contract.task.name else {}
    return task, ({"robot": robot} if robot else {}) | kwargs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="spine-run", description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path, help="bundle folder written by spine-export")
    ap.add_argument("--task", help="registered task (default: the one the bundle was trained on)")
    ap.add_argument(
        "--robot",
        help="robot config (configs/robot/ name or YAML path) for task=reach (default: the bundle's)",
    )
    ap.add_argument("--episodes", type=int, default=20, help="episodes (default %(default)s)")
    ap.add_argument("--seed", type=int, default=1000, help="first episode seed (default %(default)s)")
    ap.add_argument("--log", type=Path, required=True, help="output folder (log/ + summary.json)")
    ap.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="rosbag2 storage")
    ap.add_argument("--video", type=Path, help="also render the first episode to this .mp4 or .gif")
    ap.add_argument(
        "--chunk-mode", choices=("receding", "ensemble"), default="receding", help="chunked policies"
    )
    ap.add_argument("--safety", default="default", help="configs/safety/ name or YAML (default %(default)s)")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--critic", type=Path, help="critic.onnx for the filter (default: the bundle's own)")
    group.add_argument("--no-critic", action="store_true", help="run without the learned critic")
    args = ap.parse_args(argv)
    if (args.log / "log").exists():
        print(f"spine-run: {args.log / 'log'} exists; choose another --log", file=sys.stderr)
        return 1
    try:
        task, task_kwargs = sim_task_of(args.bundle, args.task, args.robot)
        s = run(
            args.bundle, task, args.episodes, args.seed, args.log, task_kwargs,
            storage=args.storage, video=args.video, chunk_mode=args.chunk_mode,
            critic=False if args.no_critic else args.critic, safety=args.safety,
        )  # fmt: skip
    except (FileNotFoundError, ValueError, KeyError, GLUnavailableError) as e:
        print(f"spine-run: {e}", file=sys.stderr)
        if (args.log / "log").exists():  # not there before this run: a partial log misleads
            shutil.rmtree(args.log / "log")
            print(f"spine-run: removed the partial log {args.log / 'log'}", file=sys.stderr)
        return 1
    lat = s["policy_latency_us"]
    print(
        f"success {s['success_rate']:.0%} over {s['episodes']} episodes; interventions "
        f"{s['interventions']}; policy step p50 {lat['p50']:.1f} us p99 {lat['p99']:.1f} us; "
        f"late ticks {s['deadline']['late']}/{s['deadline']['ticks']}; log {s['log']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
