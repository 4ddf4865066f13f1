"""The main job, timed: ``./spine.sh demo``'s steps and what they produced.

    .venv/bin/python benchmarks/main_job.py [--out runs/main_job] [--label "fresh clone"] [--record]
        [-- spine-train overrides, e.g. steps=5000]

Runs ``./spine.sh demo`` as it is (its setup check included; the demo writes to ``--out`` through
``SPINE_DEMO_DIR``) with bash's trace of every command it runs, each stamped with the time it
started, written to a file of its own (``BASH_XTRACEFD``); so each step is timed on the very
commands spine.sh runs, and a step lasts until the next one starts. Steps: collect
(``spine-collect``), train (``spine-train``), critic + exports (``spine-train-critic`` and both
``spine-export``), run (``spine-run``), replay (``spine-replay``); the closing summary counts in
the total only. The run's success, the critic's use, the policy's latency and the replay's speed
and error are read from the demo's outputs. ``--record`` writes the row into the "main_job"
section of benchmarks/RESULTS.md (benchmarks/record.py).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from record import add_record_args, markdown_table, record

ROOT = Path(__file__).resolve().parents[1]
# the command each step starts with -> the step (the table's column)
STEPS = {
    "spine-collect": "collect",
    "spine-train": "train",
    "spine-train-critic": "critic + exports",
    "spine-export": "critic + exports",
    "spine-run": "run",
    "spine-replay": "replay",
    "spine-summary": "summary",
}
PS4 = "+[main_job $EPOCHREALTIME] "  # bash repeats the "+" once per subshell level
TRACE = re.compile(r"^\++\[main_job ([\d.,]+)\] \S*/(spine-[\w-]+)(?:\s|$)")


def run_demo(out: Path, overrides: list[str], trace: Path, root: Path = ROOT) -> tuple[float, float]:
    """Run ``root/spine.sh demo overrides`` into ``out`` with its command trace in ``trace``;
    returns the wall-clock start and end (s since the epoch). Exits if the demo fails."""
    # sourced, so the trace settings hold inside spine.sh; its own `cd` and `set -euo pipefail` apply
    script = f'exec 9>"$MAIN_JOB_TRACE"; BASH_XTRACEFD=9; PS4=\'{PS4}\'; set -x; source ./spine.sh "$@"'
    env = dict(os.environ, SPINE_DEMO_DIR=str(out), MAIN_JOB_TRACE=str(trace), LC_NUMERIC="C")
    start = time.time()
    done = subprocess.run(["bash", "-c", script, "main_job", "demo", *overrides], cwd=root, env=env)
    end = time.time()
    if done.returncode != 0:
        raise SystemExit(f"./spine.sh demo failed (exit {done.returncode}); its trace: {trace}")
    return start, end


def step_times(trace: str, start: float, end: float) -> dict[str, float]:
    """Seconds per step from a demo's command trace: each traced ``spine-*`` command starts a
    step that lasts until the next one starts (the last until ``end``); ``setup`` is the time
    from ``start`` to the first step, ``total`` the whole run."""
    starts = []
    for line in trace.splitlines():
        match = TRACE.match(line)
        if match and match.group(2) in STEPS:
            starts.append((float(match.group(1).replace(",", ".")), STEPS[match.group(2)]))
    times: dict[str, float] = {"setup": (starts[0][0] if starts else end) - start, "total": end - start}
    for (t, step), (t_next, _) in zip(starts, [*starts[1:], (end, "")], strict=True):
        times[step] = times.get(step, 0.0) + t_next - t
    return times


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def demo_row(out: Path, times: dict[str, float], date: str) -> dict[str, str]:
    """The recorded row: each step's time, with what the run and the replay did, and success."""
    nan = float("nan")
    data, train = _read(out / "data" / "reach.json"), _read(out / "train" / "summary.json")
    run, bundle = _read(out / "run" / "summary.json"), _read(out / "bundle" / "report.json")
    replay = _read(out / "replay" / "report.json")
    critic = run.get("critic") or {}
    used = (
        f"{critic.get('evaluations', 0)} critic evaluations, {critic.get('vetoes', 0)} vetoes, "
        f"risk p99 {critic.get('risk', {}).get('p99', nan):.2f}; "
        if critic
        else "no critic; "
    )
    loop, bare = run.get("policy_latency_us", {}), bundle.get("latency_us", {})
    error = replay.get("command_error_rad", {}).get("max", nan)
    exact = "bit-exact" if error == 0 else f"max command error {error:.1e} rad"
    episodes = run.get("episodes", "?")
    return {
        "date": date,
        f"collect ({data.get('episodes', '?')} ep)": f"{times.get('collect', nan):.0f} s",
        f"train ({train.get('steps', 0) / 1000:g}k steps)": f"{times.get('train', nan):.0f} s",
        "critic + exports": f"{times.get('critic + exports', nan):.0f} s",
        f"run {episodes} ep": f"{times.get('run', nan):.0f} s, {used}policy p50 {loop.get('p50', nan):.1f} "
        f"µs in the loop (the bare graph: {bare.get('p50', nan):.1f} µs in the export report)",
        f"replay {replay.get('ticks', '?')} ticks": f"{times.get('replay', nan):.0f} s, "
        f"{replay.get('speed_vs_real_time', nan):.0f}x real time, {exact}",
        "total": f"{times['total'] / 60:.1f} min",
        f"success ({episodes} ep, 3 cm)": f"{100 * run.get('success_rate', nan):.0f} %",
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/main_job"), help="the demo's output folder")
    ap.add_argument("--label", default="", help="what to say about this run in the date column")
    ap.add_argument("overrides", nargs="*", help="spine-train overrides, as ./spine.sh demo takes them")
    add_record_args(ap)
    args = ap.parse_args()
    out = args.out if args.out.is_absolute() else ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    trace = out / "main_job.trace"
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    start, end = run_demo(out, args.overrides, trace)
    times = step_times(trace.read_text(), start, end)
    row = demo_row(out, times, date + (f", {args.label}" if args.label else ""))
    table = markdown_table([row])
    print(table)
    if args.record:
        notes = (
            f"- Setup check {times['setup']:.0f} s and the closing summary {times.get('summary', 0.0):.0f} s "
            f"(in the total); outputs in `{args.out}`."
        )
        record(
            "main_job",
            "The demo's steps, timed",
            table,
            notes,
            path=args.results,
            packages=("torch", "onnxruntime", "mujoco"),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
