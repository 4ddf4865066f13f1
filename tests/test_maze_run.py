"""spine-run and spine-replay on a task with a planar goal and no end effector (the maze): the
log holds the 2-D goal as a point with z = 0 and no end-effector topic; the replay is bit-exact."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def sh(*args: str) -> None:
    out = subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"{args[0]} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}"


@pytest.mark.slow
def test_maze_runs_and_replays(tmp_path: Path) -> None:
    d = tmp_path
    sh("spine-collect", "task=maze", "episodes=10", f"out={d}/data")
    sh(
        "spine-train", "task=maze", "policy=gcbc", f"dataset={d}/data/maze.npz", f"out={d}/train",
        "steps=100", "eval_every=100", "eval_episodes=1", "policy.hidden=32", "torch_threads=1",
    )  # fmt: skip
    sh("spine-export", f"{d}/train/checkpoint", "--out", f"{d}/bundle", "--samples", "32")
    sh("spine-run", f"{d}/bundle", "--episodes", "1", "--log", f"{d}/run")
    sh("spine-replay", f"{d}/run/log", "--bundle", f"{d}/bundle", "--out", f"{d}/replay")
    replay = json.loads((d / "replay/report.json").read_text())
    assert replay["command_error_rad"]["max"] == 0.0 and replay["ticks"] > 0


def test_a_failed_run_leaves_no_partial_log(tmp_path: Path, tiny_bundle: Path) -> None:
    out = subprocess.run(
        [
            str(BIN / "spine-run"),
            str(tiny_bundle),
            "--task",
            "maze",
            "--episodes",
            "1",
            "--log",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 1 and "contract field" in out.stderr
    assert not (tmp_path / "log").exists()
