"""Spine's endpoints against ROS 2's standard peers over real Cyclone DDS (loopback).

The peers' endpoints are built here with raw cyclonedds ``Qos`` objects written from ROS 2's
sources, sharing nothing with Spine's mapping (``ros_nodes.dds.dds_qos``):

- profiles: ros2/rmw, rmw/include/rmw/qos_profiles.h (``rmw_qos_profile_system_default``:
  every policy SYSTEM_DEFAULT, depth 0; ``rmw_qos_profile_default``: reliable, volatile, keep
  last 10; ``rmw_qos_profile_sensor_data``: best effort, volatile, keep last 5);
- how rmw_cyclonedds turns them into DDS QoS: ros2/rmw_cyclonedds,
  rmw_cyclonedds_cpp/src/rmw_node.cpp::create_readwrite_qos (SYSTEM_DEFAULT reliability ->
  RELIABLE with infinite max blocking time, SYSTEM_DEFAULT durability -> VOLATILE, depth 0 ->
  KEEP_LAST 1, liveliness AUTOMATIC with an infinite lease, no autodispose) and
  rmw_cyclonedds_cpp/src/serdata.cpp::create_sertype (XCDR1 only);
- who uses which: ros-controls/ros2_controllers forward_command_controller/src/
  forward_controllers_base.cpp (``~/commands``, ``rclcpp::SystemDefaultsQoS()``),
  joint_trajectory_controller/src/joint_trajectory_controller.cpp (``~/joint_trajectory``,
  ``SystemDefaultsQoS()``), joint_state_broadcaster/src/joint_state_broadcaster.cpp
  (``joint_states`` publisher, ``SystemDefaultsQoS()``); ros/robot_state_publisher
  src/robot_state_publisher.cpp (``joint_states`` subscription, ``rclcpp::SensorDataQoS()``);
  ros2/ros2cli ros2topic/ros2topic/verb/pub.py (``--qos-profile`` default ``default``).

The peers run in another process (``run_peers``), so discovery, matching and the QoS reports
go through Cyclone's network path on 127.0.0.1, as with a ROS 2 machine.
"""

from __future__ import annotations

import ctypes as ct
import gc
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cyclonedds._clayer import ddspy_write
from cyclonedds.core import Policy, Qos
from cyclonedds.domain import DomainParticipant
from cyclonedds.internal import DDS, dds_c_t
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic
from cyclonedds.util import duration

from deploy.logs import messages as m
from ros_nodes.dds import DdsPort
from ros_nodes.idl import IDL_TYPES
from ros_nodes.inprocess import InProcessBus
from ros_nodes.params import ParameterStore
from ros_nodes.port import DEFAULT, LATCHED, SENSOR_DATA, SYSTEM_DEFAULT, QoS, parse_qos
from ros_nodes.stack import loopback_uri, node_env
from ros_nodes.topics import BOOL, JOINT_TRAJECTORY, bool_msg
from tests.ros_nodes.domains import fresh_domain

REPO = Path(__file__).resolve().parents[2]
INFINITE = duration(infinite=True)

# --- ROS 2's profiles as rmw_cyclonedds builds them (the peers' side) ----------------------
# name: (reliable, transient_local, KEEP_LAST depth after rmw_cyclonedds' "depth 0 -> 1")
RMW_PROFILES = {
    "SystemDefaultsQoS": (True, False, 1),  # rmw_qos_profile_system_default: all SYSTEM_DEFAULT, depth 0
    "QoS(10) / default": (True, False, 10),  # rmw_qos_profile_default
    "SensorDataQoS": (False, False, 5),  # rmw_qos_profile_sensor_data
}


def rmw_cyclonedds_qos(profile: str) -> Qos:
    """The DDS QoS rmw_cyclonedds' create_readwrite_qos makes of a ROS 2 profile."""
    reliable, transient_local, depth = RMW_PROFILES[profile]
    policies: list[Any] = [
        Policy.History.KeepLast(depth),
        Policy.Reliability.Reliable(max_blocking_time=INFINITE)
        if reliable
        else Policy.Reliability.BestEffort,
        Policy.Durability.TransientLocal if transient_local else Policy.Durability.Volatile,
        Policy.Liveliness.Automatic(lease_duration=INFINITE),
        Policy.WriterDataLifecycle(autodispose=False),
        Policy.DataRepresentation(use_cdrv0_representation=True),
    ]
    return Qos(*policies)


