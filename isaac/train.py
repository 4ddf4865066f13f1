"""Train Spine's reach on Isaac Lab with rsl_rl, as Isaac Lab's ``train_rsl_rl`` does.

    .venv-isaac/bin/python -m isaac.train --robot arm7 --num_envs 256 --max_iterations 300 \\
        --out runs/isaac/arm7

Resolve the registered env and agent configs, launch the (kit-less, Newton) simulation, make
the gym env, wrap it in ``RslRlVecEnvWrapper``, run rsl_rl's ``OnPolicyRunner``. The run folder
gets what Isaac Lab's own runs have: ``model_<it>.pt`` (rsl_rl's checkpoints),
``params/env.yaml`` and ``params/agent.yaml`` (which ``isaac.import_policy`` reads), and
tensorboard events. Isaac Lab's CLI trains the same ids:
``isaaclab train --rl_library rsl_rl --task Spine-Reach-Arm7-v0 --external_callback
isaac.register.register_tasks --device cpu``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from isaac.register import ARMS, task_id


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="isaac.train", description=__doc__.splitlines()[0])
    ap.add_argument("--robot", choices=sorted(ARMS.values()), default="arm7", help="Spine robot config")
    ap.add_argument("--num_envs", type=int, default=256, help="parallel envs (default %(default)s)")
    ap.add_argument("--max_iterations", type=int, default=None, help="PPO iterations (default: the agent's)")
    ap.add_argument("--num_steps_per_env", type=int, default=None, help="rollout length per iteration")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="simulation and rsl_rl device (default %(default)s)")
    ap.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, params/)")
    args = ap.parse_args(argv)

    import gymnasium as gym
    from isaaclab.app import launch_simulation
    from isaaclab.utils.io import dump_yaml
    from isaaclab_rl.rsl_rl import RslRlVecEnvWrapper, check_rsl_rl_version, handle_deprecated_rsl_rl_cfg
    from isaaclab_tasks.utils.parse_cfg import load_cfg_from_registry
    from rsl_rl.runners import OnPolicyRunner

    tid, out = task_id(args.robot), args.out.resolve()
    env_cfg = load_cfg_from_registry(tid, "env_cfg_entry_point")
    agent_cfg = load_cfg_from_registry(tid, "rsl_rl_cfg_entry_point")
    agent_cfg = handle_deprecated_rsl_rl_cfg(agent_cfg, check_rsl_rl_version())  # its 5.x layout
    env_cfg.scene.num_envs, env_cfg.seed, env_cfg.log_dir = args.num_envs, args.seed, str(out)
    env_cfg.sim.device = agent_cfg.device = args.device
    env_cfg.sim.physics.use_cuda_graph = args.device.startswith("cuda")  # graphs need a GPU
    agent_cfg.seed = args.seed
    if args.max_iterations is not None:
        agent_cfg.max_iterations = args.max_iterations
    if args.num_steps_per_env is not None:
        agent_cfg.num_steps_per_env = args.num_steps_per_env

    with launch_simulation(env_cfg, {"device": args.device}):
        t0 = time.perf_counter()
        env = RslRlVecEnvWrapper(gym.make(tid, cfg=env_cfg), clip_actions=agent_cfg.clip_actions)
        made = time.perf_counter() - t0
        runner = OnPolicyRunner(env, agent_cfg.to_dict(), log_dir=str(out), device=agent_cfg.device)
        dump_yaml(str(out / "params" / "env.yaml"), env_cfg)
        dump_yaml(str(out / "params" / "agent.yaml"), agent_cfg)
        t1 = time.perf_counter()
        runner.learn(num_learning_iterations=agent_cfg.max_iterations, init_at_random_ep_len=True)
        seconds = time.perf_counter() - t1
        steps = agent_cfg.max_iterations * agent_cfg.num_steps_per_env * args.num_envs
        summary = {
            "task": tid,
            "num_envs": args.num_envs,
            "iterations": agent_cfg.max_iterations,
            "env_steps": steps,
            "train_s": round(seconds, 2),
            "env_steps_per_s": round(steps / seconds, 1),
            "env_creation_s": round(made, 2),
            "checkpoint": f"model_{runner.current_learning_iteration}.pt",
        }
        (out / "train_summary.json").write_text(json.dumps(summary, indent=2))
        print(json.dumps(summary))
        env.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
