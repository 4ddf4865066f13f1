"""Corrupt and damaged logs: one flipped byte in one message skips that message (counted and
reported), a damaged stretch of the storage is read past; nothing aborts, nothing is silent."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer

import sim
from deploy.logs import messages as m
from deploy.logs.corrupt import isolated_out_of_range, stamp_spikes, value_spikes
from deploy.logs.mapped import read_mapped
from deploy.logs.mapping import load_mapping, mapping_from_dict
from deploy.logs.resample import resample
from deploy.logs.salvage import ROS1_MAGIC, _ros1_fields
from tests.deploy.ros2_bags import PUBLISHED_ORDER, T0, cdr_offsets, flip, ur_mapping, write_ur_log

ROOT = Path(__file__).parents[2]
GOLDEN = ROOT / "tests" / "artifacts" / "widowx_golden.bag"
SPEC = sim.make("widowx_reach").task_spec
LIMITS = (SPEC.joint_pos_min, SPEC.joint_pos_max)
FIELDS = {  # field flipped -> what the note says
    "names_count": "does not decode",
    "first_name": "does not decode",
    "position_0_high": "joint 'elbow' reads",  # the driver publishes elbow_joint first
    "stamp_sec_high": "off its neighbours' stamps",
}


def read(path: Path, mapping: dict | None = None):
    return read_mapped(path, mapping_from_dict(mapping or ur_mapping()), SPEC.joint_names, *LIMITS)


def _offsets() -> dict[str, int]:
    raw = m.serialize(m.joint_state(T0, PUBLISHED_ORDER, np.zeros(6), np.zeros(6)))  # the UR log's layout
    return cdr_offsets(bytes(raw))


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
@pytest.mark.parametrize("field", sorted(FIELDS))
def test_one_flipped_byte_in_one_ros2_message_skips_that_message(
    tmp_path: Path, storage: str, field: str
) -> None:
    bag = write_ur_log(tmp_path / "bag", storage, "jazzy", payload_hook=flip({700: _offsets()[field]}))
    log = read(bag)
    assert len(log.joint_pos) == 1999 and log.corrupt == {"/joint_states": 1}
    (note,) = [s for s in log.skipped if "corrupt" in s]
    assert (
        note.startswith("1 corrupt message(s) on /joint_states left out: message 700")
        and FIELDS[field] in note
    )
    assert np.ptp(log.joint_pos.values, axis=0).max() < 2.0  # no value from the corrupt message
    ticks = resample(log, 25.0, 0.1)  # a stamp years away would have made this the whole span
    assert len(ticks) == 100 and ticks.valid.all()


def test_a_ros1_message_with_a_flipped_byte_is_skipped(tmp_path: Path) -> None:
    """The golden WidowX log (ROS 1, a copy): flip bytes in one joint state's payload."""
    data = GOLDEN.read_bytes()
    payloads = _ros1_payloads(data, "/wx200/joint_states")
    start, _ = payloads[300]
    mapping = load_mapping(ROOT / "configs" / "replay" / "widowx200.yaml")
    for offset, said in ((16, "does not decode"), (4 + 3, "off its neighbours' stamps")):
        broken = bytearray(data)
        broken[start + offset] ^= 0xFF
        (tmp_path / "x.bag").write_bytes(bytes(broken))
        log = read_mapped(tmp_path / "x.bag", mapping, SPEC.joint_names, *LIMITS)
        assert len(log.joint_pos) == 580 and log.corrupt == {"/wx200/joint_states": 1}
        assert any("message 300" in s and said in s for s in log.skipped)


def test_a_damaged_ros1_record_is_read_past(tmp_path: Path) -> None:
    """A record header overwritten inside a chunk: rosbags stops there; reading resumes."""
    data = GOLDEN.read_bytes()
    broken = bytearray(data)
    record = _ros1_record_starts(data, "/wx200/joint_states")[300]
    broken[record + 4] ^= 0xFF  # the first header field's length
    (tmp_path / "x.bag").write_bytes(bytes(broken))
    mapping = load_mapping(ROOT / "configs" / "replay" / "widowx200.yaml")
    log = read_mapped(tmp_path / "x.bag", mapping, SPEC.joint_names, *LIMITS)
    assert 575 <= len(log.joint_pos) < 581
    assert any("read error" in s and "reading resumed" in s for s in log.skipped)
    assert any("lost to read errors" in s for s in log.skipped)


def test_a_damaged_mcap_chunk_is_read_past(tmp_path: Path) -> None:
    """Three chunks (rosbags closes one at 1 MiB); one byte of the middle one's checksum flipped
    (ros2 bag writes chunk CRCs; the whole chunk then fails to read)."""
    bag = write_ur_log(tmp_path / "bag", "mcap", "jazzy", seconds=24.0, commands=False)
    mcap = next(bag.glob("*.mcap"))
    data = bytearray(mcap.read_bytes())
    chunks = [i for i in range(len(data)) if data[i] == 0x06 and _is_chunk(data, i)]
    assert len(chunks) >= 3
    data[chunks[1] + 9 + 24] ^= 0xFF  # uncompressed_crc of the second chunk (0: none) -> a wrong one
    mcap.write_bytes(bytes(data))
    log = read(bag, ur_mapping(commands=False))
    assert 12_000 - 5000 < len(log.joint_pos) < 12_000
    assert log.joint_pos.stamps[-1] == T0 + 11_999 * 2_000_000  # what comes after the damage is read
    assert any("read error" in s and "checksum mismatch" in s for s in log.skipped)


