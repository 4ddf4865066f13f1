"""``spine-summary``: the main job's closing summary, read from its output folder.

spine-summary runs/demo

Exits 1, naming the files, when the folder lacks a stage's output (training, export, run,
replay; the critic is optional): a summary of work that did not happen is not a success.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

REQUIRED = ("train/summary.json", "bundle/report.json", "run/summary.json", "replay/report.json")


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def missing_outputs(root: Path) -> list[str]:
    """The stage outputs the main job writes that ``root`` lacks."""
    return [f for f in REQUIRED if not (root / f).is_file()]


def summarize(root: Path) -> str:
    train = _read(root / "train" / "summary.json")
    export = _read(root / "bundle" / "report.json")
    run = _read(root / "run" / "summary.json")
    replay = _read(root / "replay" / "report.json")
    critic = _read(root / "critic" / "report.json")
    lat = run.get("policy_latency_us", {})
    err = replay.get("command_error_rad", {})
    graphs = export.get("graphs", {"policy.onnx": export}).values()
    errors = [g.get("parity", {}).get("max_abs_error", float("nan")) for g in graphs]
    parity = max(errors, default=float("nan"))
    cal, used = critic.get("calibration", {}), run.get("critic") or {}
    rows = [
        (
            "training",
            f"{train.get('steps', '?')} steps in {train.get('wall_s', float('nan')):.0f} s, "
            f"sim success {train.get('success_rate', float('nan')):.0%}",
        ),
        (
            "ONNX parity",
            f"max |torch - onnxruntime| = {parity:.2e}",
        ),
        (
            "safety critic",
            f"held-out AUC {cal.get('auc', float('nan')):.2f}, ECE {cal.get('ece', float('nan')):.3f}; "
            f"in the run: {used.get('evaluations', 0)} evaluations, {used.get('vetoes', 0)} vetoes, "
            f"risk p99 {used.get('risk', {}).get('p99', float('nan')):.2f}"
            if used
            else "none in this run",
        ),
        (
            "run (Controller)",
            f"success {run.get('success_rate', float('nan')):.0%} over {run.get('episodes', '?')} "
            f"episodes, goal within 3 cm",
        ),
        (
            "policy step latency",
            f"p50 {lat.get('p50', float('nan')):.1f} us, p99 {lat.get('p99', float('nan')):.1f} us "
            "in the run (the Controller's policy call, 1 onnxruntime thread; "
            f"warm loop at export: p50 {export.get('policy_step_us', {}).get('p50', float('nan')):.1f} us)",
        ),
        ("safety interventions", str(run.get("interventions", {}))),
        (
            "replay",
            f"{replay.get('ticks', '?')} ticks, max |command error| {err.get('max', float('nan')):.2e} rad, "
            f"{replay.get('speed_vs_real_time', float('nan')):.0f}x real time",
        ),
        ("artifacts", f"{root}/ data/ train/ critic/ bundle/ run/log replay/report.md"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(["", "Spine demo summary", "=" * 18] + [f"{k:<{width}}  {v}" for k, v in rows])


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0] if args else "runs/demo")
    if not root.is_dir():
        print(f"spine-summary: {root}: no such folder", file=sys.stderr)
        return 1
    missing = missing_outputs(root)
    if len(missing) == len(REQUIRED):
        print(
            f"spine-summary: {root} holds no main-job output (none of {', '.join(REQUIRED)})", file=sys.stderr
        )
        return 1
    print(summarize(root))
    if missing:
        print(f"spine-summary: {root} lacks {', '.join(missing)}: those stages did not run", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
