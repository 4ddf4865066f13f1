"""Scale: simulation steps/s per backend and world count, next to ``mujoco.rollout``.

    .venv/bin/python benchmarks/scale.py [--worlds 64 256 1024 4096] [--steps 5] [--repeats 2]
        [--device cuda:0] [--task reach] [--record]

Simulation (issue 23): for each world count N, the reach task stepped by ``sim.make_vec`` on
``backend="cpu"`` (``VectorEnv``, MuJoCo on 2 threads, the tasks' Python included) and on
``backend="warp"`` (MuJoCo Warp on ``--device``: the GPU when there is one, else Warp's CPU
device; observations, rewards and costs computed in torch there), next to
``mujoco.rollout`` (MuJoCo's C rollout on 2 threads, physics only) of the same model for the
same number of worlds. Physics steps/s = env steps/s x physics steps per control step (20 for
reach); ratio = a backend's physics steps/s / rollout's. Each figure is the best of
``--repeats`` timed runs of ``--steps`` control steps after an untimed warm-up step; the Warp
env's build time (kernel compile on a cold cache, load on a warm one) is reported apart.

Training samples/s (PPO on each backend) is the second half of this benchmark; it is added by
the training work and records its own section (``scale_train``).

``--record`` writes the table into its section (``scale_sim``) of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import mujoco
import numpy as np
from mujoco import rollout
from record import add_record_args, markdown_table, record

import sim

CPU_THREADS = 2


def best_rate(fn: Callable[[], int], repeats: int) -> float:
    """Best of ``repeats`` runs of ``fn`` (returns the work it did), in work per second."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        work = fn()
        rates.append(work / (time.perf_counter() - start))
    return max(rates)


def env_rate(env, steps: int, repeats: int, sync: Callable[[], None] = lambda: None) -> float:
    """Env steps/s of ``env`` (any backend) holding its joints' start targets for ``steps``."""
    env.reset(seed=0)
    joints = env.state()["joint_pos"]
    action = joints.clone() if hasattr(joints, "clone") else np.array(joints)
    env.step(action)  # warm-up: nothing compiles or allocates inside the timed runs
    sync()

    def run() -> int:
        for _ in range(steps):
            env.step(action)
        sync()
        return steps * env.num_envs

    return best_rate(run, repeats)


def rollout_rate(env, worlds: int, nstep: int, repeats: int) -> float:
    """``mujoco.rollout`` physics steps/s: ``worlds`` rollouts of ``nstep`` steps of ``env``'s
    model from its reset state holding its reset controls (the env rows' work, physics only),
    on ``CPU_THREADS`` threads."""
    env.reset(seed=0)
    physics = env.unwrapped.physics
    model, data = physics.model, physics.data
    spec = int(mujoco.mjtState.mjSTATE_FULLPHYSICS)
    state = np.empty(mujoco.mj_stateSize(model, spec))
    mujoco.mj_getState(model, data, state, spec)
    initial = np.tile(state, (worlds, 1))
    control = np.tile(data.ctrl, (worlds, nstep, 1))
    datas = [mujoco.MjData(model) for _ in range(CPU_THREADS)]
    out = np.empty((worlds, nstep, state.size))

    def run() -> int:
        rollout.rollout(model, datas, initial, control, state=out)
        return worlds * nstep

    run()
    return best_rate(run, repeats)


def sim_rows(args: argparse.Namespace) -> tuple[list[dict], list[str]]:
    """The simulation table's rows, and notes (build times, devices)."""
    from sim.warp.backend import kernel_cache_dir, resolve_device

    wp_device, torch_device = resolve_device(args.device)
    notes = [f"Warp device: {wp_device.alias} ({wp_device.name}); kernel cache {kernel_cache_dir()}."]
    rows: list[dict] = []
    for n in args.worlds:
        cpu = sim.make_vec(args.task, n, backend="cpu", threads=CPU_THREADS)
        substeps = cpu.physics_steps_per_step
        raw = rollout_rate(cpu.envs[0], n, substeps * args.steps, args.repeats)
        rate = env_rate(cpu, args.steps, args.repeats)
        cpu.close()
        start = time.perf_counter()
        warp = sim.make_vec(args.task, n, backend="warp", device=args.device)
        build = time.perf_counter() - start
        notes.append(f"{n} worlds: Warp env built in {build:.1f} s (kernels compiled or loaded).")
        warp_rate = env_rate(warp, args.steps, args.repeats, sync=warp.physics.synchronize)
        warp.close()
        for backend, device, env_steps in (
            (f"cpu (VectorEnv, {CPU_THREADS} threads)", "host", rate),
            ("warp (MuJoCo Warp)", str(torch_device), warp_rate),
        ):
            rows.append(
                {
                    "worlds": f"{n:,}",
                    "backend": backend,
                    "device": device,
                    "env steps/s": f"{env_steps:,.0f}",
                    "physics steps/s": f"{env_steps * substeps:,.0f}",
                    f"mujoco.rollout steps/s ({CPU_THREADS} threads)": f"{raw:,.0f}",
                    "ratio": f"{env_steps * substeps / raw:.2f}",
                }
            )
        print(markdown_table(rows[-2:]), flush=True)
    return rows, notes


# --- training samples/s (PPO per backend): the training half adds its rows and section here ---


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worlds", type=int, nargs="+", default=[64, 256, 1024, 4096])
    parser.add_argument("--steps", type=int, default=5, help="timed control steps per run")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per figure (best kept)")
    parser.add_argument("--device", default=None, help="Warp device (default: the GPU if any, else cpu)")
    parser.add_argument("--task", default="reach")
    add_record_args(parser)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    rows, notes = sim_rows(args)
    table = markdown_table(rows)
    print(table)
    notes.append(
        f"Best of {args.repeats} runs of {args.steps} control steps ({args.task}: joints holding their start "
        f"targets); load average {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end."
    )
    for note in notes:
        print(note)
    if args.record:
        record(
            "scale_sim",
            "Simulation steps/s per backend and world count, next to mujoco.rollout",
            table,
            "\n".join(f"- {note}" for note in notes),
            path=args.results,
            packages=("warp-lang", "mujoco-warp", "torch"),
        )


if __name__ == "__main__":
    main()
