"""The README's main job on a tiny budget, through the real console scripts:
spine-collect -> spine-train -> spine-export -> spine-run -> spine-replay -> spine-summary."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def sh(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=300)
    if ok:
        assert out.returncode == 0, f"{args[0]} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}"
    return out


@pytest.mark.slow
def test_main_job_round_trip(tmp_path: Path) -> None:
    d = tmp_path
    sh("spine-collect", "task=reach", "episodes=10", f"out={d}/data")
    sh(
        "spine-train", "task=reach", "policy=gcbc", f"dataset={d}/data/reach.npz", f"out={d}/train",
        "steps=200", "eval_every=200", "eval_episodes=2", "policy.hidden=64",
    )  # fmt: skip
    assert (d / "train/learning_curves.png").stat().st_size > 5_000
    assert "loss" in (d / "train/metrics.csv").read_text().splitlines()[0]
    sh("spine-export", f"{d}/train/checkpoint", "--out", f"{d}/bundle", "--samples", "64")
    export = json.loads((d / "bundle/report.json").read_text())
    assert export["parity"]["max_abs_error"] <= 1e-4
    sh("spine-run", f"{d}/bundle", "--episodes", "2", "--log", f"{d}/run")
    sh("spine-replay", f"{d}/run/log", "--bundle", f"{d}/bundle", "--out", f"{d}/replay")
    replay = json.loads((d / "replay/report.json").read_text())
    assert replay["command_error_rad"]["max"] < 1e-9
    summary = sh("spine-summary", str(d)).stdout
    assert "ONNX parity" in summary and "success" in summary


def test_config_typo_fails_with_the_field_name(tmp_path: Path) -> None:
    out = sh("spine-train", "dataset=x.npz", f"out={tmp_path}", "policy.hiden=3", ok=False)
    assert out.returncode != 0 and "hiden" in out.stderr
    out = sh("spine-train", f"out={tmp_path}", ok=False)
    assert out.returncode != 0 and "dataset" in out.stderr
    out = sh("spine-collect", f"out={tmp_path}", "task.episode_step=5", ok=False)
    assert out.returncode != 0 and "episode_step" in out.stderr


def test_one_latency_figure_means_one_thing(tiny_bundle: Path) -> None:
    """The export's policy step is the call the Controller times in spine-run and spine-replay
    (deploy.runtime.latency): measured, next to the graph alone, and named so on the console."""
    import json as js

    report = js.loads((tiny_bundle / "report.json").read_text())
    step, graph = report["policy_step_us"], report["graphs"]["policy.onnx"]["latency_us"]
    assert 0 < graph["p50"] and 0.5 * graph["p50"] < step["p50"] < 10 * graph["p50"] + 100