# topic -> (type, peer's side, peer's profile, who the peer is)
PEERS: dict[str, tuple[str, str, str, str]] = {
    # Spine reads these (documented pairings)
    "/joint_states": (m.JOINT_STATE, "writer", "SystemDefaultsQoS", "joint_state_broadcaster"),
    "/spine/estop": (BOOL, "writer", "QoS(10) / default", "ros2 topic pub"),
    "/spine/goal": (m.POINT_STAMPED, "writer", "QoS(10) / default", "ros2 topic pub"),
    # Spine writes these (documented pairings)
    "/forward_position_controller/commands": (m.FLOAT64_ARRAY, "reader", "SystemDefaultsQoS", "fcc"),
    "/joint_trajectory_controller/joint_trajectory": (JOINT_TRAJECTORY, "reader", "SystemDefaultsQoS", "jtc"),
    "/rsp/joint_states": (m.JOINT_STATE, "reader", "SensorDataQoS", "robot_state_publisher"),
    # wrong pairings, reported
    "/wrong/commands": (m.FLOAT64_ARRAY, "reader", "SystemDefaultsQoS", "fcc"),
    "/wrong/estop": (BOOL, "writer", "QoS(10) / default", "ros2 topic pub"),
}
PERIOD_S = 1e-3  # the safety node's tick at 1 kHz
# topic -> (Spine's side, the profile Spine uses there by default)
SPINE: dict[str, tuple[str, QoS]] = {
    "/joint_states": ("subscription", SENSOR_DATA),
    "/spine/estop": ("subscription", DEFAULT),
    "/spine/goal": ("subscription", DEFAULT),
    "/forward_position_controller/commands": ("publisher", QoS(True, 0, deadline_s=3 * PERIOD_S)),
    "/joint_trajectory_controller/joint_trajectory": ("publisher", QoS(True, 0, deadline_s=3 * PERIOD_S)),
    "/rsp/joint_states": ("publisher", SYSTEM_DEFAULT),
    "/wrong/commands": (
        "publisher",
        QoS(reliable=False, depth=1, deadline_s=3 * PERIOD_S),
    ),  # the old default
    "/wrong/estop": ("subscription", LATCHED),  # the old e-stop reader
}
WRONG = {"/wrong/commands": ("publisher", "RELIABILITY"), "/wrong/estop": ("subscription", "DURABILITY")}


def sample(msgtype: str) -> Any:
    """A small message of each type (rosbags)."""
    if msgtype == BOOL:
        return bool_msg(True)
    if msgtype == m.JOINT_STATE:
        return m.joint_state(1, ["j1", "j2"], np.array([0.1, 0.2]), np.zeros(2))
    if msgtype == m.POINT_STAMPED:
        return m.point_stamped(1, np.array([0.4, 0.0, 0.3]))
    if msgtype == m.FLOAT64_ARRAY:
        return m.float64_array(np.arange(7.0))
    T = m.TYPESTORE.types
    point = T["trajectory_msgs/msg/JointTrajectoryPoint"](
        positions=np.arange(2.0),
        velocities=np.zeros(0),
        accelerations=np.zeros(0),
        effort=np.zeros(0),
        time_from_start=T["builtin_interfaces/msg/Duration"](sec=0, nanosec=2_000_000),
    )
    return T[JOINT_TRAJECTORY](header=m.header(1), joint_names=["j1", "j2"], points=[point])


