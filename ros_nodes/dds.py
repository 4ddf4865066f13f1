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

Robustness (``DdsPort.health``): every ``HEALTH_PERIOD_S`` the executor reads each endpoint's
requested / offered incompatible-QoS status, looks the peer up in the built-in topics and
reports it once per (topic, peer) on stderr and in ``health()``. A received sample larger than
its type's cap (``ros_nodes.port_health.MAX_BYTES``) is dropped before it is deserialized, one that
does not deserialize is dropped; both are counted, neither reaches a callback nor raises. A
writer or participant leaving shows up as invalid samples (no data), which are skipped.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cyclonedds.builtin import (
    BuiltinDataReader,
    BuiltinTopicDcpsPublication,
    BuiltinTopicDcpsSubscription,
)
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

from deploy.logs.messages import TYPESTORE
from ros_nodes.convert import from_idl, idl_type
from ros_nodes.cyclone import (
    _take_raw,
    _valid_endpoint,
    cap_domain,
    dds_qos,
    qos_of,
)
from ros_nodes.dds_parts import _Endpoint, _Sub, _Timer, _wake_ns, _Writer
from ros_nodes.idl import IDL_TYPES, dds_type_name
from ros_nodes.params import ParameterStore
from ros_nodes.port import (
    Callback,
    PortHealth,
    QoS,
    QosEvent,
    Received,
    incompatible_policies,
    max_bytes,
)

_BY_DDS_NAME = {dds_type_name(t): t for t in IDL_TYPES}
_ANY = SampleState.Any | ViewState.Any | InstanceState.Any
_ALIVE = SampleState.Any | ViewState.Any | InstanceState.Alive
_GONE = SampleState.Any | ViewState.Any | InstanceState.NotAliveDisposed | InstanceState.NotAliveNoWriters
WIRES = ("cdr", "idl")
HEALTH_PERIOD_S = 0.1
"""How often ``spin`` reads the endpoints' incompatible-QoS statuses (s)."""
PEER_LOOKUP_S = 1.0
"""How long to look for the peer of an incompatible-QoS status before reporting it unknown."""


def dds_topic(topic: str) -> str:
    """ROS 2 topic name -> DDS topic name: ``/joint_states`` -> ``rt/joint_states``."""
    if not topic.startswith("/"):
        raise ValueError(f"topic {topic!r}: use an absolute ROS 2 name starting with '/'")
    return "rt" + topic


