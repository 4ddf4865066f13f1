"""ROS 2 logs of another arm (a UR under ur_robot_driver, ``tests/deploy/ros2_bags.py``): both
rosbag2 storages, Humble and Jazzy QoS metadata, with and without ``metadata.yaml``; joints in
the driver's order mapped by name; JointTrajectory commands; renames for every command kind."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

import sim
from deploy.logs import messages as m
from deploy.logs.mapped import read_mapped
from deploy.logs.mapping import MappingError, mapping_from_dict
from deploy.logs.read import LogError
from deploy.logs.resample import resample
from tests.deploy.ros2_bags import (
    CMD_HZ,
    LAG_S,
    ONTO_WIDOWX,
    T0,
    TRAJ_TOPIC,
    URDF_ORDER,
    as_killed_recorder,
    offered_qos,
    target,
    trajectory,
    ur_mapping,
    write_ur_log,
)

SPEC = sim.make("widowx_reach").task_spec
LIMITS = (SPEC.joint_pos_min, SPEC.joint_pos_max)
COMBOS = [(s, d) for s in ("sqlite3", "mcap") for d in ("humble", "jazzy")]


def read(path: Path, mapping: dict):
    return read_mapped(path, mapping_from_dict(mapping), SPEC.joint_names, *LIMITS)


def check_ur_log(log) -> None:
    """The UR log read as written: joints by name, trajectory points at their time, the rate."""
    t = (log.joint_pos.stamps - T0) / 1e9
    np.testing.assert_allclose(log.joint_pos.values, target(t - LAG_S)[:, :5], atol=1e-12)
    assert log.commanded.all() and not log.velocity_estimated
    first_points = (log.command.stamps[:-1] - T0) / 1e9  # each trajectory's first point, at t + 0.1 s
    np.testing.assert_allclose(first_points, 0.1 + np.arange(len(first_points)) / CMD_HZ, atol=1e-9)
    np.testing.assert_allclose(log.command.values[:-1], target(first_points)[:, :5], atol=1e-12)
    rate = log.rates["/joint_states"]
    assert (rate.messages, rate.rate_hz, rate.max_gap_s) == (2000, pytest.approx(500.0), pytest.approx(0.002))
    assert log.rates[TRAJ_TOPIC].rate_hz == pytest.approx(10.0)
    assert any("'wrist_3_joint', which the robot does not have" in s for s in log.skipped)
    assert any("39 trajectory point(s)" in s and "replaced by a later trajectory" in s for s in log.skipped)
    assert log.corrupt == {}


@pytest.mark.parametrize(("storage", "distro"), COMBOS)
def test_ur_log_maps_by_name_with_trajectory_commands(tmp_path: Path, storage: str, distro: str) -> None:
    log = read(write_ur_log(tmp_path / "bag", storage, distro), ur_mapping())
    check_ur_log(log)
    ticks = resample(log, 25.0, 0.1)
    assert ticks.from_log[3:].all() and len(ticks) == 100


def test_trajectory_commands_follow_the_controllers_linear_setpoint(tmp_path: Path) -> None:
    """``interpolation: linear`` (the default): the setpoint joint_trajectory_controller follows
    for position-only points. Trajectory k starts at k / CMD_HZ, when the previous one's first
    point is reached, so halfway to its own first point (0.1 s later) the setpoint is the mean
    of the two targets; at the point itself it is the point."""
    log = read(write_ur_log(tmp_path / "bag", "mcap", "jazzy"), ur_mapping(interpolation="linear"))
    t = (log.command.stamps - T0) / 1e9
    assert np.all(np.diff(log.command.stamps) > 0) and np.median(np.diff(t)) == pytest.approx(1e-3)
    for k in range(1, 30):
        start = k / CMD_HZ
        mid = np.flatnonzero(np.isclose(t, start + 0.05, atol=1e-9))
        at = np.flatnonzero(np.isclose(t, start + 0.1, atol=1e-9))
        assert len(mid) == 1 and len(at) >= 1
        before, point = target(np.array([start, start + 0.1]))[:, :5]
        np.testing.assert_allclose(log.command.values[mid[0]], (before + point) / 2, atol=1e-6)
        np.testing.assert_allclose(log.command.values[at[-1]], point, atol=1e-6)


def test_unknown_interpolation_is_refused(tmp_path: Path) -> None:
    mapping = ur_mapping(interpolation="cubic")
    with pytest.raises(ValueError, match=r"command\.interpolation must be 'linear' or 'hold'"):
        mapping_from_dict(mapping)


@pytest.mark.parametrize(("storage", "distro"), COMBOS)
def test_a_killed_recorders_bag_without_metadata_reads_the_same(
    tmp_path: Path, storage: str, distro: str
) -> None:
    """rosbags matches a metadata.yaml's topics to the storage's by QoS too: rebuilt metadata
    with empty QoS read nothing from a real bag. The storage file is now read as it is."""
    bag = as_killed_recorder(write_ur_log(tmp_path / "bag", storage, distro), distro)
    if storage == "sqlite3" and distro == "humble":
        con = sqlite3.connect(next(bag.glob("*.db3")))
        assert con.execute("SELECT schema_version FROM schema").fetchone() == (3,)
        (qos,) = con.execute(
            "SELECT offered_qos_profiles FROM topics WHERE name = '/joint_states'"
        ).fetchone()
        assert "reliability: 1" in qos and "sec: 2147483647" in qos  # Humble's integer enums
        con.close()
    log = read(bag, ur_mapping())
    check_ur_log(log)
    assert any("no metadata.yaml" in s and "directly" in s for s in log.skipped)


def test_sqlite_write_ahead_log_of_a_killed_recorder_is_merged(tmp_path: Path) -> None:
    """The ``resilient`` preset writes through a WAL; a killed recorder leaves rows only there."""
    bag = as_killed_recorder(write_ur_log(tmp_path / "bag", "sqlite3", "jazzy", seconds=2.0), "jazzy")
    db = next(bag.glob("*.db3"))
    killed = tmp_path / "killed"
    killed.mkdir()
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA wal_autocheckpoint=0")
    (js_id,) = con.execute("SELECT id FROM topics WHERE name = '/joint_states'").fetchone()
    last_t, last = con.execute(
        "SELECT timestamp, data FROM messages WHERE topic_id = ? ORDER BY timestamp DESC LIMIT 1", (js_id,)
    ).fetchone()
    msg = m.TYPESTORE.deserialize_cdr(last, m.JOINT_STATE)
    for k in range(1, 101):  # 100 more joint states, only in the write-ahead log
        t = last_t + k * 2_000_000
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(t, 1_000_000_000)
        con.execute(
            "INSERT INTO messages (topic_id, timestamp, data) VALUES (?, ?, ?)",
            (js_id, t, bytes(m.TYPESTORE.serialize_cdr(msg, m.JOINT_STATE))),
        )
    con.commit()
    shutil.copyfile(db, killed / db.name)  # the files as the killed recorder left them
    shutil.copyfile(db.with_name(db.name + "-wal"), killed / (db.name + "-wal"))
    con.close()
    log = read(killed, ur_mapping())
    assert len(log.joint_pos) == 1000 + 100
    assert any("write-ahead log" in s for s in log.skipped)


def test_trajectory_points_start_at_the_header_stamp_or_on_arrival(tmp_path: Path) -> None:
    """Points at start + time_from_start; header stamp 0 starts on arrival (the recording
    time); a later trajectory replaces points due after its start; partial joint sets."""
    store = get_typestore(Stores.ROS2_JAZZY)
    value = {name: 0.1 * (k + 1) for k, name in enumerate(URDF_ORDER)}
    names = tuple(reversed(URDF_ORDER))  # any order: matched by name
    at = np.array([value[n] for n in names])
    with Writer(tmp_path / "bag", version=9, storage_plugin=StoragePlugin.MCAP) as w:
        js = w.add_connection("/joint_states", m.JOINT_STATE, typestore=store)
        cmd = w.add_connection(TRAJ_TOPIC, "trajectory_msgs/msg/JointTrajectory", typestore=store)
        for i in range(60):
            t = T0 + i * 10_000_000
            w.write(js, t, m.serialize(m.joint_state(t, URDF_ORDER, np.zeros(6), np.zeros(6))))
        a = trajectory(store.types, T0 + 100_000_000, names, [(0.1, at), (0.2, at + 0.01), (0.3, at + 0.02)])
        b = trajectory(store.types, 0, names[:2], [(0.05, np.array([0.5, 0.6]))])  # wrist_3, wrist_2
        w.write(cmd, T0 + 50_000_000, store.serialize_cdr(a, a.__msgtype__))
        w.write(cmd, T0 + 350_000_000, store.serialize_cdr(b, b.__msgtype__))  # on arrival, at 0.35 s
    log = read(tmp_path / "bag", ur_mapping())
    assert ((log.command.stamps - T0) / 1e6).tolist() == [200.0, 300.0, 400.0]  # a's 0.4 s point replaced
    robot = np.array([value[n] for n in URDF_ORDER[:5]])
    np.testing.assert_allclose(log.command.values[0], robot)
    np.testing.assert_allclose(log.command.values[1], robot + 0.01)
    # b commands wrist_3 (not the robot's) and wrist_2 (wrist_rotate); the others hold a's target
    np.testing.assert_allclose(log.command.values[2], [*(robot[:4] + 0.01), 0.6])
    assert any("1 trajectory point(s)" in s and "replaced" in s for s in log.skipped)
    assert any("2 command(s)" in s and "'wrist_3_joint'" in s for s in log.skipped)  # a and b name it


@pytest.mark.parametrize("kind", ["joint_state", "single", "array"])
def test_renames_apply_to_every_command_kind(tmp_path: Path, kind: str) -> None:
    """Command messages name the log's joints; ``joint_states.names`` renames them for all kinds."""
    store = get_typestore(Stores.ROS2_JAZZY)
    single = "acme/msg/Single"
    store.register(get_types_from_msg("string name\nfloat64 cmd\n", single))
    with Writer(tmp_path / "bag", version=9, storage_plugin=StoragePlugin.MCAP) as w:
        js = w.add_connection("/joint_states", m.JOINT_STATE, typestore=store)
        for i in range(50):
            t = T0 + i * 10_000_000
            w.write(js, t, m.serialize(m.joint_state(t, URDF_ORDER, np.full(6, 0.1), np.zeros(6))))
        t = T0 + 100_000_000
        if kind == "single":
            cmd = w.add_connection("/cmd", single, typestore=store)
            w.write(cmd, t, store.serialize_cdr(store.types[single](name="elbow_joint", cmd=0.7), single))
        elif kind == "array":
            cmd = w.add_connection("/cmd", m.FLOAT64_ARRAY, typestore=store)
            w.write(cmd, t, m.serialize(m.float64_array(np.array([0.7, -0.2]))))
        else:
            cmd = w.add_connection("/cmd", m.JOINT_STATE, typestore=store)
            msg = m.joint_state(t, ["elbow_joint", "wrist_3_joint"], np.array([0.7, 0.1]), np.zeros(0))
            w.write(cmd, t, m.serialize(msg))
    command = {"topic": "/cmd", "kind": kind}
    if kind == "array":  # entries may be the log's names (elbow_joint) or the robot's (waist)
        command |= {"value_field": "data", "joints": ["elbow_joint", "waist"]}
    log = read(tmp_path / "bag", {**ur_mapping(commands=False), "command": command})
    assert log.command.values[-1, SPEC.joint_names.index("elbow")] == pytest.approx(0.7)
    assert log.commanded.tolist() == [kind == "array", False, True, False, False]