def run_peers(domain_id: int, seconds: float) -> None:
    """The ROS 2 side (run in its own process): every peer of ``PEERS`` with its profile;
    writers publish every 20 ms, readers print ``RECV <topic>`` once they get a sample."""
    dp = DomainParticipant(domain_id)
    writers, readers = {}, {}
    for topic, (msgtype, side, profile, _) in PEERS.items():
        t = Topic(dp, "rt" + topic, IDL_TYPES[msgtype])
        if side == "writer":
            writers[topic] = (
                DataWriter(dp, t, qos=rmw_cyclonedds_qos(profile)),
                m.serialize(sample(msgtype)),
            )
        else:
            readers[topic] = DataReader(dp, t, qos=rmw_cyclonedds_qos(profile))
    received: set[str] = set()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for writer, data in writers.values():
            ddspy_write(writer._ref, bytes(data) + b"\0" * (-len(data) % 4))
        for topic, reader in readers.items():
            if topic not in received and any(s.sample_info.valid_data for s in reader.take(N=16)):
                received.add(topic)
                print(f"RECV {topic}", flush=True)
        time.sleep(0.02)


def free_domain() -> int:
    """A random domain id (the default port mapping allows 0..232), away from the fixed ones."""
    return fresh_domain()


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CYCLONEDDS_URI", loopback_uri())


def spin_until(port: DdsPort, done: Callable[[], bool], seconds: float) -> None:
    end = time.monotonic() + seconds
    port.spin(lambda: done() or time.monotonic() >= end)


# --- the pairings ---------------------------------------------------------------------------
def test_profiles_mirror_rmw() -> None:
    """The named profiles are rmw's (qos_profiles.h), depth 0 being 'system default'."""
    assert (SYSTEM_DEFAULT.reliable, SYSTEM_DEFAULT.transient_local, SYSTEM_DEFAULT.history_depth) == (
        True,
        False,
        1,
    )
    assert (DEFAULT.reliable, DEFAULT.transient_local, DEFAULT.depth) == (True, False, 10)
    assert (SENSOR_DATA.reliable, SENSOR_DATA.transient_local, SENSOR_DATA.depth) == (False, False, 5)
    assert parse_qos("sensor_data") == SENSOR_DATA
    assert parse_qos("reliable,volatile,keep_last:1", SENSOR_DATA) == QoS(reliable=True, depth=1)
    assert parse_qos("default,transient_local").transient_local
    assert parse_qos({"reliability": "best_effort", "depth": 3}, DEFAULT) == QoS(reliable=False, depth=3)
    assert parse_qos("best_effort,deadline:0.003", SYSTEM_DEFAULT).deadline_s == 0.003
    assert parse_qos("", LATCHED) == LATCHED
    for spec in ("reliabel", "keep_last:x", "volatile,sensor_data", {"reliability": "sometimes"}):
        with pytest.raises(ValueError):
            parse_qos(spec)


