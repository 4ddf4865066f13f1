"""Offline evaluation of a WidowX bundle over WidowX logs: the golden log, and the real robot log
(read from ../shared/, never copied into the project; skipped with a reason where absent)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deploy.logs.mapped import read_mapped
from deploy.logs.mapping import load_mapping
from deploy.offline.evaluate import evaluate_log
from deploy.offline.replay import main as replay_main

ROOT = Path(__file__).parents[2]
GOLDEN = ROOT / "tests" / "artifacts" / "widowx_golden.bag"
MAPPING = ROOT / "configs" / "replay" / "widowx200.yaml"
REAL = ROOT.parent / "shared" / "data" / "real_logs" / "widowx200_waist_diagnostics" / "waist_diagnostics.bag"
real_log = pytest.mark.skipif(
    not REAL.is_file(), reason=f"real WidowX log not found at {REAL} (CI has it in ../shared)"
)


@pytest.fixture(scope="module")
def widowx_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GCBC trained on the golden log converted to a dataset, exported with spine-export."""
    from deploy.export.app import export_bundle
    from deploy.offline.log_dataset import log_to_dataset
    from policies.gcbc import GCBCConfig
    from policies.trainer import TrainConfig, train

    work = tmp_path_factory.mktemp("widowx")
    data = log_to_dataset(GOLDEN, load_mapping(MAPPING), work / "data")
    cfg = TrainConfig(
        dataset=str(data),
        out=str(work / "train"),
        steps=100,
        eval_every=100,
        eval_episodes=1,
        torch_threads=1,
    )
    train(cfg, "widowx_reach", "gcbc", {}, GCBCConfig(hidden=32, layers=2, relabel=True))
    export_bundle(work / "train" / "checkpoint", work / "bundle", samples=32)
    return work / "bundle"


def test_offline_eval_of_the_golden_log(widowx_bundle: Path, tmp_path: Path) -> None:
    report = evaluate_log(GOLDEN, widowx_bundle, load_mapping(MAPPING), tmp_path)
    assert report["ticks"] == 151 and 0 < report["ticks_replayed"] < 151  # ticks in the gap skipped
    assert report["gaps_s"] and report["commanded_joints"] == ["waist"]
    waist = report["command_error_rad"]["waist"]
    assert waist["ticks"] > 100 and np.isfinite(waist["mae"])
    assert report["command_error_rad"]["shoulder"] == {"ticks": 0}
    assert 0.0 <= report["veto_rate"] <= 1.0 and set(report["stage_rate"]) >= {"envelope", "rate_limit"}
    if report["critic"] is None:  # no critic in this bundle: nothing is invented
        assert "no risk" in (tmp_path / "report.md").read_text()
    else:
        assert sum(report["critic"]["histogram"]) == report["ticks_replayed"]
    assert report["stamps"]["/wx200/joint_states"]["non_monotonic"] == 1
    assert np.isfinite(report["policy_latency_us"]["p50"]) and np.isfinite(report["speed_vs_real_time"])
    assert json.loads((tmp_path / "report.json").read_text())["ticks"] == 151
    for png in ("offline_commands.png", "offline_safety.png"):
        assert (tmp_path / png).stat().st_size > 10_000
    md = (tmp_path / "report.md").read_text()
    assert "| waist |" in md and "gripper" in md  # the skipped gripper command is reported


def test_spine_replay_cli_with_a_mapping(widowx_bundle: Path, tmp_path: Path, capsys) -> None:
    rc = replay_main(
        [str(GOLDEN), "--bundle", str(widowx_bundle), "--out", str(tmp_path), "--mapping", str(MAPPING)]
    )
    assert rc == 0 and "veto rate" in capsys.readouterr().out
    rc = replay_main(
        [
            str(tmp_path / "nope.bag"),
            "--bundle",
            str(widowx_bundle),
            "--out",
            str(tmp_path),
            "--mapping",
            str(MAPPING),
        ]
    )
    assert rc == 1 and "no such file" in capsys.readouterr().err


