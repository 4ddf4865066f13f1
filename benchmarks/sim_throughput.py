"""Simulation throughput: every task's env steps/s, single and batched, next to raw mj_step.

    .venv/bin/python benchmarks/sim_throughput.py [--envs 16] [--steps 2000] [--repeats 3]
        [--tasks reach maze] [--collect 1000000] [--collect-envs 16]

For each registered task (a task that fails to build is skipped, with the reason): one env's
``env.step``, then ``VectorEnv`` with ``--envs`` envs at 1 and 2 threads, each row next to a raw
``mujoco.mj_step(model, data, nstep=substeps)`` loop (one Python thread) on the same model,
replaying the same controls from the same start for the same number of physics steps, measured
right before the row. ratio = the row's physics steps/s / raw's. For ``dmc``, also dm_control's
own ``env.step``. Every figure is the best of ``--repeats`` runs (least disturbed by other load);
each run starts from an untimed reset, and resets at episode ends are timed.
Then the wall time of ``collect_batched`` for ``--collect`` reach transitions (0: skip); the
count is run in full, nothing is extrapolated. ``--record`` writes the table into its section of
benchmarks/RESULTS.md (benchmarks/record.py).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import mujoco
import numpy as np
from record import add_record_args, markdown_table, record

import sim
from sim.vector import VectorEnv


def best_rate(fn: Callable[[], int], repeats: int, setup: Callable[[], object] | None = None) -> float:
    """Best of ``repeats`` runs of ``fn`` (returns the work it did) in work per second;
    ``setup`` (untimed) runs before each."""
    rates = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        start = time.perf_counter()
        work = fn()
        rates.append(work / (time.perf_counter() - start))
    return max(rates)


def raw_rate(env, actions: np.ndarray, substeps: int, repeats: int) -> float:
    """Raw mj_step physics steps/s: ``env``'s controls for ``actions``, replayed from its
    reset state on a fresh ``MjData`` of the same model."""
    physics = env.unwrapped.physics
    model, data = getattr(physics.model, "ptr", physics.model), getattr(physics.data, "ptr", physics.data)
    env.reset(seed=0)
    spec = int(mujoco.mjtState.mjSTATE_INTEGRATION)
    start = np.empty(mujoco.mj_stateSize(model, spec))
    mujoco.mj_getState(model, data, start, spec)
    ctrls = []
    for action in actions:  # record the controls the task writes for each action
        env.step(action)
        ctrls.append(data.ctrl.copy())
    replay = mujoco.MjData(model)

    def run() -> int:
        for ctrl in ctrls:
            replay.ctrl[:] = ctrl
            mujoco.mj_step(model, replay, nstep=substeps)
        return len(ctrls) * substeps

    return best_rate(run, repeats, setup=lambda: mujoco.mj_setState(model, replay, start, spec))


def env_rate(env, actions: np.ndarray, substeps: int, repeats: int) -> float:
    """One env's physics steps/s through ``env.step`` (auto-reset when an episode ends)."""

    def run() -> int:
        for action in actions:
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
        return len(actions) * substeps

    return best_rate(run, repeats, setup=lambda: env.reset(seed=0))


def vector_rate(venv: VectorEnv, actions: np.ndarray, repeats: int) -> float:
    """A vector env's physics steps/s; ``actions`` ``(T, act)`` go to every env."""
    batch = np.repeat(actions[:, None], venv.num_envs, axis=1)

    def run() -> int:
        for action in batch:
            venv.step(action)
        return len(batch) * venv.num_envs * venv.physics_steps_per_step

    return best_rate(run, repeats, setup=lambda: venv.reset(seed=0))