def test_standard_peers_connect_and_wrong_pairings_are_reported(loopback: None) -> None:
    domain = free_domain()
    port = DdsPort("spine_under_test", ParameterStore("spine_under_test"), domain_id=domain)
    got: dict[str, Any] = {}
    pubs = {}
    for topic, (side, qos) in SPINE.items():
        msgtype = PEERS[topic][0]
        if side == "publisher":
            pubs[topic] = (port.publisher(topic, msgtype, qos), sample(msgtype))
        else:
            port.subscribe(topic, msgtype, lambda msg, rx, t=topic: got.setdefault(t, msg), qos)
    tick = port.timer(0.02, lambda: [w.publish(msg) for w, msg in pubs.values()])
    cmd = [sys.executable, "-c", f"from tests.ros_nodes.test_qos import run_peers; run_peers({domain}, 4.0)"]
    peer = subprocess.Popen(cmd, env=node_env(domain), cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        spin_until(port, lambda: peer.poll() is not None, 30.0)  # Spine publishes while it spins
        out, _ = peer.communicate(timeout=5)
    finally:
        peer.kill()
    tick.cancel()
    recv = {line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("RECV ")}
    for topic, (side, _) in SPINE.items():
        who = PEERS[topic][3]
        if topic in WRONG:
            assert topic not in got and topic not in recv, f"{topic}: a wrong pairing delivered"
        elif side == "subscription":
            assert topic in got, f"{topic}: nothing from {who} ({PEERS[topic][2]})"
            assert m.TYPESTORE.serialize_cdr(got[topic], PEERS[topic][0]) == m.serialize(
                sample(PEERS[topic][0])
            )
        else:
            assert topic in recv, f"{topic}: {who} ({PEERS[topic][2]}) received nothing"
    events = port.health().incompatible_qos
    assert {(e.topic, e.side) for e in events} == {(t, side) for t, (side, _) in WRONG.items()}
    for event in events:
        assert WRONG[event.topic][1] in event.policy
        assert event.peer not in ("", "unknown") and event.peer_id, "the peer's policies are looked up"
        assert event.topic in event.message() and event.policy in event.message()
    estop = next(e for e in events if e.topic == "/wrong/estop")
    assert (estop.ours, estop.peer) == (
        "reliable,transient_local,keep_last:1",
        "reliable,volatile,keep_last:10",
    )
    # the peer process has left: discovery and the executor carry on
    port.discover_topics()
    port.spin_for(0.3)
    port.close()


def test_incompatible_qos_printed_once_per_peer(loopback: None, capfd: pytest.CaptureFixture[str]) -> None:
    domain = free_domain()
    port = DdsPort("spine_estop", ParameterStore("spine_estop"), domain_id=domain)
    port.subscribe("/spine/estop", BOOL, lambda msg, rx: None, LATCHED)
    dp = DomainParticipant(domain)
    topic = Topic(dp, "rt/spine/estop", IDL_TYPES[BOOL])
    writers = [DataWriter(dp, topic, qos=rmw_cyclonedds_qos("QoS(10) / default")) for _ in range(2)]
    spin_until(port, lambda: len(port.health().incompatible_qos) == 2, 5.0)
    port.spin_for(0.3)  # more polls: still one line per peer
    err = capfd.readouterr().err
    assert len(port.health().incompatible_qos) == 2, err
    assert err.count("QoS incompatible on /spine/estop") == 2
    assert "Policy DURABILITY" in err and "[spine_estop] ERROR" in err
    del writers
    port.close()


def test_in_process_adapter_matches_like_dds() -> None:
    bus = InProcessBus()
    spine, tool = bus.port("spine"), bus.port("ros2_topic_pub")
    got: list[bool] = []
    spine.subscribe("/spine/estop", BOOL, lambda msg, rx: got.append(msg.data), LATCHED)
    spine.subscribe("/spine/estop_ok", BOOL, lambda msg, rx: got.append(msg.data), DEFAULT)
    tool.publisher("/spine/estop", BOOL, DEFAULT).publish(bool_msg(True))
    tool.publisher("/spine/estop_ok", BOOL, DEFAULT).publish(bool_msg(False))
    bus.run_for(0.01)
    assert got == [False]
    (event,) = spine.health().incompatible_qos
    assert (event.topic, event.side, event.policy) == ("/spine/estop", "subscription", "DURABILITY")
    assert [e.side for e in tool.health().incompatible_qos] == ["publisher"]


# --- size caps, malformed samples, participants leaving -------------------------------------
def _raw_writer(dp: DomainParticipant, topic: str, msgtype: str) -> Callable[[bytes], None]:
    qos = Qos(
        Policy.Reliability.Reliable(max_blocking_time=INFINITE),
        Policy.History.KeepLast(16),
        Policy.DataRepresentation(use_cdrv0_representation=True),
    )
    writer = DataWriter(dp, Topic(dp, "rt" + topic, IDL_TYPES[msgtype]), qos=qos)

    def write(data: bytes) -> None:
        assert ddspy_write(writer._ref, data + b"\0" * (-len(data) % 4)) == 0

    write.writer = writer  # type: ignore[attr-defined]  # keep it alive
    return write


@pytest.fixture
def port_and_peer(loopback: None) -> Iterator[tuple[DdsPort, DomainParticipant, list[int]]]:
    """A Spine port whose decoder records the size of every sample it decodes."""
    domain = free_domain()
    port = DdsPort("spine_caps", ParameterStore("spine_caps"), domain_id=domain)
    decoded: list[int] = []
    real = port._decode

    def spy(data: bytes, msgtype: str) -> Any:
        decoded.append(len(data))
        return real(data, msgtype)

    port._decode = spy  # type: ignore[method-assign]
    yield port, DomainParticipant(domain), decoded
    port.close()


def _matched(writer: DataWriter) -> int:
    """How many readers ``writer`` is matched with (Cyclone's C API: the same on every binding)."""
    status = dds_c_t.publication_matched_status()
    fn = DDS._dll_handle["dds_get_publication_matched_status"]
    fn.argtypes, fn.restype = [ct.c_int32, ct.c_void_p], ct.c_int32
    assert fn(writer._ref, ct.byref(status)) == 0
    return status.current_count


def run_big_writer(domain_id: int) -> None:
    """Another robot's process (Cyclone's defaults, no size cap): once a reader matches, five
    8 MB Float64MultiArrays, one of 100 KB (over the type's cap, under the domain's), one of 7."""
    dp = DomainParticipant(domain_id)
    write = _raw_writer(dp, "/spine/command", m.FLOAT64_ARRAY)
    end = time.monotonic() + 10.0
    while _matched(write.writer) == 0 and time.monotonic() < end:  # type: ignore[attr-defined]
        time.sleep(0.01)
    big = bytes(m.serialize(m.float64_array(np.zeros(1_000_000))))  # 8 MB
    for _ in range(5):
        write(big)
    write(bytes(m.serialize(m.float64_array(np.zeros(12_800)))))  # 100 KB
    write(bytes(m.serialize(m.float64_array(np.arange(7.0)))))
    time.sleep(3.0)  # let the reliable protocol finish before the participant leaves


def test_oversized_samples_are_dropped_before_they_cost_the_loop(
    port_and_peer: tuple[DdsPort, DomainParticipant, list[int]],
) -> None:
    port, _, decoded = port_and_peer
    assert port.max_sample_bytes == 256 * 1024, "the port created the domain with its cap"
    got: list[int] = []
    port.subscribe("/spine/command", m.FLOAT64_ARRAY, lambda msg, rx: got.append(len(msg.data)), DEFAULT)
    drains: list[float] = []
    real = port._drain

    def timed() -> int:
        t = time.perf_counter()
        n = real()
        drains.append(time.perf_counter() - t)
        return n

    port._drain = timed  # type: ignore[method-assign]
    cmd = [
        sys.executable,
        "-c",
        f"from tests.ros_nodes.test_qos import run_big_writer; run_big_writer({port.domain_id})",
    ]
    writer = subprocess.Popen(cmd, env=node_env(port.domain_id), cwd=REPO)
    try:
        spin_until(port, lambda: bool(got), 20.0)
    finally:
        writer.kill()
        writer.wait()
    assert got == [7], "the 8 MB and 100 KB samples never reach the callback"
    assert port.health().oversize == {"/spine/command": 1}, "the 100 KB one is counted"
    assert max(decoded) < 1024, "an oversized sample was decoded"
    assert port.health().diagnostic_values()["dropped_oversize"] == 1
    # unbounded, taking five 8 MB samples out of the reader costs ~35 ms in one drain
    assert max(drains) < 0.015, f"a drain took {max(drains) * 1e3:.1f} ms"


def test_per_type_cap_on_a_domain_without_the_cap(loopback: None) -> None:
    """A domain created before the first DdsPort has no Cyclone cap: the port still drops
    oversized samples unread (after taking them) and counts them."""
    domain = free_domain()
    dp = DomainParticipant(domain)  # the domain exists before the port: no MaxSampleSize
    port = DdsPort("spine_caps", ParameterStore("spine_caps"), domain_id=domain)
    assert port.max_sample_bytes is None
    got: list[int] = []
    port.subscribe("/spine/command", m.FLOAT64_ARRAY, lambda msg, rx: got.append(len(msg.data)), DEFAULT)
    write = _raw_writer(dp, "/spine/command", m.FLOAT64_ARRAY)
    write(bytes(m.serialize(m.float64_array(np.zeros(1_000_000)))))  # 8 MB
    write(bytes(m.serialize(m.float64_array(np.arange(7.0)))))
    spin_until(port, lambda: bool(got), 5.0)
    assert got == [7]
    assert port.health().oversize == {"/spine/command": 1}
    port.close()


def test_malformed_samples_are_counted_not_raised(
    port_and_peer: tuple[DdsPort, DomainParticipant, list[int]],
) -> None:
    port, dp, _ = port_and_peer
    got: list[list[str]] = []
    port.subscribe("/joint_states", m.JOINT_STATE, lambda msg, rx: got.append(list(msg.name)), DEFAULT)
    write = _raw_writer(dp, "/joint_states", m.JOINT_STATE)
    time.sleep(0.2)
    good = bytes(m.serialize(m.joint_state(1, ["j1"], np.zeros(1), np.zeros(1))))
    try:  # a header, then a string length of 4 GiB: structurally broken CDR
        write(good[:4] + b"\xff" * 64)
        broken_sent = True  # Cyclone 0.10's writer sends it; the reader's side drops or counts it
    except AssertionError:
        broken_sent = False  # Cyclone 11's writer refuses it
    # what Cyclone passes but ROS 2 cannot decode: a joint name that is not UTF-8
    write(good.replace(b"j1\0", b"\xff\xfe\0"))
    write(good)
    spin_until(port, lambda: bool(got), 5.0)
    assert got == [["j1"]]
    assert port.health().malformed.get("/joint_states") in ((1, 2) if broken_sent else (1,))


def test_participant_leaving_during_discovery_and_spin(loopback: None) -> None:
    """The recorder's crash: a participant publishes a topic, then is deleted while
    ``discover_topics`` and ``spin`` run (its endpoints' built-in samples lose their fields)."""
    domain = free_domain()
    port = DdsPort("spine_recorder", ParameterStore("spine_recorder"), domain_id=domain)
    got: list[Any] = []
    port.subscribe("/joint_states", m.JOINT_STATE, lambda msg, rx: got.append(msg), SENSOR_DATA)
    for _ in range(3):
        dp = DomainParticipant(domain)
        write = _raw_writer(dp, "/joint_states", m.JOINT_STATE)
        write(bytes(m.serialize(sample(m.JOINT_STATE))))
        spin_until(port, lambda: "/joint_states" in port.discover_topics(), 5.0)
        assert port.discover_topics()["/joint_states"][0] == m.JOINT_STATE
        del write, dp  # the participant leaves: its writer and built-in instances are disposed
        gc.collect()
        end = time.monotonic() + 5.0
        while any(ep.topic_name == "rt/joint_states" for ep in port._endpoints("publication")):
            assert time.monotonic() < end, "the participant did not leave"
            port.discover_topics()
            port.spin_for(0.01)
        for _ in range(5):
            port.discover_topics()
            port.spin_for(0.01)
    assert "/joint_states" in port.discover_topics(), "a topic stays known after its publisher left"
    assert got, "samples were delivered before the participant left"
    port.close()


def test_discovery_reports_a_qos_matching_every_publisher(loopback: None) -> None:
    domain = free_domain()
    port = DdsPort("spine_recorder", ParameterStore("spine_recorder"), domain_id=domain)
    dp = DomainParticipant(domain)
    topic = Topic(dp, "rt/joint_states", IDL_TYPES[m.JOINT_STATE])
    w1 = DataWriter(dp, topic, qos=rmw_cyclonedds_qos("SystemDefaultsQoS"))
    spin_until(port, lambda: "/joint_states" in port.discover_topics(), 5.0)
    assert port.discover_topics()["/joint_states"][1].reliable
    w2 = DataWriter(dp, topic, qos=rmw_cyclonedds_qos("SensorDataQoS"))
    spin_until(port, lambda: not port.discover_topics()["/joint_states"][1].reliable, 5.0)
    assert not port.discover_topics()["/joint_states"][1].reliable, "best effort matches both"
    del w1, w2
    port.close()