class DdsPort:
    """A Cyclone DDS participant behind the port interface.

    Args:
        name: node name (for messages and diagnostics).
        params: parameter values from YAML and the command line.
        domain_id: DDS domain (default: ``ROS_DOMAIN_ID`` or 0).
        spin_us: busy-wait this long before each timer deadline instead of sleeping (µs);
            trades a core for less timer jitter. 0 sleeps until the deadline.
        wire: ``"cdr"`` (rosbags serializes) or ``"idl"`` (cyclonedds serializes the IDL structs).
        enclave: a DDS Security enclave folder (``ros_nodes.security``, SROS2's layout): the
            participant authenticates with its identity, encrypts and obeys its permissions;
            a missing file raises ``EnclaveFileMissing`` naming it. None: no security.
    """

    def __init__(
        self,
        name: str,
        params: ParameterStore,
        domain_id: int | None = None,
        spin_us: float = 0.0,
        wire: str = "cdr",
        enclave: Path | None = None,
    ) -> None:
        if wire not in WIRES:
            raise ValueError(f"wire {wire!r}: choose one of {WIRES}")
        if domain_id is None:
            domain_id = int(os.environ.get("ROS_DOMAIN_ID", "0"))
        self.name = name
        self.wire = wire
        self.params = params
        self.domain_id = domain_id
        self.max_sample_bytes = cap_domain(domain_id)
        self.enclave = enclave
        if enclave is None:
            self.participant = DomainParticipant(domain_id)
        else:
            from ros_nodes.security import security_properties

            props = security_properties(Path(enclave))
            qos = Qos(*(Policy.Property(key, value) for key, value in props.items()))
            self.participant = DomainParticipant(domain_id, qos=qos)
        self.waitset = WaitSet(self.participant)
        self.spin_ns = round(spin_us * 1e3)
        self._topics: dict[str, Topic] = {}
        self._subs: list[_Sub] = []
        self._timers: list[_Timer] = []
        self._stop = False
        self._init_health()

    # --- port -------------------------------------------------------------------------
    def _topic(self, topic: str, msgtype: str) -> Topic:
        if topic not in self._topics:
            self._topics[topic] = Topic(self.participant, dds_topic(topic), idl_type(msgtype))
        return self._topics[topic]

    def _init_health(self) -> None:
        self.max_bytes: dict[str, int] = {}
        """Per-type overrides of ``ros_nodes.port_health.MAX_BYTES`` (bytes); set before subscribing."""
        self._health = PortHealth()
        self._pubs: list[_Endpoint] = []
        self._builtin: dict[str, tuple[BuiltinDataReader, ReadCondition, ReadCondition]] = {}
        self._seen: dict[str, dict[str, Any]] = {}  # kind -> endpoint key -> built-in sample
        self._known: dict[str, tuple[str, QoS]] = {}
        self._health_due_ns = 0
        self._warned: set[tuple[str, str]] = set()

    def publisher(self, topic: str, msgtype: str, qos: QoS) -> _Writer:
        writer = DataWriter(self.participant, self._topic(topic, msgtype), qos=dds_qos(qos, True))
        self._pubs.append(_Endpoint(writer, topic, msgtype, qos, "publisher"))
        return _Writer(writer, msgtype, self.wire)

    def subscribe(self, topic: str, msgtype: str, callback: Callback, qos: QoS) -> None:
        reader = DataReader(self.participant, self._topic(topic, msgtype), qos=dds_qos(qos, False))
        cond = ReadCondition(reader, SampleState.NotRead | ViewState.Any | InstanceState.Any)
        self.waitset.attach(cond)
        cap = max_bytes(msgtype, self.max_bytes)
        self._subs.append(_Sub(reader, cond, topic, msgtype, qos, callback, cap))

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

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()

    def parameter(self, name: str, default: Any) -> Any:
        return self.params.get(name, default)

    def shutdown(self) -> None:
        self._stop = True

    # --- executor ---------------------------------------------------------------------
    def _decode(self, data: bytes, msgtype: str) -> Any:
        if self.wire == "idl":
            return from_idl(idl_type(msgtype).deserialize(data), msgtype)
        return TYPESTORE.deserialize_cdr(data, msgtype)

    def _drop(self, kind: str, sub: _Sub, detail: str) -> None:
        """Count a dropped sample; the first of each kind per topic also goes to stderr."""
        self._health.count_drop(kind, sub.topic)
        if (kind, sub.topic) not in self._warned:
            self._warned.add((kind, sub.topic))
            print(
                f"[{self.name}] WARNING: dropped a {kind} {sub.msgtype} sample on {sub.topic} ({detail}); "
                "further drops are only counted (health())",
                file=sys.stderr,
                flush=True,
            )

    def _drain(self) -> int:
        """Take every available sample and run the callbacks; returns how many ran. Samples
        without data (a writer or participant left), oversized and malformed ones are skipped."""
        n = 0
        for sub in self._subs:
            taken = _take_raw(sub.reader._ref, 256)
            if isinstance(taken, int):
                raise DDSException(taken, f"taking {sub.msgtype}")
            for data, info in taken:
                if not info.valid_data:
                    continue
                if len(data) > sub.max_bytes:  # before any decoding: costs the loop a length check
                    self._drop("oversize", sub, f"{len(data)} bytes > cap {sub.max_bytes}")
                    continue
                try:
                    msg = self._decode(data, sub.msgtype)
                except Exception as e:  # untrusted bytes: any decoding error means malformed
                    self._drop("malformed", sub, f"{type(e).__name__}: {e}")
                    continue
                sub.callback(msg, Received(info.source_timestamp, time.time_ns()))
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
            if now >= self._health_due_ns:
                self._poll_qos(now)
                self._health_due_ns = now + round(HEALTH_PERIOD_S * 1e9)
            deadline = min((_wake_ns(t) for t in self._timers), default=now + 50_000_000)
            sleep_ns = min(deadline - time.monotonic_ns() - self.spin_ns, 50_000_000)
            if sleep_ns > 0:
                self.waitset.wait(sleep_ns)

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        self.spin(lambda: time.monotonic() >= end)

    # --- graph and health --------------------------------------------------------------
    def _endpoints(self, kind: str) -> list[Any]:
        """Alive endpoints of the domain (ours included), ``kind`` "publication" or
        "subscription", from the built-in topics; those that left are forgotten.

        Samples are taken, never read twice: the cyclonedds 0.10 binding (Debian's Cyclone DDS
        with DDS Security) aborts the process when a built-in sample is read a second time. The
        endpoints are kept here by key instead."""
        if kind not in self._builtin:
            topic = BuiltinTopicDcpsPublication if kind == "publication" else BuiltinTopicDcpsSubscription
            reader = BuiltinDataReader(self.participant, topic)
            self._builtin[kind] = (reader, ReadCondition(reader, _ALIVE), ReadCondition(reader, _GONE))
            self._seen[kind] = {}
        reader, alive, gone = self._builtin[kind]
        seen = self._seen[kind]
        while True:
            taken = reader.take(N=256, condition=alive)
            for ep in taken:
                if _valid_endpoint(ep):
                    seen[str(ep.key)] = ep
            if len(taken) < 256:
                break
        while True:
            left = reader.take(N=256, condition=gone)  # the endpoint or its participant left
            for ep in left:
                seen.pop(str(getattr(ep, "key", "")), None)
            if len(left) < 256:
                break
        return list(seen.values())

    def discover_topics(self) -> dict[str, tuple[str, QoS]]:
        """ROS 2 topics published in this domain with a type Spine knows: topic -> (type, QoS
        to subscribe with). The QoS matches every publisher seen, as ``ros2 bag record`` and
        ``ros2 topic echo`` choose it: reliable only if all publishers are, transient local
        only if all are. A topic stays listed after its publishers leave."""
        found: dict[str, tuple[str, list[QoS]]] = {}
        for ep in self._endpoints("publication"):
            msgtype = _BY_DDS_NAME.get(ep.type_name)
            qos = qos_of(ep.qos, writer=True)
            if not ep.topic_name.startswith("rt/") or msgtype is None or qos is None:
                continue
            found.setdefault(ep.topic_name[2:], (msgtype, []))[1].append(qos)
        for topic, (msgtype, offered) in found.items():
            reliable = all(q.reliable for q in offered)
            transient_local = all(q.transient_local for q in offered)
            self._known[topic] = (msgtype, QoS(reliable=reliable, depth=100, transient_local=transient_local))
        return dict(self._known)

    def _peers(self, ep: _Endpoint) -> list[QosEvent]:
        """The peers of ``ep`` that DDS will not connect to it, as events."""
        kind = "subscription" if ep.side == "publisher" else "publication"
        events = []
        for peer in self._endpoints(kind):
            theirs = qos_of(peer.qos, writer=kind == "publication")
            if peer.topic_name != dds_topic(ep.topic) or theirs is None:
                continue
            offered, requested = (ep.qos, theirs) if ep.side == "publisher" else (theirs, ep.qos)
            bad = incompatible_policies(offered, requested)
            if bad:
                events.append(
                    QosEvent(
                        ep.topic, ep.side, ", ".join(bad), ep.qos.describe(), theirs.describe(), str(peer.key)
                    )
                )
        return events

    def _poll_qos(self, now_ns: int) -> None:
        """Read every endpoint's incompatible-QoS status; report new incompatibilities with the
        peer they concern (looked up for ``PEER_LOOKUP_S``, then reported as unknown)."""
        for ep in [*self._subs, *self._pubs]:
            count, policy = ep.incompatible_status()
            if count <= ep.handled:
                continue
            events = self._peers(ep)
            if not events:
                if ep.pending_since_ns is None:
                    ep.pending_since_ns = now_ns
                if now_ns - ep.pending_since_ns < PEER_LOOKUP_S * 1e9:
                    continue
                events = [QosEvent(ep.topic, ep.side, policy, ep.qos.describe(), "unknown")]
            for event in events:
                self._health.add_qos_event(event, self.name)
            ep.handled, ep.pending_since_ns = count, None

    def health(self) -> PortHealth:
        """A snapshot of incompatible QoS seen and samples dropped (``ros_nodes.port.PortHealth``);
        reads the statuses first, so it is current even when called outside ``spin``."""
        self._poll_qos(time.monotonic_ns())
        return self._health.copy()

    def close(self) -> None:
        """Detach the readers, then delete the participant (and with it, in the C library, every
        reader, writer, topic and condition it made) now, while the interpreter is whole. Left
        to the garbage collector at exit, Cyclone's DDS Security plugins could be torn down
        before the participant and the process died with SIGSEGV after its work was done."""
        for sub in self._subs:
            self.waitset.detach(sub.cond)
        self._subs.clear()
        self._pubs.clear()
        self._builtin.clear()
        self._topics.clear()
        participant = getattr(self, "participant", None)
        if participant is not None:
            participant.__del__()  # cyclonedds' only delete; idempotent (the GC's call is a no-op)
            self.participant = None
