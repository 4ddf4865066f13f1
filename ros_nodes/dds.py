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
its type's cap (``ros_nodes.port.MAX_BYTES``) is dropped before it is deserialized, one that
does not deserialize is dropped; both are counted, neither reaches a callback nor raises. A
writer or participant leaving shows up as invalid samples (no data), which are skipped.
"""

from __future__ import annotations

import ctypes as ct
import os
import sys
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from cyclonedds._clayer import ddspy_take, ddspy_write
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
from cyclonedds.domain import Domain, DomainParticipant
from cyclonedds.internal import DDS, dds_c_t
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic
from cyclonedds.util import duration

from deploy.messages import TYPESTORE
from ros_nodes.convert import from_idl, idl_type, to_idl
from ros_nodes.idl import IDL_TYPES, dds_type_name
from ros_nodes.params import ParameterStore
from ros_nodes.port import (
    DEFAULT_MAX_BYTES,
    MAX_BYTES,
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
_INFINITE = duration(infinite=True)
WIRES = ("cdr", "idl")
HEALTH_PERIOD_S = 0.1
"""How often ``spin`` reads the endpoints' incompatible-QoS statuses (s)."""
PEER_LOOKUP_S = 1.0
"""How long to look for the peer of an incompatible-QoS status before reporting it unknown."""

# Cyclone's dds_qos_policy_id_t (dds/ddsc/dds_public_qosdefs.h), named as ROS 2 names them
_POLICY_NAMES = {
    1: "USER_DATA", 2: "DURABILITY", 3: "PRESENTATION", 4: "DEADLINE", 5: "LATENCY_BUDGET",
    6: "OWNERSHIP", 7: "OWNERSHIP_STRENGTH", 8: "LIVELINESS", 9: "TIME_BASED_FILTER",
    10: "PARTITION", 11: "RELIABILITY", 12: "DESTINATION_ORDER", 13: "HISTORY",
    14: "RESOURCE_LIMITS", 15: "ENTITY_FACTORY", 16: "WRITER_DATA_LIFECYCLE",
    17: "READER_DATA_LIFECYCLE", 18: "TOPIC_DATA", 19: "GROUP_DATA", 20: "TRANSPORT_PRIORITY",
    21: "LIFESPAN", 22: "DURABILITY_SERVICE", 23: "PROPERTY", 24: "TYPE_CONSISTENCY_ENFORCEMENT",
    25: "DATA_REPRESENTATION",
}  # fmt: skip


def dds_topic(topic: str) -> str:
    """ROS 2 topic name -> DDS topic name: ``/joint_states`` -> ``rt/joint_states``."""
    if not topic.startswith("/"):
        raise ValueError(f"topic {topic!r}: use an absolute ROS 2 name starting with '/'")
    return "rt" + topic


def _ns(seconds: float | None) -> int:
    return _INFINITE if seconds is None else duration(seconds=seconds)


def dds_qos(qos: QoS, writer: bool) -> Qos:
    """The Cyclone QoS of a port ``QoS``, built as rmw_cyclonedds builds a ROS 2 profile
    (ros2/rmw_cyclonedds, rmw_cyclonedds_cpp/src/rmw_node.cpp::create_readwrite_qos): RELIABLE
    with an infinite max blocking time (``QoS.max_blocking_s`` bounds it), depth 0 -> 1, a
    TRANSIENT_LOCAL durability service keeping the same history, deadline and lifespan on
    readers and writers alike when set, AUTOMATIC liveliness with an infinite lease, writers
    that do not autodispose. Plus XCDR1 (``use_cdrv0_representation``), as ROS 2 sends.
    ``writer`` only adds the writer-side policy (autodispose off)."""
    history = Policy.History.KeepAll if qos.keep_all else Policy.History.KeepLast(depth=qos.history_depth)
    policies: list[Any] = [
        Policy.Reliability.Reliable(max_blocking_time=_ns(qos.max_blocking_s))
        if qos.reliable
        else Policy.Reliability.BestEffort,
        history,
        Policy.Liveliness.Automatic(lease_duration=_INFINITE),
        Policy.DataRepresentation(use_cdrv0_representation=True),
    ]
    if qos.transient_local:
        policies += [
            Policy.Durability.TransientLocal,
            Policy.DurabilityService(
                cleanup_delay=0,
                history=history,
                max_samples=-1,
                max_instances=-1,
                max_samples_per_instance=-1,
            ),
        ]
    else:
        policies.append(Policy.Durability.Volatile)
    if qos.deadline_s is not None:
        policies.append(Policy.Deadline(deadline=_ns(qos.deadline_s)))
    if qos.lifespan_s is not None:
        policies.append(Policy.Lifespan(lifespan=_ns(qos.lifespan_s)))
    if writer:
        policies.append(Policy.WriterDataLifecycle(autodispose=False))
    return Qos(*policies)


def _seconds(ns: int | None) -> float | None:
    return None if ns is None or ns >= _INFINITE else ns / 1e9


def qos_of(qos: Qos | None, writer: bool) -> QoS | None:
    """A discovered endpoint's Cyclone QoS in the port's terms (None when it has none, e.g.
    the sample of an endpoint that left). Missing policies take DDS's defaults: a writer is
    reliable, a reader best effort; volatile; keep last 1."""
    if qos is None:
        return None
    rel, dur, hist = qos[Policy.Reliability], qos[Policy.Durability], qos[Policy.History]
    deadline, lifespan = qos[Policy.Deadline], qos[Policy.Lifespan]
    keep_all = hist is not None and not isinstance(hist, Policy.History.KeepLast)
    return QoS(
        reliable=writer if rel is None else isinstance(rel, Policy.Reliability.Reliable),
        depth=hist.depth if isinstance(hist, Policy.History.KeepLast) else 1,
        transient_local=dur is not None and dur != Policy.Durability.Volatile,
        deadline_s=None if deadline is None else _seconds(deadline.deadline),
        keep_all=keep_all,
        lifespan_s=None if lifespan is None else _seconds(lifespan.lifespan),
    )


