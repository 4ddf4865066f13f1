"""Train each (task, family) pair on several seeds; print and record success, wall-clock and
gradient steps; save one video per pair.

    .venv/bin/python benchmarks/policy_results.py                       # every pair, seeds 0 1 2
    .venv/bin/python benchmarks/policy_results.py --pairs reach/gcbc maze/hiql --seeds 0
    .venv/bin/python benchmarks/policy_results.py --quick               # tiny budgets (smoke test)

Datasets are collected once per task (seed 0) under --out/data and shared by every family and
seed. Each run is a real ``spine-train`` process; its final evaluation (``eval_episodes``
episodes on seeds 10000+) is the success rate reported. Each pair's result is kept under
--out/results, so pairs can be run separately; with ``--record`` the table of every stored pair
(and the rows already recorded for pairs not stored here) replaces the "policy_results" section of
benchmarks/RESULTS.md (benchmarks/record.py).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SECTION = "policy_results"  # the section of benchmarks/RESULTS.md that --record writes


@dataclass(frozen=True)
class Data:
    """A dataset: ``spine-collect`` arguments."""

    task: str
    args: tuple[str, ...]  # e.g. ("episodes=300",)

    @property
    def name(self) -> str:
        # a folder name Hydra takes in ``out=``: no brackets or commas (``task.side_y=[a,b]``)
        return "_".join([self.task, *(re.sub(r"[^\w.\-]", "", a.replace(",", "-")) for a in self.args)])


@dataclass(frozen=True)
class Pair:
    """One (task, family) row: its data, training overrides and what it is judged at."""

    task: str
    family: str
    data: Data | None
    train: tuple[str, ...]  # spine-train overrides (steps, eval settings, policy.*)
    note: str = ""
    teacher: str = ""  # family whose checkpoint (same seed) this one distils
    quick: tuple[str, ...] = field(default=("steps=200", "eval_every=200", "eval_episodes=2"))
    label: str = ""  # row name of a task variant (its train/data args set the variant); "" = task

    @property
    def name(self) -> str:
        """The row's task name: ``label`` or the task."""
        return self.label or self.task

    @property
    def key(self) -> str:
        return f"{self.name}/{self.family}"


REACH = Data("reach", ("episodes=300",))
PUSH = Data("push", ("episodes=500", "action_noise=0.01"))  # noisy states, clean expert_action labels
# push_fork: PushConfig.late_fork (both modes look the same until near the block), data with
# paired_modes (every layout both ways, so the side cannot be told from the layout)
LATE = ("task.late_fork=true",)
# 4,000 episodes: diffusion rises with the data from 500 to 4,000 episodes (RESULTS.md, "Push
# re-evaluated on 300 episodes")
PUSH_FORK = Data("push", (*LATE, "task.paired_modes=true", "episodes=4000", "action_noise=0.01"))
# push_pocket: the late fork with pocket walls on the block's near face (PushConfig.pocket_depth):
# the straight push between the two ways lodges the puck where the data never leaves; starts
# and goals 4 cm further out leave room to stop at the fork (expert 82 % with the data's noise).
# 2,000 episodes: 4,000 did worse for diffusion at 20k steps (RESULTS.md, "the pocket variant")
POCKET = (*LATE, "task.pocket_depth=0.04", "task.side_y=[0.21,0.25]")
PUSH_POCKET = Data("push", (*POCKET, "task.paired_modes=true", "episodes=2000", "action_noise=0.01"))
MAZE = Data("maze", ("mode=navigate", "episodes=200", "action_noise=0.1"))
AT_2CM = ("+eval_task.success_threshold=0.02",)
# the one-step student with the teacher's architecture and weights (the default before the MLP)
DENOISER_STUDENT = ("policy.net=denoiser", "policy.init_from_teacher=true", "policy.hidden=256")
DENOISER_STUDENT += ("policy.lr=1e-4", "policy.pool_size=65536")
PAIRS: list[Pair] = [
    Pair("reach", "gcbc", REACH, ("steps=20000", "eval_every=5000", "eval_episodes=50", *AT_2CM), "2 cm"),
    Pair("reach", "sac_her", None, ("steps=12000", "eval_every=6000", "eval_episodes=50", *AT_2CM), "2 cm"),
    Pair(
        "push",
        "gcbc",
        PUSH,
        ("steps=20000", "eval_every=10000", "eval_episodes=100", "policy.hidden=512", "policy.layers=4"),
        "512x4: same size as diffusion; 100 episodes",
    ),
    Pair(
        "push",
        "diffusion",
        PUSH,
        ("steps=20000", "eval_every=10000", "eval_episodes=100"),
        "chunk 8, temperature 0.25; 100 episodes",
    ),
    Pair(
        "push",
        "diffusion_student",
        PUSH,
        ("steps=60000", "eval_every=60000", "eval_episodes=100"),
        "MLP 384x3 from scratch, 0.5M pool (the default); 100 episodes",
        teacher="diffusion",
    ),
    Pair(
        "push",
        "gcbc",
        PUSH_FORK,
        (
            *LATE,
            "steps=20000",
            "eval_every=10000",
            "eval_episodes=300",
            "policy.hidden=512",
            "policy.layers=4",
        ),
        "late fork, 4,000 episodes; 512x4: same size as diffusion; 300 episodes",
        label="push_fork",
    ),
    Pair(
        "push",
        "diffusion",
        PUSH_FORK,
        (*LATE, "steps=20000", "eval_every=10000", "eval_episodes=300"),
        "late fork, 4,000 episodes; chunk 8; 300 episodes",
        label="push_fork",
    ),
    Pair(
        "push",
        "diffusion_student",
        PUSH_FORK,
        (*LATE, "steps=5000", "eval_every=5000", "eval_episodes=300", *DENOISER_STUDENT),
        "late fork, 4,000 episodes; denoiser student fine-tuned from the teacher; 300 episodes",
        teacher="diffusion",
        label="push_fork",
    ),
    Pair(
        "push",
        "gcbc",
        PUSH_POCKET,
        (
            *POCKET,
            "steps=20000",
            "eval_every=10000",
            "eval_episodes=300",
            "policy.hidden=512",
            "policy.layers=4",
        ),
        "late fork + 4 cm pocket, 2,000 episodes; 512x4: same size as diffusion; 300 episodes",
        label="push_pocket",
    ),
    Pair(
        "push",
        "diffusion",
        PUSH_POCKET,
        (*POCKET, "steps=20000", "eval_every=10000", "eval_episodes=300"),
        "late fork + 4 cm pocket, 2,000 episodes; chunk 8; 300 episodes",
        label="push_pocket",
    ),
    Pair(
        "maze",
        "gcbc",
        MAZE,
        ("steps=20000", "eval_every=10000", "eval_episodes=50", "policy.relabel=true", "policy.layers=3"),
        "3x256: the size of GCIVL's and HIQL's value networks",
    ),
    Pair(
        "maze",
        "gcivl",
        MAZE,
        ("steps=20000", "eval_every=10000", "eval_episodes=50"),
        "value 3x256, actor 2x256",
    ),
    Pair(
        "maze",
        "hiql",
        MAZE,
        ("steps=10000", "eval_every=5000", "eval_episodes=50"),
        "10k steps; value 3x256, policies 2x256",
    ),
]


