"""Wire compatibility: what Cyclone DDS sends for ROS 2 standard messages is byte for byte
what rosbags serializes (ROS 2's CDR), and names/types follow ROS 2's DDS conventions."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from cyclonedds.domain import DomainParticipant
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic

from deploy.logs import messages as m
from ros_nodes.convert import from_idl, idl_type, to_idl
from ros_nodes.dds import _take_raw, dds_qos, dds_topic
from ros_nodes.idl import IDL_TYPES, dds_type_name
from ros_nodes.port import QoS
from ros_nodes.stack import node_env
from tests.ros_nodes.wire_publisher import wire_messages

DOMAINS = {"cdr": 91, "idl": 94}
REPO = Path(__file__).resolve().parents[2]


def test_ros2_names() -> None:
    assert dds_topic("/joint_states") == "rt/joint_states"
    assert dds_type_name(m.JOINT_STATE) == "sensor_msgs::msg::dds_::JointState_"
    assert idl_type(m.FLOAT64_ARRAY).__idl_typename__ == "std_msgs::msg::dds_::Float64MultiArray_"
    with pytest.raises(ValueError, match="absolute"):
        dds_topic("joint_states")
    with pytest.raises(KeyError, match="no DDS type for 'nav_msgs/msg/Odometry'"):
        idl_type("nav_msgs/msg/Odometry")


@pytest.mark.parametrize("msgtype", sorted(IDL_TYPES))
def test_every_type_mirrors_the_typestore(msgtype: str) -> None:
    """Field names and order of each IDL struct equal the ROS 2 message definition."""
    ros_fields = [name for name, _ in m.TYPESTORE.fielddefs[msgtype][1]]
    assert list(idl_type(msgtype).__dataclass_fields__) == ros_fields


def test_conversion_round_trip() -> None:
    for _, (msgtype, msg) in wire_messages().items():
        back = from_idl(to_idl(msg), msgtype)
        assert m.TYPESTORE.serialize_cdr(back, msgtype) == m.TYPESTORE.serialize_cdr(msg, msgtype)


@pytest.mark.parametrize("wire", sorted(DOMAINS))
def test_bytes_on_the_wire_equal_rosbags_cdr(wire: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process publishes through DdsPort (rosbags' CDR handed to Cyclone, or the IDL
    structs serialized by cyclonedds); we take the raw samples Cyclone received."""
    env = node_env(DOMAINS[wire])
    monkeypatch.setenv("CYCLONEDDS_URI", env["CYCLONEDDS_URI"])
    dp = DomainParticipant(DOMAINS[wire])
    expected = wire_messages()
    qos = QoS(reliable=True, depth=1, transient_local=True)
    readers = {
        t: DataReader(dp, Topic(dp, dds_topic(t), idl_type(ty)), qos=dds_qos(qos, False))
        for t, (ty, _) in expected.items()
    }
    pub = subprocess.Popen([sys.executable, "-m", "tests.ros_nodes.wire_publisher", wire], env=env, cwd=REPO)
    raw: dict[str, bytes] = {}
    try:
        deadline = time.monotonic() + 20
        while len(raw) < len(readers) and time.monotonic() < deadline:
            for topic, reader in readers.items():
                for data, info in _take_raw(reader._ref, 1):  # either binding's signature
                    if info.valid_data:
                        raw[topic] = bytes(data)
            time.sleep(0.05)
    finally:
        pub.kill()
        pub.wait()
    assert set(raw) == set(expected), f"received only {sorted(raw)}"
    for topic, (msgtype, msg) in expected.items():
        cdr = bytes(m.TYPESTORE.serialize_cdr(msg, msgtype))
        assert raw[topic][:4] == b"\x00\x01\x00\x00", "XCDR1 little-endian header"
        # DDS pads a sample to a multiple of 4 bytes; the message bytes themselves are identical.
        assert raw[topic][: len(cdr)] == cdr, topic
        assert raw[topic][len(cdr) :] == b"\x00" * (len(raw[topic]) - len(cdr))
        assert len(raw[topic]) == (len(cdr) + 3) // 4 * 4
        decoded = m.TYPESTORE.deserialize_cdr(raw[topic], msgtype)
        assert m.TYPESTORE.serialize_cdr(decoded, msgtype) == cdr
        sample = idl_type(msgtype).deserialize(raw[topic])  # and it decodes as the DDS type
        assert bytes(m.TYPESTORE.serialize_cdr(from_idl(sample, msgtype), msgtype)) == cdr
    js = m.TYPESTORE.deserialize_cdr(raw["/wire/joint_states"], m.JOINT_STATE)
    np.testing.assert_array_equal(js.position, np.linspace(-1.0, 1.0, 7))