def thread_scaling(task: str, repeats: int, calls: int = 2000) -> float:
    """How many times one thread's raw mj_step rate two Python threads reach, each stepping
    its own MjData of ``task``'s model: what the machine lets two threads gain right now."""
    import threading

    physics = [sim.make(task).unwrapped.physics for _ in range(2)]

    def loop(p) -> None:
        for _ in range(calls):
            mujoco.mj_step(p.model, p.data, nstep=10)

    def two() -> int:
        threads = [threading.Thread(target=loop, args=(p,)) for p in physics]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return 2 * calls

    return best_rate(two, repeats) / best_rate(lambda: loop(physics[0]) or calls, repeats)


def dm_control_rate(env, actions: np.ndarray, substeps: int, repeats: int) -> float | None:
    """dm_control's own ``env.step`` physics steps/s, for the dmc adapter (else None)."""
    dm_env = getattr(env.unwrapped, "dm_env", None)
    if dm_env is None:
        return None
    repeat = getattr(env.unwrapped.config, "action_repeat", 1)

    def run() -> int:
        for action in actions:
            for _ in range(repeat):
                if dm_env.step(action).last():
                    dm_env.reset()
        return len(actions) * substeps

    return best_rate(run, repeats, setup=dm_env.reset)


def bench_task(task: str, args: argparse.Namespace) -> list[tuple[str, float, float]]:
    """Rows ``(what, physics steps/s, raw physics steps/s)`` for one task."""
    env = sim.make(task)
    spec = env.task_spec
    substeps = round(spec.physics_hz / spec.control_hz)
    env.action_space.seed(0)
    single = np.stack([env.action_space.sample() for _ in range(args.steps)])
    per_env = max(1, args.steps // args.envs)
    rows = []
    raw = raw_rate(env, single, substeps, args.repeats)
    rows.append(("env.step, 1 env", env_rate(env, single, substeps, args.repeats), raw))
    dm_rate = dm_control_rate(env, single, substeps, args.repeats)
    if dm_rate is not None:
        rows.append(("dm_control env.step", dm_rate, raw))
    for threads in (1, 2):
        with VectorEnv(task, args.envs, threads=threads) as venv:
            raw = raw_rate(env, single, substeps, args.repeats)
            rate = vector_rate(venv, single[:per_env], args.repeats)
            rows.append((f"VectorEnv {args.envs} envs, {threads} thr", rate, raw))
    env.close()
    return rows


def bench_collect(transitions: int, num_envs: int) -> tuple[float, float, int]:
    """Wall time (s) of ``collect_batched`` for ``transitions`` reach transitions, the time
    of the rollout alone (s), and the transitions written."""
    import json

    from sim.vector_collect import collect_batched

    episode_steps = sim.make("reach").task_spec.episode_steps
    episodes = -(-transitions // episode_steps)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        path = collect_batched("reach", episodes, seed=0, out_dir=Path(tmp), num_envs=num_envs, threads=2)
        wall = time.perf_counter() - start
        meta = json.loads(path.with_suffix(".json").read_text())
    return wall, meta["elapsed_s"], meta["transitions"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--envs", type=int, default=16, help="envs per VectorEnv")
    ap.add_argument("--steps", type=int, default=2000, help="control steps per single-env run")
    ap.add_argument("--repeats", type=int, default=3, help="runs per figure (best is kept)")
    ap.add_argument("--tasks", nargs="*", default=None, help="tasks to run (default: all)")
    ap.add_argument("--collect", type=int, default=1_000_000, help="reach transitions to collect")
    ap.add_argument("--collect-envs", type=int, default=16)
    add_record_args(ap)
    args = ap.parse_args()
    load = os.getloadavg()[0]
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, mujoco {mujoco.__version__}, "
        f"load average {load:.2f} at start; best of {args.repeats}"
    )
    scaling = thread_scaling("reach", args.repeats)
    print(f"raw mj_step (reach model) on 2 Python threads: {scaling:.2f}x one thread's rate")
    print(f"{'task':<17}{'what':<26}{'env steps/s':>12}{'phys steps/s':>14}{'raw mj_step/s':>15}{'ratio':>7}")
    table: list[dict[str, str]] = []
    for task in args.tasks or sim.names():
        try:
            rows = bench_task(task, args)
        except Exception as error:  # a task that cannot be built or stepped is reported, not fatal
            print(f"{task:<17}skipped: {type(error).__name__}: {error}")
            continue
        spec = sim.make(task).task_spec
        substeps = round(spec.physics_hz / spec.control_hz)
        for what, rate, raw in rows:
            figures = f"{rate / substeps:>12,.0f}{rate:>14,.0f}{raw:>15,.0f}{rate / raw:>7.2f}"
            print(f"{task:<17}{what:<26}{figures}")
            table.append(table_row(task, what, rate, raw, substeps))
    collected, wall = "", None
    if args.collect:
        wall, rollout, n = bench_collect(args.collect, args.collect_envs)
        collected = (
            f"collect_batched reach, {n:,} transitions, {args.collect_envs} envs, 2 threads: "
            f"{wall:.1f} s wall ({rollout:.1f} s rollout, {wall - rollout:.1f} s stacking + saving); "
            f"{n / wall:,.0f} transitions/s"
        )
        print(collected)
    end_load = os.getloadavg()[0]
    print(f"load average {end_load:.2f} at the end")
    if args.record:
        notes = [
            f"Best of {args.repeats} runs per figure, {args.steps} control steps per single-env run; "
            f"load average {load:.2f} at the start, {end_load:.2f} at the end (its own threads included).",
            f"Raw `mj_step` (reach model) on 2 Python threads: {scaling:.2f}x one thread's rate.",
        ]
        notes += [f"{collected[0].upper()}{collected[1:]}."] if collected else []
        notes += targets(table, args.collect, wall)
        record(
            "sim_throughput",
            "Env steps/s, single and batched, next to raw `mj_step`"
            + ("; reach transitions collected" if collected else ""),
            markdown_table(table),
            "\n".join(f"- {n}" for n in notes),
            path=args.results,
            packages=("mujoco",),
        )


def table_row(task: str, what: str, rate: float, raw: float, substeps: int) -> dict[str, str]:
    """One row of the recorded table, named as in RESULTS.md."""
    if task == "dmc":  # the suite task the adapter ran
        config = sim.make(task).unwrapped.config
        task = f"dmc ({config.domain}/{config.task})"
    names = {"env.step, 1 env": "`env.step`, 1 env", "dm_control env.step": "dm_control's own `env.step`"}
    if what.startswith("VectorEnv"):  # "VectorEnv 16 envs, 2 thr"
        envs, threads = what.removeprefix("VectorEnv ").removesuffix(" thr").split(", ")
        what = f"`VectorEnv` {envs}, {threads} thread{'s' if threads != '1' else ''}"
    return {
        "task": task,
        "what": names.get(what, what),
        "env steps/s": f"{rate / substeps:,.0f}",
        "physics steps/s": f"{rate:,.0f}",
        "raw mj_step/s": f"{raw:,.0f}",
        "ratio": f"{rate / raw:.2f}",
    }


def targets(table: list[dict[str, str]], collect: int, wall: float | None) -> list[str]:
    """Issue 3's targets, met or missed, from the recorded rows and the collection's wall time."""
    out = []
    reach = [r for r in table if r["task"] == "reach" and r["what"].endswith("2 threads")]
    if reach:
        ratio = float(reach[0]["ratio"])
        verdict = "met" if ratio >= 0.5 else "missed"
        out.append(
            f"Target: batched reach at 2 threads >= 50 % of raw `mj_step`: **{verdict}** ({ratio:.2f})"
        )
    if collect >= 1_000_000 and wall is not None:
        verdict = "met" if wall < 300 else "missed"
        out.append(
            "Target: 1 M reach transitions in under 5 minutes on 2 cores: "
            f"**{verdict}** ({wall / 60:.1f} min)"
        )
    return out


if __name__ == "__main__":
    main()
