"""Reading foreign logs through a topic mapping: both rosbag2 storages, ROS 1 with a custom
message type decoded from the bag itself, stamps, units, missing topics and joints, partial bags."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag1 import Writer as Ros1Writer
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from deploy.logs import messages as m
from deploy.logs.mapped import read_mapped
from deploy.logs.mapping import MappingError, load_mapping, mapping_from_dict
from deploy.logs.read import LogError
from deploy.logs.resample import resample

JOINTS = ["j1", "j2", "j3"]
LIMITS = ([-math.pi] * 3, [math.pi] * 3)
STORAGES = [StoragePlugin.SQLITE3, StoragePlugin.MCAP]
MAPPING_JS = {"robot": "x", "joint_states": {"topic": "/arm/joint_states", "names": {"j1": "shoulder_pan"}}}
MAPPING = {
    "robot": "widowx_reach",
    "joint_states": {"topic": "/arm/joint_states", "names": {"j1": "shoulder_pan"}},
    "command": {"topic": "/arm/command", "kind": "array", "value_field": "data", "joints": ["j3", "j1"]},
}


def write_bag(
    path: Path,
    storage: StoragePlugin,
    n: int = 50,
    scale: float = 1.0,
    stamps: list[int] | None = None,
    names: tuple[str, ...] = ("j3", "gripper", "j2", "shoulder_pan"),
) -> None:
    """100 Hz JointState in a shuffled name order (+ a gripper) and a 2-entry command at 20 Hz."""
    with Writer(path, version=9, storage_plugin=storage) as w:
        js = w.add_connection("/arm/joint_states", m.JOINT_STATE, typestore=m.TYPESTORE)
        cmd = w.add_connection("/arm/command", m.FLOAT64_ARRAY, typestore=m.TYPESTORE)
        for i in range(n):
            t = 1_000_000_000 + i * 10_000_000
            stamp = stamps[i] if stamps else t
            value = {"j3": 0.3, "gripper": 9.0, "j2": 0.2, "shoulder_pan": 0.01 * i}
            pos = np.array([value[k] for k in names]) * scale
            w.write(js, t, m.serialize(m.joint_state(stamp, names, pos, np.zeros(0))))
            if i % 5 == 0:
                w.write(cmd, t, m.serialize(m.float64_array(np.array([-0.5, 0.01 * i + 0.1]))))


@pytest.mark.parametrize("storage", STORAGES)
def test_joint_states_are_matched_by_name_and_commands_by_declared_joints(tmp_path: Path, storage) -> None:
    write_bag(tmp_path / "bag", storage)
    log = read_mapped(tmp_path / "bag", mapping_from_dict(MAPPING), JOINTS, *LIMITS)
    assert log.joint_pos.values.shape == (50, 3)
    np.testing.assert_allclose(log.joint_pos.values[7], [0.07, 0.2, 0.3])  # j1 is "shoulder_pan"
    assert log.velocity_estimated
    np.testing.assert_allclose(log.joint_vel.values[10:40, 0], 1.0, atol=1e-6)  # 0.01 rad per 10 ms
    assert log.commanded.tolist() == [True, False, True]
    np.testing.assert_allclose(log.command.values[2], [0.2, np.nan, -0.5])
    ticks = resample(log, 20.0, 0.05)
    assert len(ticks) == 10  # 0.49 s of log at 20 Hz
    np.testing.assert_allclose(ticks.joint_pos[3, 0], 0.15)  # held state at t = 0.15 s
    np.testing.assert_allclose(ticks.command[3], [0.25, 0.2, -0.5])  # j2: never commanded -> measured
    assert ticks.from_log[3].tolist() == [True, False, True]


def test_ros1_bag_custom_type_decodes_from_the_definition_stored_in_it(tmp_path: Path) -> None:
    writer_store = get_typestore(Stores.ROS1_NOETIC)
    single = "acme_sdk/msg/Single"
    writer_store.register(get_types_from_msg("string joint\nfloat32 target\n", single))
    T = writer_store.types
    with Ros1Writer(tmp_path / "x.bag") as w:
        js = w.add_connection("/js", "sensor_msgs/msg/JointState", typestore=writer_store)
        cmd = w.add_connection("/cmd", single, typestore=writer_store)
        for i in range(20):
            t = 2_000_000_000 + i * 10_000_000
            sec, nsec = divmod(t, 10**9)
            header = T["std_msgs/msg/Header"](
                seq=i, stamp=T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec), frame_id=""
            )
            msg = T["sensor_msgs/msg/JointState"](
                header=header,
                name=JOINTS,
                position=np.array([0.1, 0.2, 0.3]),
                velocity=np.zeros(3),
                effort=np.zeros(0),
            )
            w.write(js, t, writer_store.serialize_ros1(msg, msg.__msgtype__))
            w.write(
                cmd, t, writer_store.serialize_ros1(T[single](joint="j2", target=np.float32(0.25)), single)
            )
    assert single not in get_typestore(Stores.ROS1_NOETIC).types  # the reader has only the bag to go on
    mapping = mapping_from_dict(
        {
            "robot": "x",
            "joint_states": {"topic": "/js"},
            "command": {"topic": "/cmd", "kind": "single", "name_field": "joint", "value_field": "target"},
        }
    )
    log = read_mapped(tmp_path / "x.bag", mapping, JOINTS, *LIMITS)
    assert log.topics["/cmd"] == single
    assert log.commanded.tolist() == [False, True, False]
    assert log.command.values[-1, 1] == pytest.approx(0.25)


@pytest.mark.parametrize("storage", STORAGES)
def test_non_monotonic_and_duplicated_stamps_are_reported(tmp_path: Path, storage) -> None:
    stamps = [1_000_000_000 + i * 10_000_000 for i in range(50)]
    stamps[20] = stamps[19]  # duplicated
    stamps[30] = stamps[28]  # goes back
    write_bag(tmp_path / "bag", storage, stamps=stamps)
    log = read_mapped(tmp_path / "bag", mapping_from_dict(MAPPING), JOINTS, *LIMITS)
    issues = log.stamps["/arm/joint_states"]
    assert (issues.duplicated, issues.non_monotonic) == (1, 1)
    assert issues.first_bad_s == [0.19, 0.28]
    assert np.all(np.diff(log.joint_pos.stamps) >= 0)  # sorted for use, after being counted
    assert len(log.joint_pos) == 50  # nothing dropped


def test_gap_tolerance_marks_ticks_and_splits_segments(tmp_path: Path) -> None:
    stamps = [1_000_000_000 + i * 10_000_000 + (300_000_000 if i >= 25 else 0) for i in range(50)]
    write_bag(tmp_path / "bag", StoragePlugin.MCAP, stamps=stamps)
    log = read_mapped(tmp_path / "bag", mapping_from_dict(MAPPING), JOINTS, *LIMITS)
    ticks = resample(log, 50.0, 0.05)
    assert ticks.gaps() == [pytest.approx((0.3, 0.54))]
    assert set(ticks.segment.tolist()) == {-1, 0, 1}
    episodes = ticks.episodes(10)
    assert np.all(episodes[~ticks.valid] == -1)
    assert episodes.max() == 3  # 13 ticks -> 10 + 3, 27 ticks -> 10 + 10 + 7 (the 7 kept)
    wide = resample(log, 50.0, 0.5)
    assert wide.gaps() == [] and np.all(wide.valid)


@pytest.mark.parametrize("storage", STORAGES)
def test_degrees_are_a_named_error_and_a_declared_unit_converts(tmp_path: Path, storage) -> None:
    write_bag(tmp_path / "bag", storage, scale=180 / math.pi * 10)  # j1 reaches 0.49 rad -> 280.7
    with pytest.raises(LogError, match=r"joint 'j1'.*looks like degrees.*position_unit: deg"):
        read_mapped(tmp_path / "bag", mapping_from_dict(MAPPING), JOINTS, *LIMITS)
    write_bag(tmp_path / "deg", storage, scale=180 / math.pi)
    as_deg = {**MAPPING, "joint_states": {**MAPPING["joint_states"], "position_unit": "deg"}}
    log = read_mapped(tmp_path / "deg", mapping_from_dict(as_deg), JOINTS, *LIMITS)
    np.testing.assert_allclose(log.joint_pos.values[0], [0.0, 0.2, 0.3])


def test_small_excursions_beyond_limits_are_reported_not_raised(tmp_path: Path) -> None:
    write_bag(tmp_path / "bag", StoragePlugin.MCAP)
    log = read_mapped(tmp_path / "bag", mapping_from_dict(MAPPING), JOINTS, [-1, -1, -1], [1, 1, 0.25])
    assert log.limit_excursions == {"j3": {"samples": 50, "worst_rad": pytest.approx(0.05)}}


@pytest.mark.parametrize("storage", STORAGES)
def test_missing_topic_and_missing_joint_are_named(tmp_path: Path, storage) -> None:
    write_bag(tmp_path / "bag", storage, names=("j3", "j2", "gripper"))
    with pytest.raises(LogError, match=r"joint\(s\) \['shoulder_pan'\] missing from /arm/joint_states"):
        read_mapped(tmp_path / "bag", mapping_from_dict(MAPPING), JOINTS, *LIMITS)
    other = {**MAPPING, "command": {**MAPPING["command"], "topic": "/arm/nope"}}
    write_bag(tmp_path / "ok", storage)
    with pytest.raises(LogError, match="no command topic /arm/nope"):
        read_mapped(tmp_path / "ok", mapping_from_dict(other), JOINTS, *LIMITS)
    strict = {**MAPPING, "command": {**MAPPING["command"], "uncommanded": "error"}}
    with pytest.raises(LogError, match=r"never commands joint\(s\) \['j2'\]"):
        read_mapped(tmp_path / "ok", mapping_from_dict(strict), JOINTS, *LIMITS)


def test_truncated_mcap_replays_what_it_holds_and_says_what_was_skipped(tmp_path: Path) -> None:
    write_bag(tmp_path / "bag", StoragePlugin.MCAP, n=400)
    mcap = next((tmp_path / "bag").glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    log = read_mapped(tmp_path / "bag", mapping_from_dict(MAPPING), JOINTS, *LIMITS)
    assert 100 < len(log.joint_pos) < 400
    np.testing.assert_allclose(log.joint_pos.values[:, 0], 0.01 * np.arange(len(log.joint_pos)))
    assert any("no valid MCAP footer" in s and "of the 480" in s for s in log.skipped)  # 400 + 80


def test_truncated_ros1_bag_replays_what_it_holds_and_says_what_was_skipped(tmp_path: Path) -> None:
    store = get_typestore(Stores.ROS1_NOETIC)
    T = store.types
    w = Ros1Writer(tmp_path / "full.bag")
    w.set_compression(Ros1Writer.CompressionFormat.BZ2)  # a cut compressed chunk is lost whole
    w.chunk_threshold = 20_000  # several chunks
    with w:
        js = w.add_connection("/arm/joint_states", "sensor_msgs/msg/JointState", typestore=store)
        for i in range(1000):
            t = 3_000_000_000 + i * 10_000_000
            sec, nsec = divmod(t, 10**9)
            stamp = T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec)
            msg = T["sensor_msgs/msg/JointState"](
                header=T["std_msgs/msg/Header"](seq=i, stamp=stamp, frame_id=""),
                name=["j3", "j2", "shoulder_pan"],
                position=np.array([0.3, 0.2, 0.001 * i]),
                velocity=np.zeros(0),
                effort=np.zeros(0),
            )
            w.write(js, t, store.serialize_ros1(msg, msg.__msgtype__))
    from deploy.logs.salvage import ROS1_MAGIC, _ros1_records

    data = (tmp_path / "full.bag").read_bytes()
    chunks = [end for op, *_, end in _ros1_records(data, len(ROS1_MAGIC)) if op == 0x05]
    cut = chunks[len(chunks) // 2] - 50  # inside a compressed chunk: a recorder killed mid-write
    (tmp_path / "cut.bag.active").write_bytes(data[:cut])
    log = read_mapped(tmp_path / "cut.bag.active", mapping_from_dict(MAPPING_JS), JOINTS, *LIMITS)
    assert 200 < len(log.joint_pos) < 1000
    np.testing.assert_allclose(log.joint_pos.values[:, 0], 0.001 * np.arange(len(log.joint_pos)))
    note = "ROS 1 bag without a readable index"
    assert any(note in s and "compressed chunk of messages, skipped" in s for s in log.skipped)


@pytest.mark.parametrize("storage", STORAGES)
def test_bag_without_metadata_yaml_is_read(tmp_path: Path, storage) -> None:
    write_bag(tmp_path / "bag", storage)
    (tmp_path / "bag" / "metadata.yaml").unlink()  # the recorder was killed before closing
    log = read_mapped(tmp_path / "bag", mapping_from_dict(MAPPING), JOINTS, *LIMITS)
    assert len(log.joint_pos) == 50 and log.commanded.tolist() == [True, False, True]
    assert any("metadata.yaml" in s or "MCAP" in s for s in log.skipped)


def test_unreadable_logs_are_named(tmp_path: Path) -> None:
    write_bag(tmp_path / "bag", StoragePlugin.SQLITE3)
    db = next((tmp_path / "bag").glob("*.db3"))
    db.write_bytes(db.read_bytes()[:1000])
    with pytest.raises(LogError, match=str(tmp_path / "bag")):
        read_mapped(tmp_path / "bag", mapping_from_dict(MAPPING), JOINTS, *LIMITS)
    (tmp_path / "x.bag").write_bytes(b"#ROSBAG V2.0\n" + bytes(100))
    with pytest.raises(LogError, match="no complete message to salvage"):
        read_mapped(tmp_path / "x.bag", mapping_from_dict(MAPPING), JOINTS, *LIMITS)
    with pytest.raises(LogError, match="no such file"):
        read_mapped(tmp_path / "nope", mapping_from_dict(MAPPING), JOINTS, *LIMITS)


def test_mapping_errors_name_the_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "m.yaml"
    bad.write_text("robot: x\njoint_states: {topic: /j, unit: rad}\n")
    with pytest.raises(MappingError, match=r"m.yaml: joint_states: unknown key\(s\) \['unit'\]"):
        load_mapping(bad)
    with pytest.raises(MappingError, match=r"command\.kind 'arr'"):
        mapping_from_dict(
            {"robot": "x", "joint_states": {"topic": "/j"}, "command": {"topic": "/c", "kind": "arr"}}
        )
    with pytest.raises(MappingError, match="unit 'furlong'"):
        mapping_from_dict({"robot": "x", "joint_states": {"topic": "/j", "position_unit": "furlong"}})
    shipped = load_mapping(Path(__file__).parents[2] / "configs" / "replay" / "widowx200.yaml")
    assert shipped.command is not None and shipped.command.kind == "single"


@pytest.mark.parametrize("ros1", [False, True])
def test_batch_decoding_equals_rosbags_for_mixed_layouts(ros1: bool) -> None:
    from deploy.logs.joint_state_batch import decode

    store = get_typestore(Stores.ROS1_NOETIC) if ros1 else m.TYPESTORE
    T = store.types
    raws, msgs = [], []
    for i in range(60):
        names = ["a", "b", "c"] if i % 20 < 10 else ["c", "a", "b", "extra_joint"]  # the order changes
        frame = "" if i % 3 else "base_link"  # and the byte length with it
        vel = np.arange(len(names)) * 0.5 if i % 4 else np.zeros(0)  # velocity sometimes absent
        kw = {"seq": i} if ros1 else {}
        stamp = T["builtin_interfaces/msg/Time"](sec=10 + i, nanosec=7 * i)
        msg = T["sensor_msgs/msg/JointState"](
            header=T["std_msgs/msg/Header"](**kw, stamp=stamp, frame_id=frame),
            name=names,
            position=np.arange(len(names)) + 0.001 * i,
            velocity=vel,
            effort=np.zeros(0),
        )
        msgs.append(msg)
        raws.append(
            store.serialize_ros1(msg, m.JOINT_STATE) if ros1 else store.serialize_cdr(msg, m.JOINT_STATE)
        )
    deser = (
        (lambda r: store.deserialize_ros1(r, m.JOINT_STATE))
        if ros1
        else (lambda r: store.deserialize_cdr(r, m.JOINT_STATE))
    )
    dec = decode(raws, ros1, deser)
    assert dec.fallback == 0 and len(dec.groups) >= 4
    seen = 0
    for idx, names, pos, vel in dec.groups:
        for row, i in enumerate(idx):
            assert names == msgs[i].name
            np.testing.assert_array_equal(pos[row], msgs[i].position)
            if vel is None:
                assert len(msgs[i].velocity) == 0
            else:
                np.testing.assert_array_equal(vel[row], msgs[i].velocity)
            seen += 1
    assert seen == 60
    np.testing.assert_array_equal(dec.stamps, [(10 + i) * 10**9 + 7 * i for i in range(60)])