@real_log
def test_real_widowx_log_decodes_with_the_definitions_stored_in_it() -> None:
    import sim

    spec = sim.make("widowx_reach").task_spec
    log = read_mapped(REAL, load_mapping(MAPPING), spec.joint_names, spec.joint_pos_min, spec.joint_pos_max)
    assert log.topics["/wx200/commands/joint_single"] == "interbotix_xs_sdk/msg/JointSingleCommand"
    assert log.topics["/wx200/temperatures/joint_group"] == "interbotix_xsarm_diagnostic_tool/msg/JointTemps"
    assert len(log.joint_pos) == 10598 and len(log.command) == 1002
    assert log.commanded.tolist() == [True, False, False, False, False]
    assert np.nanmax(np.abs(log.command.values[:, 0])) == pytest.approx(3.1412, abs=1e-3)
    issues = log.stamps["/wx200/joint_states"]
    assert issues.non_monotonic == issues.duplicated == 0
    assert (
        30 <= np.nanmin(log.extras["temperature"].values) <= np.nanmax(log.extras["temperature"].values) <= 45
    )
    # the vendor's sleep pose puts the shoulder at -108 deg, past the published -80 deg: reported
    assert log.limit_excursions["shoulder"]["worst_rad"] == pytest.approx(np.radians(108 - 80), abs=0.01)


@real_log
def test_real_log_cut_short_replays_what_it_holds(tmp_path: Path) -> None:
    import sim

    data = REAL.read_bytes()
    (tmp_path / "cut.bag").write_bytes(data[: len(data) * 6 // 10])  # a temporary copy, cut at 60 %
    spec = sim.make("widowx_reach").task_spec
    mapping = load_mapping(MAPPING)
    log = read_mapped(tmp_path / "cut.bag", mapping, spec.joint_names, spec.joint_pos_min, spec.joint_pos_max)
    assert 5000 < len(log.joint_pos) < 10598 and log.command is not None
    assert any("ROS 1 bag without a readable index" in s for s in log.skipped)


@real_log
def test_offline_eval_of_the_real_log(widowx_bundle: Path, tmp_path: Path) -> None:
    report = evaluate_log(REAL, widowx_bundle, load_mapping(MAPPING), tmp_path, start_s=60.0, end_s=80.0)
    assert report["ticks"] == 501 and report["ticks_replayed"] == 500  # 5 episodes of 100; 1 tick left
    assert report["command_error_rad"]["waist"]["ticks"] == 500
    assert report["veto_rate"] > 0.5  # the sweep is commanded far ahead of the velocity envelope


def test_offline_modules_import_without_torch() -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import deploy.offline.evaluate, deploy.logs.mapped, deploy.logs.resample\n"
        "import deploy.logs.salvage, deploy.offline.replay\n"
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_spine_replay_of_another_arms_ros2_log_states_its_rate(
    widowx_bundle: Path, tmp_path: Path, capsys
) -> None:
    """A UR-like ROS 2 log (500 Hz, JointTrajectory commands) mapped by name onto the WidowX task."""
    from tests.deploy.ros2_bags import ur_mapping, write_ur_log

    bag = write_ur_log(tmp_path / "bag", "mcap", "humble")
    mapping = tmp_path / "ur.yaml"
    mapping.write_text(json.dumps(ur_mapping()))
    rc = replay_main(
        [str(bag), "--bundle", str(widowx_bundle), "--out", str(tmp_path / "o"), "--mapping", str(mapping)]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "spine-replay: log: /joint_states: 2000 messages over 4.0 s at 500.0 Hz" in out
    assert "spine-replay: resampled to 25 Hz: no gap over 0.1 s" in out
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["commanded_joints"] == ["waist", "shoulder", "elbow", "wrist_angle", "wrist_rotate"]
    assert report["command_error_rad"]["waist"]["ticks"] > 90
    assert "500.0 Hz" in (tmp_path / "o" / "report.md").read_text()