def test_spikes_and_isolated_values_are_corrupt_but_wraps_runs_and_gaps_are_not() -> None:
    t = np.arange(50) * 10_000_000
    gap = t.copy()
    gap[25:] += 5_000_000_000  # a real 5 s gap
    spike = t.copy()
    spike[10] += 3_000_000_000
    assert not stamp_spikes(gap).any() and np.flatnonzero(stamp_spikes(spike)).tolist() == [10]
    q = np.tile(np.linspace(0, 0.5, 50)[:, None], (1, 2))
    q[20, 1] = 1.2e5
    q[30, 0] = np.nan
    assert np.flatnonzero(value_spikes(q)).tolist() == [20, 30]
    wrap = np.array([[3.13], [3.14], [-3.14], [3.14], [3.13]])  # a continuous joint at +-pi
    assert not value_spikes(wrap).any()
    degrees = np.array([1.0, 2.0, 90.0, 91.0, 92.0, 3.0])
    assert not isolated_out_of_range(degrees, 6.4).any()  # a run: the unit check's business
    assert isolated_out_of_range(np.array([0.1, 100.5, 0.2]), 6.4).tolist() == [False, True, False]


def test_a_corrupt_command_value_is_skipped_not_read_as_degrees(tmp_path: Path) -> None:
    with Writer(tmp_path / "bag", version=9, storage_plugin=StoragePlugin.MCAP) as w:
        js = w.add_connection("/joint_states", m.JOINT_STATE, typestore=m.TYPESTORE)
        cmd = w.add_connection("/cmd", m.FLOAT64_ARRAY, typestore=m.TYPESTORE)
        names = [*SPEC.joint_names]
        for i in range(100):
            t = T0 + i * 10_000_000
            w.write(js, t, m.serialize(m.joint_state(t, names, np.full(5, 0.1), np.zeros(5))))
            if i % 10 == 0:
                value = 1.234e5 if i == 50 else 0.01 * i
                w.write(cmd, t, m.serialize(m.float64_array(np.array([value]))))
    mapping = {
        "robot": "widowx_reach",
        "joint_states": {"topic": "/joint_states"},
        "command": {"topic": "/cmd", "kind": "array", "value_field": "data", "joints": ["waist"]},
    }
    log = read(tmp_path / "bag", mapping)
    assert log.corrupt == {"/cmd": 1} and np.nanmax(log.command.values[:, 0]) == pytest.approx(0.9)
    assert any("message 5: command 1.234e+05 for joint 'waist'" in s for s in log.skipped)


def _is_chunk(data: bytearray, i: int) -> bool:
    """An MCAP chunk record at ``i``: opcode 0x06, a length, and compression '' after its fields."""
    if i + 9 + 36 > len(data):
        return False
    length = struct.unpack_from("<Q", data, i + 1)[0]
    name_len = struct.unpack_from("<I", data, i + 9 + 28)[0]
    return 0 < length < len(data) and name_len == 0 and data[i + 9 + 16 : i + 9 + 24] != bytes(8)


def _ros1_records(data: bytes, topic: str) -> list[tuple[int, int, int]]:
    """(record start, payload start, payload length) of ``topic``'s message records, in order."""
    conn_ids, out = set(), []
    pos = len(ROS1_MAGIC)
    while pos + 4 <= len(data):
        hlen = struct.unpack_from("<I", data, pos)[0]
        header = _ros1_fields(data[pos + 4 : pos + 4 + hlen])
        dlen = struct.unpack_from("<I", data, pos + 4 + hlen)[0]
        body = pos + 8 + hlen
        if header.get("op") == b"\x05" and header.get("compression", b"none") == b"none":
            inner = body
            while inner < body + dlen:
                h2len = struct.unpack_from("<I", data, inner)[0]
                h2 = _ros1_fields(data[inner + 4 : inner + 4 + h2len])
                d2len = struct.unpack_from("<I", data, inner + 4 + h2len)[0]
                if (
                    h2.get("op") == b"\x07"
                    and _ros1_fields(data[inner + 8 + h2len : inner + 8 + h2len + d2len]).get("topic")
                    == topic.encode()
                ):
                    conn_ids.add(h2["conn"])
                if h2.get("op") == b"\x02" and h2.get("conn") in conn_ids:
                    out.append((inner, inner + 8 + h2len, d2len))
                inner += 8 + h2len + d2len
        pos = body + dlen
    return out


def _ros1_payloads(data: bytes, topic: str) -> list[tuple[int, int]]:
    return [(start, length) for _, start, length in _ros1_records(data, topic)]


def _ros1_record_starts(data: bytes, topic: str) -> list[int]:
    return [record for record, _, _ in _ros1_records(data, topic)]


def test_golden_log_has_no_corrupt_message() -> None:
    mapping = load_mapping(ROOT / "configs" / "replay" / "widowx200.yaml")
    log = read_mapped(GOLDEN, mapping, SPEC.joint_names, *LIMITS)
    assert log.corrupt == {} and len(_ros1_payloads(GOLDEN.read_bytes(), "/wx200/joint_states")) == 581