def run(cmd: list[str], log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as f:
        done = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} ... failed; see {log}")


def dataset(data: Data, out: Path, quick: bool) -> Path:
    folder = out / "data" / (data.name + ("_quick" if quick else ""))
    path = folder / f"{data.task}.npz"
    if not path.is_file():
        args = [a if not (quick and a.startswith("episodes=")) else "episodes=4" for a in data.args]
        run([str(BIN / "spine-collect"), f"task={data.task}", *args, f"out={folder}"], folder / "collect.log")
    return path


def train(pair: Pair, seed: int, out: Path, quick: bool, threads: int, reuse: bool = False) -> dict:
    run_dir = out / "runs" / pair.name / pair.family / f"seed{seed}"
    if reuse and (run_dir / "summary.json").is_file():  # a finished run of this pair and seed
        return json.loads((run_dir / "summary.json").read_text())
    args = [f"task={pair.task}", f"policy={pair.family}", f"seed={seed}", f"out={run_dir}", *pair.train]
    args.append(f"torch_threads={threads}")
    if pair.data is not None:
        args.append(f"dataset={dataset(pair.data, out, quick)}")
    if pair.teacher:
        args.append(
            f"policy.teacher={out / 'runs' / pair.name / pair.teacher / f'seed{seed}' / 'checkpoint'}"
        )
    if quick:
        args += list(pair.quick)
    t0 = time.perf_counter()
    run([str(BIN / "spine-train"), *args], run_dir / "train.log")
    summary = json.loads((run_dir / "summary.json").read_text())
    summary.setdefault("wall_s", time.perf_counter() - t0)
    return summary


def video(pair: Pair, out: Path) -> Path | None:
    """One episode of the seed-0 policy, rendered offscreen."""
    import sim
    from policies.checkpoint import load_checkpoint
    from sim.video import record_video

    ckpt = out / "runs" / pair.name / pair.family / "seed0" / "checkpoint"
    if not ckpt.is_dir():
        return None
    policy, _ = load_checkpoint(ckpt)
    task_args = dict(a.removeprefix("task.").split("=", 1) for a in pair.train if a.startswith("task."))
    values = {k: yaml.safe_load(v) for k, v in task_args.items()}  # "true" -> True, "0.04" -> 0.04
    env = sim.make(pair.task, render_mode="rgb_array", **values)
    path = out / "videos" / f"{pair.name}_{pair.family}.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return record_video(env, policy.act, path, seed=10_000, reset=policy.reset)
    except RuntimeError as e:  # no offscreen GL: say so, keep the numbers
        print(f"  no video for {pair.key}: {e}")
        return None


