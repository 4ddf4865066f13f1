"""Replay through the same Controller: our own MCAP logs, foreign rosbag2 logs, bad logs."""

import json
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer

import sim
from deploy.logs import messages as m
from deploy.logs.read import LogError, read_log
from deploy.offline.replay import replay
from deploy.offline.run import run


@pytest.fixture(scope="module")
def run_dir(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    run(tiny_bundle, "reach", episodes=2, seed=5, log_dir=out)
    return out


def test_run_log_is_a_ros2_mcap_with_standard_messages(run_dir: Path) -> None:
    log = run_dir / "log"
    meta = (log / "metadata.yaml").read_text()
    assert "storage_identifier: mcap" in meta
    for topic, msgtype in [
        (m.TOPIC_JOINT_STATES, m.JOINT_STATE),
        (m.TOPIC_COMMAND, m.FLOAT64_ARRAY),
        (m.TOPIC_DIAGNOSTICS, m.DIAGNOSTICS),
        (m.TOPIC_GOAL, m.POINT_STAMPED),
    ]:
        assert f"name: {topic}" in meta and f"type: {msgtype}" in meta
    spec = sim.make("reach").task_spec
    data = read_log(log, spec.joint_names)
    assert len(data.joint_pos) == 2 * spec.episode_steps
    assert data.episode is not None and set(data.episode.values[:, 0]) == {0.0, 1.0}


def test_replay_of_own_log_reproduces_every_command(run_dir: Path, tiny_bundle: Path, tmp_path: Path) -> None:
    report = replay(run_dir / "log", tiny_bundle, tmp_path)
    err = report["command_error_rad"]
    assert err["matched_ticks"] == report["ticks"] == 200
    assert err["max"] < 1e-9
    assert report["stages_agree_fraction"] == 1.0
    assert (tmp_path / "replay.png").stat().st_size > 10_000
    assert "max abs error" in (tmp_path / "report.md").read_text()
    assert json.loads((tmp_path / "report.json").read_text())["ticks"] == 200


def write_foreign_bag(path: Path, names: list[str], n: int = 60, storage=StoragePlugin.SQLITE3) -> None:
    """A bag from 'another robot stack': only /joint_states at 100 Hz, no velocities."""
    with Writer(path, version=9, storage_plugin=storage) as w:
        conn = w.add_connection(m.TOPIC_JOINT_STATES, m.JOINT_STATE, typestore=m.TYPESTORE)
        for i in range(n):
            t = 1_000_000_000 + i * 10_000_000
            pos = np.array([0.01 * i + 0.1 * k for k in range(len(names))])
            msg = m.joint_state(t, names, pos, np.zeros(0))
            w.write(conn, t, m.serialize(msg))


def test_foreign_rosbag2_is_matched_by_joint_name(tiny_bundle: Path, tmp_path: Path) -> None:
    spec = sim.make("reach").task_spec
    names = [*reversed(spec.joint_names), "gripper"]
    write_foreign_bag(tmp_path / "bag", names)
    data = read_log(tmp_path / "bag", spec.joint_names)
    assert data.velocity_estimated
    # joint1 was written last among the arm joints (index 6 of the message): value 0.6 at i=0
    assert data.joint_pos.values[0, 0] == pytest.approx(0.6)
    report = replay(tmp_path / "bag", tiny_bundle, tmp_path / "out", goal=np.array([0.5, 0.0, 0.3]))
    assert report["ticks"] == 60 and "command_error_rad" not in report


@pytest.mark.parametrize("storage", [StoragePlugin.SQLITE3, StoragePlugin.MCAP])
def test_missing_joint_and_missing_goal_are_named(tiny_bundle: Path, tmp_path: Path, storage) -> None:
    spec = sim.make("reach").task_spec
    write_foreign_bag(tmp_path / "short", list(spec.joint_names[:6]), storage=storage)
    with pytest.raises(LogError, match="joint7"):
        read_log(tmp_path / "short", spec.joint_names)
    write_foreign_bag(tmp_path / "full", list(spec.joint_names), storage=storage)
    with pytest.raises(LogError, match="--goal"):
        replay(tmp_path / "full", tiny_bundle, tmp_path / "out")


def test_corrupt_and_absent_logs_are_named(tmp_path: Path, run_dir: Path) -> None:
    import shutil

    spec = sim.make("reach").task_spec
    with pytest.raises(LogError, match="no such file"):
        read_log(tmp_path / "nope", spec.joint_names)
    bad = tmp_path / "bad"
    shutil.copytree(run_dir / "log", bad)
    mcap = next(bad.glob("*.mcap"))
    # cut inside the first record after the header: nothing to salvage (a log cut later is
    # salvaged and replayed: tests/deploy/test_replay_salvage.py)
    mcap.write_bytes(mcap.read_bytes()[:64])
    with pytest.raises(LogError, match=str(bad)):
        read_log(bad, spec.joint_names)
