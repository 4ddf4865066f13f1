"""Cyclone DDS adapter of the port, speaking ROS 2's wire conventions without rclpy.

- topic ``/joint_states`` is the DDS topic ``rt/joint_states``;
- its type is ``sensor_msgs::msg::dds_::JointState_`` (``ros_nodes.idl``);
- samples are XCDR1 (``DataRepresentation(use_cdrv0_representation=True)``), as rmw_cyclonedds
  sends them, so ROS 2 nodes on ``rmw_cyclonedds_cpp`` in the same domain read them.

Two ways to fill a sample, with the same bytes on the wire (``tests/ros_nodes/test_wire.py``):
``wire="cdr"`` (default) hands rosbags' CDR straight to Cyclone's writer and decodes received
samples with rosbags (the fast path: one serialization per hop); ``wire="idl"`` converts to the
``ros_nodes.idl`` structs and lets cyclonedds serialize them.

One participant per port. ``spin`` is a single-threaded executor: it takes every available
sample (callbacks in arrival order per topic), fires due timers, then sleeps on a WaitSet
until the next timer deadline (optionally spinning the last ``spin_us`` for less jitter).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from cyclonedds._clayer import ddspy_take, ddspy_write
from cyclonedds.builtin import BuiltinDataReader, BuiltinTopicDcpsPublication
from cyclonedds.core import (
    DDSException,
    InstanceState,
    Policy,
    Qos,
    ReadCondition,
    SampleState,
    ViewState,
    WaitSet,
)
from cyclonedds.domain import DomainParticipant
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic
from cyclonedds.util import duration

from deploy.messages import TYPESTORE
from ros_nodes.convert import from_idl, idl_type, to_idl
from ros_nodes.idl import IDL_TYPES, dds_type_name
from ros_nodes.params import ParameterStore
from ros_nodes.port import Callback, QoS, Received

_BY_DDS_NAME = {dds_type_name(t): t for t in IDL_TYPES}
_ANY = SampleState.Any | ViewState.Any | InstanceState.Any
WIRES = ("cdr", "idl")


def dds_topic(topic: str) -> str:
    """ROS 2 topic name -> DDS topic name: ``/joint_states`` -> ``rt/joint_states``."""
    if not topic.startswith("/"):
        raise ValueError(f"topic {topic!r}: use an absolute ROS 2 name starting with '/'")
    return "rt" + topic


def dds_qos(qos: QoS, writer: bool) -> Qos:
    """The Cyclone QoS for a port ``QoS``; XCDR1 always. Deadlines are offered by writers only,
    so a reader without one (a recorder, ``ros2 topic echo``) matches every writer."""
    policies: list[Any] = [
        Policy.Reliability.Reliable(max_blocking_time=duration(milliseconds=100))
        if qos.reliable
        else Policy.Reliability.BestEffort,
        Policy.History.KeepLast(depth=qos.depth),
        Policy.Durability.TransientLocal if qos.transient_local else Policy.Durability.Volatile,
        Policy.DataRepresentation(use_cdrv0_representation=True),
    ]
    if writer and qos.deadline_s is not None:
        policies.append(Policy.Deadline(deadline=duration(seconds=qos.deadline_s)))
    return Qos(*policies)


class _Writer:
    def __init__(self, writer: DataWriter, msgtype: str, wire: str) -> None:
        self.writer, self.msgtype, self.cdr = writer, msgtype, wire == "cdr"

    def publish(self, msg: Any) -> None:
        if not self.cdr:
            self.writer.write(to_idl(msg))
            return
        data = TYPESTORE.serialize_cdr(msg, self.msgtype).tobytes()
        data += b"\0" * (-len(data) % 4)  # what DataWriter.write does: pad to 4 bytes
        ret = ddspy_write(self.writer._ref, data)
        if ret < 0:
            raise DDSException(ret, f"writing {self.msgtype}")


class _Timer:
    def __init__(
        self,
        period_s: float,
        callback: Callable[[], None],
        start_ns: int,
        prepare: Callable[[], None] | None = None,
        prepare_s: float = 0.0,
    ) -> None:
        self.period_s = period_s
        self.period_ns = round(period_s * 1e9)
        self.callback = callback
        self.prepare, self.prepare_ns = prepare, round(prepare_s * 1e9)
        self.prepared_for = -1  # the deadline ``prepare`` last ran for
        self.next_ns = start_ns + self.period_ns
        self.ticks = 0
        self.overruns = 0
        self.last_lateness_ns = 0
        self.active = True

    def cancel(self) -> None:
        self.active = False

    def fire(self, now_ns: int) -> None:
        late = now_ns - self.next_ns
        self.last_lateness_ns = late
        missed = late // self.period_ns
        if missed >= 1:
            self.overruns += 1
        self.next_ns += self.period_ns * (1 + missed)
        self.ticks += 1
        self.callback()


def _wake_ns(t: _Timer) -> int:
    """When the executor must be awake for ``t``: its ``prepare`` time, else its deadline."""
    if t.prepare is not None and t.prepared_for != t.next_ns:
        return t.next_ns - t.prepare_ns
    return t.next_ns


class DdsPort:
    """A Cyclone DDS participant behind the port interface.

    Args:
        name: node name (for messages and diagnostics).
        params: parameter values from YAML and the command line.
        domain_id: DDS domain (default: ``ROS_DOMAIN_ID`` or 0).
        spin_us: busy-wait this long before each timer deadline instead of sleeping (µs);
            trades a core for less timer jitter. 0 sleeps until the deadline.
        wire: ``"cdr"`` (rosbags serializes) or ``"idl"`` (cyclonedds serializes the IDL structs).
    """

    def __init__(
        self,
        name: str,
        params: ParameterStore,
        domain_id: int | None = None,
        spin_us: float = 0.0,
        wire: str = "cdr",
    ) -> None:
        if wire not in WIRES:
            raise ValueError(f"wire {wire!r}: choose one of {WIRES}")
        if domain_id is None:
            domain_id = int(os.environ.get("ROS_DOMAIN_ID", "0"))
        self.name = name
        self.wire = wire
        self.params = params
        self.domain_id = domain_id
        self.participant = DomainParticipant(domain_id)
        self.waitset = WaitSet(self.participant)
        self.spin_ns = round(spin_us * 1e3)
        self._topics: dict[str, Topic] = {}
        self._subs: list[tuple[DataReader, ReadCondition, str, Callback]] = []
        self._timers: list[_Timer] = []
        self._stop = False
        self._discovery: BuiltinDataReader | None = None

    # --- port -------------------------------------------------------------------------
    def _topic(self, topic: str, msgtype: str) -> Topic:
        if topic not in self._topics:
            self._topics[topic] = Topic(self.participant, dds_topic(topic), idl_type(msgtype))
        return self._topics[topic]

    def publisher(self, topic: str, msgtype: str, qos: QoS) -> _Writer:
        writer = DataWriter(self.participant, self._topic(topic, msgtype), qos=dds_qos(qos, True))
        return _Writer(writer, msgtype, self.wire)

    def subscribe(self, topic: str, msgtype: str, callback: Callback, qos: QoS) -> None:
        reader = DataReader(self.participant, self._topic(topic, msgtype), qos=dds_qos(qos, False))
        cond = ReadCondition(reader, SampleState.NotRead | ViewState.Any | InstanceState.Any)
        self.waitset.attach(cond)
        self._subs.append((reader, cond, msgtype, callback))

    def timer(
        self,
        period_s: float,
        callback: Callable[[], None],
        prepare: Callable[[], None] | None = None,
        prepare_s: float = 0.0,
    ) -> _Timer:
        t = _Timer(period_s, callback, time.monotonic_ns(), prepare, prepare_s)
        self._timers.append(t)
        return t

    def now_ns(self) -> int:
        return time.time_ns()

    def parameter(self, name: str, default: Any) -> Any:
        return self.params.get(name, default)

    def shutdown(self) -> None:
        self._stop = True

    # --- executor ---------------------------------------------------------------------
    def _drain(self) -> int:
        n = 0
        for reader, _, msgtype, callback in self._subs:
            if self.wire == "idl":
                for sample in reader.take(N=256):
                    rx = Received(sample.sample_info.source_timestamp, time.time_ns())
                    callback(from_idl(sample, msgtype), rx)
                    n += 1
                continue
            taken = ddspy_take(reader._ref, _ANY, 256)
            if isinstance(taken, int):
                raise DDSException(taken, f"taking {msgtype}")
            for data, info in taken:
                if info.valid_data:
                    msg = TYPESTORE.deserialize_cdr(data, msgtype)
                    callback(msg, Received(info.source_timestamp, time.time_ns()))
                    n += 1
        return n

    def spin(self, until: Callable[[], bool] | None = None) -> None:
        self._stop = False
        while not self._stop and not (until and until()):
            self._drain()
            now = time.monotonic_ns()
            self._timers = [t for t in self._timers if t.active]
            for t in self._timers:
                if t.next_ns <= now:
                    t.fire(now)
                    self._drain()  # what arrived during the tick runs before the next one
                    now = time.monotonic_ns()
            for t in self._timers:  # e.g. warm the safety filter just before its tick
                if t.prepare is not None and t.prepared_for != t.next_ns and now >= t.next_ns - t.prepare_ns:
                    t.prepared_for = t.next_ns
                    t.prepare()
                    now = time.monotonic_ns()
            deadline = min((_wake_ns(t) for t in self._timers), default=now + 50_000_000)
            sleep_ns = min(deadline - time.monotonic_ns() - self.spin_ns, 50_000_000)
            if sleep_ns > 0:
                self.waitset.wait(sleep_ns)

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        self.spin(lambda: time.monotonic() >= end)

    # --- graph --------------------------------------------------------------------------
    def discover_topics(self) -> dict[str, tuple[str, QoS]]:
        """ROS 2 topics published in this domain with a type Spine knows: topic -> (type, QoS)."""
        if self._discovery is None:
            self._discovery = BuiltinDataReader(self.participant, BuiltinTopicDcpsPublication)
            self._known: dict[str, tuple[str, QoS]] = {}
        for ep in self._discovery.read(N=1024):
            name, msgtype = getattr(ep, "topic_name", ""), _BY_DDS_NAME.get(getattr(ep, "type_name", ""))
            if not name.startswith("rt/") or msgtype is None:
                continue
            rel = ep.qos[Policy.Reliability]
            dur = ep.qos[Policy.Durability]
            qos = QoS(
                reliable=isinstance(rel, Policy.Reliability.Reliable),
                depth=100,
                transient_local=dur == Policy.Durability.TransientLocal,
            )
            self._known[name[2:]] = (msgtype, qos)
        return dict(self._known)

    def close(self) -> None:
        for _, cond, _, _ in self._subs:
            self.waitset.detach(cond)
        self._subs.clear()
