"""Make ``Spine-Reach-<Arm>-v0`` on Isaac Lab, step it, and compare it with Spine's own MuJoCo env.

    .venv-isaac/bin/python -m isaac.check --robot arm7 --num_envs 64 --steps 20 --parity 50

Prints one JSON object: the observation groups and their sizes against the Spine task spec,
the env's creation time and its control steps per second (env steps/s: ``num_envs`` x steps /
s) under random actions, and with ``--parity N`` the largest joint (rad) and end-effector (m)
difference over ``N`` control steps from the same start, goal and actions in Spine's
``ReachEnv`` (MuJoCo) and here (Newton, MuJoCo Warp). ``--out`` also writes it to a file.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from isaac.register import ARMS, task_id


def parity(env: Any, robot: str, steps: int, seed: int = 0) -> dict[str, float]:
    """Largest differences between Spine's ``ReachEnv`` and ``env`` (its env 0) over ``steps``
    control steps of the same random normalized steps ``a``, from Spine's reset state."""
    import torch

    from sim.tasks.reach import ReachEnv

    spine, rng = ReachEnv(robot=robot), np.random.default_rng(seed)
    spine.reset(seed=seed)
    state, n = spine.state(), env.num_envs
    as_batch = lambda x: torch.tensor(x, dtype=torch.float32, device=env.device).repeat(n, 1)  # noqa: E731
    env.start(torch.arange(n, device=env.device), as_batch(state["joint_pos"]), as_batch(state["goal"]))
    env.scene.write_data_to_sim()
    env.sim.forward()
    env.scene.update(0.0)
    max_delta, worst = np.asarray(spine.task_spec.action.max_delta), {"joint_rad": 0.0, "ee_m": 0.0}
    for _ in range(steps):
        a = np.clip(rng.normal(0.0, 0.5, max_delta.size), -1.0, 1.0)
        spine.step(spine.state()["joint_pos"] + max_delta * a)
        env.step(as_batch(a))
        mine, theirs = env.state(), spine.state()
        dq = np.abs(mine["joint_pos"][0].cpu().numpy() - theirs["joint_pos"]).max()
        dx = np.linalg.norm(mine["ee_pos"][0].cpu().numpy() - theirs["ee_pos"])
        worst = {"joint_rad": max(worst["joint_rad"], float(dq)), "ee_m": max(worst["ee_m"], float(dx))}
    spine.close()
    return {**worst, "steps": steps}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="isaac.check", description=__doc__.splitlines()[0])
    ap.add_argument("--robot", choices=sorted(ARMS.values()), default="arm7", help="Spine robot config")
    ap.add_argument("--num_envs", type=int, default=16)
    ap.add_argument("--steps", type=int, default=10, help="control steps to time")
    ap.add_argument("--parity", type=int, default=0, help="control steps to compare with Spine's MuJoCo env")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    args = ap.parse_args(argv)

    import gymnasium as gym
    import torch
    from isaaclab.app import launch_simulation
    from isaaclab_tasks.utils.parse_cfg import load_cfg_from_registry

    tid = task_id(args.robot)
    t0 = time.perf_counter()
    cfg = load_cfg_from_registry(tid, "env_cfg_entry_point")
    cfg.scene.num_envs, cfg.sim.device, cfg.seed = args.num_envs, args.device, 0
    cfg.sim.physics.use_cuda_graph = args.device.startswith("cuda")  # graphs need a GPU
    with launch_simulation(cfg, {"device": args.device}):
        env = gym.make(tid, cfg=cfg).unwrapped
        made = time.perf_counter() - t0
        obs, _ = env.reset()
        spec = env.task_spec
        rng = torch.Generator().manual_seed(0)
        t1 = time.perf_counter()
        for _ in range(args.steps):
            a = torch.rand(env.num_envs, spec.n_joints, generator=rng) * 2 - 1
            obs, reward, *_ = env.step(a.to(env.device))
        seconds = time.perf_counter() - t1
        report: dict[str, Any] = {
            "task": tid,
            "robot": spec.robot,
            "device": args.device,
            "num_envs": env.num_envs,
            "observation_fields": [[f.name, f.size, f.unit] for f in spec.observation],
            "goal_field": [spec.goal.name, spec.goal.size, spec.goal.unit],
            "groups": {k: list(v.shape) for k, v in obs.items()},
            "obs_size": spec.obs_size,
            "physics_hz": spec.physics_hz,
            "control_hz": spec.control_hz,
            "decimation": cfg.decimation,
            "max_episode_length": env.max_episode_length,
            "env_creation_s": round(made, 2),
            "env_steps_per_s": round(args.steps * env.num_envs / seconds, 1),
            "reward_mean": float(reward.mean()),
            "finite": bool(torch.isfinite(obs["policy"]).all() and torch.isfinite(reward).all()),
            "costs": {k: float(v.mean()) for k, v in env.costs.items()},
        }
        if args.parity:
            report["parity"] = parity(env, args.robot, args.parity)
        env.close()
    text = json.dumps(report)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