def table(rows: list[dict]) -> str:
    lines = [
        "| task | family | success mean ± std | per seed | train wall-clock per run | gradient steps "
        "| run on | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        s = np.asarray(r["success"]) * 100
        per_seed = ", ".join(f"{v:.0f}" for v in s)
        lines.append(
            f"| {r['task']} | {r['family']} | {s.mean():.0f}% ± {s.std():.0f} | {per_seed} | "
            f"{np.mean(r['wall_s']):.0f} s | {r['steps']} | {r.get('date', '')} | {r['note']} |"
        )
    return "\n".join(lines)


def main() -> None:
    from record import add_record_args  # benchmarks/ is on the path when this runs as a script

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", nargs="*", help="task/family keys (default: all)")
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "policy_results")
    ap.add_argument("--quick", action="store_true", help="tiny budgets: checks the pipeline, not quality")
    ap.add_argument("--no-video", action="store_true")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per training run")
    ap.add_argument("--reuse", action="store_true", help="keep seeds whose run folder has a summary.json")
    add_record_args(ap)
    args = ap.parse_args()
    chosen = [p for p in PAIRS if not args.pairs or p.key in args.pairs]
    rows = []
    for pair in chosen:
        runs = []
        for seed in args.seeds:
            s = train(pair, seed, args.out, args.quick, args.threads, args.reuse)
            runs.append(s)
            print(
                f"{pair.key} seed {seed}: success {s['success_rate']:.2f} in {s['wall_s']:.0f} s", flush=True
            )
        row = {
            "task": pair.name,
            "family": pair.family,
            "success": [r["success_rate"] for r in runs],
            "wall_s": [r["wall_s"] for r in runs],
            "steps": runs[0]["steps"],
            "seeds": args.seeds,
            "note": pair.note,
            "date": time.strftime("%Y-%m-%d"),
            "command": " ".join(sys.argv[1:]),
        }
        rows.append(row)
        if not args.quick:  # each pair's result is kept, so pairs can be (re)run separately
            store = args.out / "results" / f"{pair.name}_{pair.family}.json"
            store.parent.mkdir(parents=True, exist_ok=True)
            store.write_text(json.dumps(row, indent=2))
        if not args.no_video:
            v = video(pair, args.out)
            if v:
                print(f"  video: {v}")
    print(table(rows))
    if args.record and not args.quick:  # quick runs are never recorded
        write_results(table(stored_rows(args.out)), args)


def stored_rows(out: Path) -> list[dict]:
    """Every pair's latest stored result under ``out/results``, in the order of PAIRS."""
    rows = []
    for pair in PAIRS:
        path = out / "results" / f"{pair.name}_{pair.family}.json"
        if path.is_file():
            rows.append(json.loads(path.read_text()))
    return rows


def merge_rows(text: str, recorded: str | None) -> str:
    """``text`` (a table of the stored pairs) plus the rows of the table in ``recorded`` (the
    section's current text) for pairs not stored here (a fresh checkout keeps the rows it did not
    rerun), in PAIRS order."""
    new = {_row_key(line): line for line in text.splitlines()[2:]}
    old = {
        _row_key(line): line
        for line in (recorded or "").splitlines()
        if line.startswith("| ") and "---" not in line
    }
    old.pop(("task", "family"), None)
    order = [(p.name, p.family) for p in PAIRS]
    keys = sorted(set(new) | set(old), key=lambda k: order.index(k) if k in order else len(order))
    return "\n".join([*text.splitlines()[:2], *(new.get(k) or old[k] for k in keys)])


def _row_key(line: str) -> tuple[str, str]:
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    return cells[0], cells[1]


def write_results(text: str, args: argparse.Namespace) -> None:
    """Record ``text`` merged with the rows already recorded (benchmarks/record.py)."""
    from record import read_section, record

    cmd = "`.venv/bin/python benchmarks/policy_results.py --pairs <task/family> --seeds 0 1 2`"
    notes = (
        f"Each row: {cmd} (one training process per seed, torch on {args.threads} thread(s), final "
        "evaluation on seeds 10000+); rows can be run separately, and a row not rerun keeps its date "
        '("run on"); the machine is the one of the rows run now.'
    )
    now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    record(
        SECTION,
        "Success over 3 training seeds, trainer's final evaluation",
        merge_rows(text, read_section(SECTION, args.results)),
        notes,
        date=f'{now} for the rows run now (each row\'s "run on")',
        path=args.results,
        packages=("torch", "mujoco"),
    )


if __name__ == "__main__":
    main()
