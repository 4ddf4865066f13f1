"""task=dmc end to end: SAC on dm_control's reward -> spine-export -> spine-run through the
Controller with the normalized safety stage -> spine-replay (bit-exact); and the refusals
(no scripted expert to collect, no critic for normalized commands)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BIN = Path(sys.executable).parent
TINY = (
    "policy=sac_her", "dataset=", "steps=300", "eval_every=300", "eval_episodes=1", "log_every=100",
    "policy.hidden=32", "policy.num_envs=2", "policy.warmup_steps=200", "policy.buffer_episodes=20",
    "task.episode_steps=40", "torch_threads=1",
)  # fmt: skip


def sh(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=600)
    if ok:
        assert out.returncode == 0, f"{args[0]} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}"
    return out


@pytest.mark.slow
def test_dmc_trains_exports_runs_and_replays(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from deploy.logs.read import read_log
    from deploy.runtime.bundle import load_bundle

    d = tmp_path
    sh("spine-train", "task=dmc", f"out={d}/train", *TINY)
    metrics = (d / "train/metrics.csv").read_text()
    assert "train_return" in metrics.splitlines()[0]  # dm_control's reward, summed per episode
    sh(
        "spine-export",
        f"{d}/train/checkpoint",
        "--out",
        f"{d}/bundle",
        "--samples",
        "32",
        "--eval-episodes",
        "1",
    )
    contract = load_bundle(d / "bundle").contract
    assert contract.task.action.kind == "normalized" and contract.outputs[0].name == "action"
    sim_check = json.loads((d / "bundle/report.json").read_text())["sim"]
    assert sim_check["success_rate_difference"] == 0.0
    sh("spine-run", f"{d}/bundle", "--episodes", "2", "--log", f"{d}/run")
    run = json.loads((d / "run/summary.json").read_text())
    assert run["ticks"] == 2 * 1000 and np.isfinite(run["return_mean"])  # the suite's 1000-step episodes

    # every command the Controller sent: in [-1, 1], at most 0.5 from the one before (25/s at 50 Hz)
    log = read_log(d / "run/log", contract.task.joint_names)
    assert log.command is not None and log.observation is not None and log.goal is not None
    cmd = log.command.values
    assert np.all(np.isfinite(cmd)) and np.all(np.abs(cmd) <= 1.0)
    episodes = log.episode.values[:, 0]
    steps = np.abs(np.diff(cmd, axis=0))[episodes[1:] == episodes[:-1]]
    assert steps.max() <= 0.5 + 1e-12
    assert np.abs(cmd[0]).max() <= 0.5  # each episode starts from a zero command

    sh("spine-replay", f"{d}/run/log", "--bundle", f"{d}/bundle", "--out", f"{d}/replay")
    replay = json.loads((d / "replay/report.json").read_text())
    assert replay["ticks"] == run["ticks"] and replay["command_error_rad"]["max"] == 0.0
    assert replay["stages_agree_fraction"] == 1.0

    # a learned critic is refused for normalized commands, with the reason, before anything is logged
    from deploy.offline.run import main as spine_run

    code = spine_run([str(d / "bundle"), "--episodes", "1", "--log", str(d / "run2"), "--critic", "c.onnx"])
    err = capsys.readouterr().err
    assert code == 1 and "critic is not supported for normalized commands" in err
    assert not (d / "run2/log").exists()


def test_spine_collect_refuses_dmc_clearly(tmp_path: Path) -> None:
    out = sh("spine-collect", "task=dmc", "episodes=1", f"out={tmp_path}", ok=False)
    assert out.returncode == 1
    assert "no scripted expert" in out.stderr and "spine-train task=dmc policy=sac_her" in out.stderr
    assert "Traceback" not in out.stderr