def _valid_endpoint(ep: Any) -> bool:
    """A built-in topic sample with data (a disposed / unregistered one has none: the endpoint
    or its participant left) and the fields discovery needs."""
    info = getattr(ep, "sample_info", None)
    if info is not None and not info.valid_data:
        return False
    name, type_name = getattr(ep, "topic_name", None), getattr(ep, "type_name", None)
    return isinstance(name, str) and isinstance(type_name, str) and getattr(ep, "qos", None) is not None


_DOMAINS: dict[int, tuple[Domain | None, int | None]] = {}  # kept for the process's lifetime


def cap_domain(domain_id: int, max_sample_bytes: int | None = None) -> int | None:
    """Create this process's Cyclone domain ``domain_id`` with ``Internal/MaxSampleSize`` set
    (then ``CYCLONEDDS_URI``'s configuration, which may override it), unless it exists.

    Cyclone drops a sample over that size before it reaches any reader: from a remote writer in
    its receive thread, fragment by fragment, before reassembly (a gap for reliable readers);
    from a local writer, ``write`` fails. So a flood of huge samples never costs the executor
    the copy out of the reader (~7 ms per 8 MB sample); Cyclone logs a warning per writer, the
    port cannot count them. Samples under it and over their type's cap are dropped and counted
    in ``_drain``. ``max_sample_bytes`` defaults to the largest per-type cap.

    Returns the cap in force, or None when the domain was already created without it (e.g. by
    a ``DomainParticipant`` made before the first ``DdsPort``): then only the per-type caps apply.
    """
    if domain_id not in _DOMAINS:
        cap = max_sample_bytes or max(DEFAULT_MAX_BYTES, *MAX_BYTES.values())
        internal = f"<Internal><MaxSampleSize>{cap}B</MaxSampleSize></Internal>"
        xml = f"<CycloneDDS><Domain id='any'>{internal}</Domain></CycloneDDS>"
        config = ",".join(c for c in (xml, os.environ.get("CYCLONEDDS_URI", "")) if c)
        try:
            _DOMAINS[domain_id] = (Domain(domain_id, config), cap)
        except DDSException:  # PRECONDITION_NOT_MET: this process has the domain already
            _DOMAINS[domain_id] = (None, None)
    return _DOMAINS[domain_id][1]


def _take_wants_mask() -> bool:
    """Whether the installed binding's ``ddspy_take`` takes a state mask: ``(reader, mask, N)``
    in cyclonedds 11, ``(reader, N)`` (any state) in 0.10.x."""
    try:
        return int(version("cyclonedds").split(".")[0]) >= 11
    except (PackageNotFoundError, ValueError):
        return True


_TAKE_MASK = _take_wants_mask()


def _take_raw(reader: int, n: int) -> list[tuple[bytes, Any]] | int:
    """Up to ``n`` raw samples (serialized bytes incl. the 4-byte header, sample info) of any
    state, or a negative DDS return code."""
    return ddspy_take(reader, _ANY, n) if _TAKE_MASK else ddspy_take(reader, n)


def _status_getter(name: str) -> Any:
    """A ctypes handle on Cyclone's ``dds_get_*_status``: the bindings 0.10.x and 11 share the
    library handle and the status structs, but only 11 wraps these getters."""
    fn = DDS._dll_handle[name]  # a fresh function object: the binding's own stay untouched
    fn.argtypes, fn.restype = [ct.c_int32, ct.c_void_p], ct.c_int32
    return fn


_GET_REQUESTED = _status_getter("dds_get_requested_incompatible_qos_status")
_GET_OFFERED = _status_getter("dds_get_offered_incompatible_qos_status")


class _Endpoint:
    """One of our readers or writers, with what its incompatible-QoS status was last seen at."""

    def __init__(
        self, entity: DataReader | DataWriter, topic: str, msgtype: str, qos: QoS, side: str
    ) -> None:
        self.entity, self.topic, self.msgtype, self.qos, self.side = entity, topic, msgtype, qos, side
        self.handled = 0  # incompatible-QoS total_count already reported
        self.pending_since_ns: int | None = None  # looking for the peer since

    def incompatible_status(self) -> tuple[int, str]:
        """(total count, last policy name) of the requested / offered incompatible QoS status."""
        if self.side == "subscription":
            status: Any = dds_c_t.requested_incompatible_qos_status()
            ret = _GET_REQUESTED(self.entity._ref, ct.byref(status))
        else:
            status = dds_c_t.offered_incompatible_qos_status()
            ret = _GET_OFFERED(self.entity._ref, ct.byref(status))
        if ret < 0:
            raise DDSException(ret, f"reading the incompatible-QoS status of {self.topic}")
        return status.total_count, _POLICY_NAMES.get(status.last_policy_id, str(status.last_policy_id))


class _Sub(_Endpoint):
    def __init__(
        self,
        reader: DataReader,
        cond: ReadCondition,
        topic: str,
        msgtype: str,
        qos: QoS,
        callback: Callback,
        cap: int,
    ) -> None:
        super().__init__(reader, topic, msgtype, qos, "subscription")
        self.reader, self.cond, self.callback, self.max_bytes = reader, cond, callback, cap


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
        """Per-type overrides of ``ros_nodes.port.MAX_BYTES`` (bytes); set before subscribing."""
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
        for sub in self._subs:
            self.waitset.detach(sub.cond)
        self._subs.clear()
        self._pubs.clear()
