"""PPO training throughput (rsl_rl on batched sim, ``policy=ppo``): samples/s for 1 and 2 processes.

    .venv/bin/python benchmarks/scale_train.py [--envs 32] [--iterations 12] [--warmup 2]
        [--task reach] [--backend cpu] [--device cpu] [--record]

Each row is one real ``spine-train task=<task> policy=ppo`` run in child processes: one process
(``python -m policies.train_app``), or two under ``torchrun --standalone --nproc_per_node=2``
(``policies.distributed``: each rank steps its own ``--envs`` envs, rsl_rl's PPO averages
gradients, KL and normalizer statistics over the ranks). A sample is one env step of one env
that PPO trains on; samples/s = the samples of all ranks after the first ``--warmup``
iterations / the wall time of those iterations (rank 0's clock; rollout, PPO epochs and the
ranks' synchronization included, start-up and evaluation not). Rows: 1 process with 1 and with
2 physics threads, 2 processes with 1 each. ``--record`` writes the table into its section of
benchmarks/RESULTS.md. ``train_rates`` gives the rows to other scripts (benchmarks/scale.py).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from record import add_record_args, markdown_table, record

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LAYOUTS = ((1, 1), (1, 2), (2, 1))  # (processes, physics threads per process)


def train_rate(
    processes: int,
    env_threads: int,
    envs: int,
    iterations: int,
    warmup: int,
    out: Path,
    task: str = "reach",
    backend: str = "cpu",
    device: str = "cpu",
) -> dict[str, Any]:
    """One PPO training run of ``iterations`` on ``processes`` ranks; its samples/s (all ranks)."""
    if iterations <= warmup:
        raise ValueError(f"--iterations ({iterations}) must exceed --warmup ({warmup})")
    app = ["-m", "policies.train_app", f"task={task}", "policy=ppo", "dataset=", f"out={out}"]
    app += [f"steps={iterations}", "log_every=1", f"eval_every={iterations}", "eval_episodes=1"]
    app += [f"policy.num_envs={envs}", f"policy.env_threads={env_threads}", f"policy.backend={backend}"]
    app += [f"policy.device={device}"]
    if processes == 1:
        cmd = [sys.executable, *app]
    else:
        cmd = [str(BIN / "torchrun"), "--standalone", f"--nproc_per_node={processes}", *app]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    with (out / "metrics.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r.get("env_steps")]
    first, last = rows[warmup - 1], rows[-1]
    samples = float(last["env_steps"]) - float(first["env_steps"])
    seconds = float(last["wall_s"]) - float(first["wall_s"])
    return {
        "processes": processes,
        "physics threads / process": env_threads,
        "envs / process": envs,
        "iterations timed": len(rows) - warmup,
        "samples/s": round(samples / seconds),
        "s / iteration": round(seconds / (len(rows) - warmup), 3),
    }


def train_rates(
    envs: int = 32,
    iterations: int = 12,
    warmup: int = 2,
    task: str = "reach",
    backend: str = "cpu",
    device: str = "cpu",
) -> list[dict[str, Any]]:
    """The rows of ``LAYOUTS``, each with its ratio to the first (1 process, 1 thread)."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (processes, threads) in enumerate(LAYOUTS):
            out = Path(tmp) / f"run{i}"
            rows.append(train_rate(processes, threads, envs, iterations, warmup, out, task, backend, device))
    for row in rows:
        row["vs 1 process, 1 thread"] = round(row["samples/s"] / rows[0]["samples/s"], 2)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--envs", type=int, default=32, help="envs per process (default %(default)s)")
    ap.add_argument("--iterations", type=int, default=12, help="PPO iterations per run (default %(default)s)")
    ap.add_argument("--warmup", type=int, default=2, help="iterations left out of the timing")
    ap.add_argument("--task", default="reach", help="task (default %(default)s)")
    ap.add_argument("--backend", default="cpu", help="sim.make_vec backend (default %(default)s)")
    ap.add_argument("--device", default="cpu", help="rsl_rl's (and warp's) device (default %(default)s)")
    add_record_args(ap)
    args = ap.parse_args()
    rows = train_rates(args.envs, args.iterations, args.warmup, args.task, args.backend, args.device)
    table = markdown_table(rows)
    print(table)
    if args.record:
        notes = (
            "PPO steps_per_env 24, 5 epochs x 4 minibatches, 3 x 128 MLPs, one torch thread per process; "
            f"{os.cpu_count()} cores. Two processes each step their own envs (twice the samples per "
            "iteration) and average gradients over gloo."
        )
        record(
            "scale_train",
            "PPO training samples/s, 1 vs 2 processes",
            table,
            notes,
            path=args.results,
            packages=("torch", "mujoco", "rsl-rl-lib"),
        )


if __name__ == "__main__":
    main()
