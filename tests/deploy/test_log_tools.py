"""spine-log-sim and spine-log-dataset on another arm's ROS 2 log (``tests/deploy/ros2_bags.py``):
they refuse what they cannot do and say what is missing; they honour or refuse the mapping's
``resample.rate_hz``; their consoles state the log's measured rate, gaps and skipped items."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deploy.offline.log_dataset import main as dataset_main
from deploy.offline.sysid import main as sysid_main
from sim.collect import load_dataset
from tests.deploy.ros2_bags import flip, ur_mapping, write_ur_log


@pytest.fixture(scope="module")
def ur_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_ur_log(tmp_path_factory.mktemp("ur") / "bag", "sqlite3", "humble")


def mapping_file(folder: Path, data: dict) -> Path:
    path = folder / "mapping.yaml"
    path.write_text(json.dumps(data))  # YAML reads JSON
    return path


def test_log_sim_refuses_a_log_without_commands(ur_log: Path, tmp_path: Path, capsys) -> None:
    """It used to fit the still windows ("nominal 0.0048 rad -> fitted 0.0002 rad, kp_scale 28")."""
    cfg = tmp_path / "randomization.yaml"
    args = ["--out", str(tmp_path / "out"), "--write-config", str(cfg)]
    rc = sysid_main(
        [str(ur_log), "--mapping", str(mapping_file(tmp_path, ur_mapping(commands=False))), *args]
    )
    err = capsys.readouterr().err
    assert rc == 1 and "no commands" in err and "names no command topic" in err and "command:" in err
    assert not cfg.exists() and not (tmp_path / "out" / "sysid.json").exists()


def test_log_sim_refuses_a_log_without_motion(tmp_path: Path, capsys) -> None:
    still = write_ur_log(tmp_path / "still", "mcap", "jazzy", seconds=3.0, still=True)
    rc = sysid_main(
        [str(still), "--mapping", str(mapping_file(tmp_path, ur_mapping())), "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err
    assert rc == 1 and "no motion to identify" in err and "'waist'" in err


def test_log_sim_honours_the_mappings_rate_and_says_what_it_read(
    ur_log: Path, tmp_path: Path, capsys
) -> None:
    mapping = mapping_file(tmp_path, ur_mapping(rate_hz=500.0, max_gap_s=0.05))
    args = [str(ur_log), "--mapping", str(mapping), "--out", str(tmp_path / "out"), "--horizon", "0.5"]
    rc = sysid_main([*args, "--maxfev", "4"])
    out = capsys.readouterr().out
    assert rc == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "out" / "sysid.json").read_text())
    assert report["rate_hz"] == 500.0 and report["rate_from"] == "mapping resample.rate_hz"
    assert report["windows"]["horizon_ticks"] == 250 and report["windows"]["moving"] >= 2
    assert report["log_rates"]["/joint_states"]["rate_hz"] == pytest.approx(500.0)
    assert "spine-log-sim: log: /joint_states: 2000 messages over 4.0 s at 500.0 Hz" in out
    assert "replayed at 500 Hz (mapping resample.rate_hz)" in out and "'wrist_3_joint'" in out
    rc = sysid_main([*args, "--rate", "300"])  # 1/300 s is not a whole number of 2 ms steps
    assert rc == 1 and "does not divide" in capsys.readouterr().err


def test_log_dataset_refuses_a_log_without_commands_unless_asked(
    ur_log: Path, tmp_path: Path, capsys
) -> None:
    """It used to write actions equal to the measured position, flagged only in the JSON."""
    mapping = mapping_file(tmp_path, ur_mapping(commands=False))
    rc = dataset_main([str(ur_log), "--mapping", str(mapping), "--out", str(tmp_path / "no")])
    err = capsys.readouterr().err
    assert rc == 1 and "no commands" in err and "--actions next-position" in err
    assert not (tmp_path / "no").exists()
    rc = dataset_main(
        [str(ur_log), "--mapping", str(mapping), "--out", str(tmp_path / "d"), "--actions", "next-position"]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "spine-log-dataset: actions are the next tick's measured position" in out
    assert "spine-log-dataset: log: /joint_states: 2000 messages" in out and "resampled to 25 Hz" in out
    path = tmp_path / "d" / "widowx_reach_log.npz"
    data, meta = load_dataset(path), json.loads(path.with_suffix(".json").read_text())
    assert meta["actions"].startswith("the next tick's measured position")
    np.testing.assert_allclose(data["action"], data["next_observation"][:, :5], atol=1e-9)


def test_log_dataset_takes_trajectory_commands_and_refuses_another_rate(
    ur_log: Path, tmp_path: Path, capsys
) -> None:
    rc = dataset_main(
        [str(ur_log), "--mapping", str(mapping_file(tmp_path, ur_mapping(rate_hz=500.0))), "--out", "x"]
    )
    err = capsys.readouterr().err
    assert rc == 1 and "resample.rate_hz is 500 Hz" in err and "25 Hz" in err
    rc = dataset_main(
        [str(ur_log), "--mapping", str(mapping_file(tmp_path, ur_mapping())), "--out", str(tmp_path)]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "actions are the logged commands" in out
    meta = json.loads((tmp_path / "widowx_reach_log.json").read_text())
    assert meta["action_from_log_fraction"] > 0.95 and meta["rate_hz"] == 25.0
    assert meta["log_rates"]["/scaled_joint_trajectory_controller/joint_trajectory"][
        "rate_hz"
    ] == pytest.approx(10.0)


def test_a_corrupt_message_is_reported_by_the_tools_not_a_traceback(tmp_path: Path, capsys) -> None:
    bag = write_ur_log(tmp_path / "bag", "mcap", "jazzy", payload_hook=flip({1234: 20}))
    rc = dataset_main(
        [str(bag), "--mapping", str(mapping_file(tmp_path, ur_mapping())), "--out", str(tmp_path / "d")]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "spine-log-dataset: skipped: 1 corrupt message(s) on /joint_states left out" in out
    meta = json.loads((tmp_path / "d" / "widowx_reach_log.json").read_text())
    assert meta["corrupt_messages"] == {"/joint_states": 1}