def test_a_joint_trajectory_mapped_as_an_array_is_a_named_error(tmp_path: Path) -> None:
    """It raised an uncaught TypeError."""
    bag = write_ur_log(tmp_path / "bag", "sqlite3", "jazzy", seconds=0.5)
    command = {"topic": TRAJ_TOPIC, "kind": "array", "value_field": "points", "joints": list(ONTO_WIDOWX)}
    with pytest.raises(LogError, match=r"'points' of trajectory_msgs/msg/JointTrajectory.*kind: trajectory"):
        read(bag, {**ur_mapping(), "command": command})


def test_commands_for_no_robot_joint_are_an_error_not_a_silent_drop(tmp_path: Path) -> None:
    """Every command dropped used to end in a report of success with no commands in it."""
    with Writer(tmp_path / "bag", version=9, storage_plugin=StoragePlugin.SQLITE3) as w:
        js = w.add_connection("/joint_states", m.JOINT_STATE, typestore=m.TYPESTORE)
        cmd = w.add_connection("/gripper/command", m.JOINT_STATE, typestore=m.TYPESTORE)
        for i in range(50):
            t = T0 + i * 10_000_000
            w.write(js, t, m.serialize(m.joint_state(t, URDF_ORDER, np.full(6, 0.1), np.zeros(6))))
            if i % 10 == 0:
                w.write(
                    cmd, t, m.serialize(m.joint_state(t, ["finger_joint"], np.array([0.02]), np.zeros(0)))
                )
    mapping = {**ur_mapping(), "command": {"topic": "/gripper/command", "kind": "joint_state"}}
    with pytest.raises(
        LogError, match=r"none of the 5 messages on /gripper/command commands a joint of the robot"
    ):
        read(tmp_path / "bag", mapping)


def test_mapping_command_joints_may_not_be_ambiguous() -> None:
    swap = {"robot": "x", "joint_states": {"topic": "/j", "names": {"a": "b", "b": "a"}}}
    with pytest.raises(MappingError, match="'a' is both the robot joint 'a'"):
        mapping_from_dict({**swap, "command": {"topic": "/c", "kind": "array", "joints": ["a", "b"]}})
    with pytest.raises(MappingError, match=r"named more than once"):
        mapping_from_dict(
            {
                "robot": "x",
                "joint_states": {"topic": "/j"},
                "command": {"topic": "/c", "kind": "array", "joints": ["a", "a"]},
            }
        )
    mapping = mapping_from_dict({**ur_mapping(), "command": {"topic": "/c", "kind": "trajectory"}})
    assert (
        mapping.robot_joint("shoulder_pan_joint") == "waist"
        and mapping.robot_joint("wrist_3_joint") == "wrist_3_joint"
    )


def test_qos_profiles_differ_between_distros_as_ros2_bag_writes_them() -> None:
    assert offered_qos("humble").deadline.sec == 2147483647
    assert offered_qos("jazzy").deadline.sec == 9223372036
