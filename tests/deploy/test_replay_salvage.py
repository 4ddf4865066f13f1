"""spine-replay of Spine's own logs when they are damaged, and of the bag spine-stack records.

A ``spine-run`` log cut short or left without ``metadata.yaml`` is salvaged and replayed, as
docs/replay.md says; a corrupt message is skipped and reported. The stack's bag (written here
the way ``ros_nodes/recorder_node.py`` writes it) carries ``/diagnostics`` from several nodes:
the safety node's status has no episode and a ``risk`` of "nan" (no critic), the sim robot's
has the episode; replaying it once failed with "cannot convert float NaN to integer"."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer

import sim
from deploy.logs import messages as m
from deploy.logs.read import read_log
from deploy.offline.replay import main as replay_main
from deploy.offline.replay import replay
from deploy.offline.run import run
from tests.deploy.ros2_bags import flip

SAFETY, SIM = "spine/safety", "spine/sim_robot"


@pytest.fixture(scope="module")
def run_log(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    run(tiny_bundle, "reach", episodes=2, seed=5, log_dir=out)
    return out / "log"


def write_stack_bag(path: Path, seconds: float = 2.0, payload_hook=None) -> int:
    """A bag as the stack's recorder writes it (rosbag2 v9 MCAP, receive times, every topic);
    returns the number of joint states."""
    spec = sim.make("reach").task_spec
    names = list(spec.joint_names)
    topics = {
        m.TOPIC_JOINT_STATES: m.JOINT_STATE,
        m.TOPIC_EE: m.POINT_STAMPED,
        m.TOPIC_GOAL: m.POINT_STAMPED,
        m.TOPIC_COMMAND: m.FLOAT64_ARRAY,
        m.TOPIC_POLICY_CMD: m.FLOAT64_ARRAY,
        m.TOPIC_DIAGNOSTICS: m.DIAGNOSTICS,
        "/spine/estop": "std_msgs/msg/Bool",
    }
    t0, n_js = 1_800_000_000_000_000_000, 0
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        conns = {t: w.add_connection(t, ty, typestore=m.TYPESTORE) for t, ty in topics.items()}

        def put(topic: str, t: int, msg: object) -> None:
            raw = bytes(m.TYPESTORE.serialize_cdr(msg, topics[topic]))
            w.write(conns[topic], t + 150_000, raw)  # received a little after it was stamped

        for k in range(round(seconds * 1000)):  # 1 kHz: the safety node's loop
            t = t0 + k * 1_000_000
            q = 0.3 * np.sin(np.arange(7) * 0.3 + k / 1000) * np.array([1, 0.5, 1, -0.5, 1, 1, 1])
            q[3] -= 1.5
            put(m.TOPIC_COMMAND, t, m.float64_array(q + 0.01))
            if k % 2 == 0:  # 500 Hz: the sim robot
                raw = bytes(m.serialize(m.joint_state(t, names, q, np.zeros(7))))
                raw = payload_hook(n_js, raw) if payload_hook else raw
                w.write(conns[m.TOPIC_JOINT_STATES], t + 150_000, raw)
                put(m.TOPIC_EE, t, m.point_stamped(t, np.array([0.4, 0.0, 0.4])))
                n_js += 1
            if k % 40 == 0:
                put(m.TOPIC_POLICY_CMD, t, m.float64_array(q + 0.02))
            if k % 500 == 0:
                put(m.TOPIC_GOAL, t, m.point_stamped(t, np.array([0.5, 0.1, 0.3])))
            if k % 100 == 0:  # the safety node: no episode; risk "nan" without a critic
                values = {"mode": "track", "risk": "nan", "stage_envelope": k, "command_age_s": "0.01"}
                put(m.TOPIC_DIAGNOSTICS, t, m.diagnostics(t, SAFETY, 0, "track", values))
            if k % 1000 == 999:  # the sim robot, at each episode's end
                values = {"episode": k // 1000, "distance_m": "0.0300", "success": 1}
                put(m.TOPIC_DIAGNOSTICS, t, m.diagnostics(t, SIM, 0, "episode", values))
        put("/spine/estop", t0, m.T["std_msgs/msg/Bool"](data=False))
    return n_js


def test_the_stacks_bag_replays(tiny_bundle: Path, tmp_path: Path) -> None:
    n = write_stack_bag(tmp_path / "bag")
    spec = sim.make("reach").task_spec
    log = read_log(tmp_path / "bag", spec.joint_names)
    assert log.episode is not None and np.isfinite(log.episode.values).all()  # the sim robot's
    assert log.stages is None  # the safety node reports stage counts, not a per-tick bit set
    report = replay(tmp_path / "bag", tiny_bundle, tmp_path / "out")
    assert report["ticks"] == n and report["skipped"] == []
    assert report["joint_rate"]["rate_hz"] == pytest.approx(500.0)
    assert json.loads((tmp_path / "out" / "report.json").read_text())["ticks"] == n


def test_the_stacks_bag_with_a_corrupt_message_and_no_metadata(
    tiny_bundle: Path, tmp_path: Path, capsys
) -> None:
    n = write_stack_bag(tmp_path / "bag", payload_hook=flip({100: 20}))  # inside the first joint name
    (tmp_path / "bag" / "metadata.yaml").unlink()  # the recorder was killed
    rc = replay_main([str(tmp_path / "bag"), "--bundle", str(tiny_bundle), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "spine-replay: log: /joint_states: 999 messages" in out and "500.0 Hz" in out
    assert "no metadata.yaml" in out and "1 corrupt message(s) on /joint_states left out: message 100" in out
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["ticks"] == n - 1 and len(report["skipped"]) == 2


def test_a_spine_run_log_cut_short_is_salvaged_and_replayed(
    run_log: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    cut = tmp_path / "cut"
    shutil.copytree(run_log, cut)
    mcap = next(cut.glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 3])
    report = replay(cut, tiny_bundle, tmp_path / "out")
    assert 20 < report["ticks"] < 200
    assert any("no valid MCAP footer" in s for s in report["skipped"])
    err = report["command_error_rad"]
    # what it holds replays exactly (the last tick's command may lie beyond the cut)
    assert err["matched_ticks"] >= report["ticks"] - 1 and err["max"] < 1e-9
    assert "skipped: " in (tmp_path / "out" / "report.md").read_text()


def test_a_spine_run_log_without_metadata_is_replayed(
    run_log: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    bare = tmp_path / "bare"
    shutil.copytree(run_log, bare)
    (bare / "metadata.yaml").unlink()
    report = replay(bare, tiny_bundle, tmp_path / "out")
    assert report["ticks"] == 200 and report["command_error_rad"]["max"] < 1e-9
    assert any("no metadata.yaml" in s for s in report["skipped"])
