"""The Cyclone DDS binding's details that the port needs, across the binding's versions (0.10,
built against Debian's Cyclone DDS with DDS Security; 11 from PyPI): a port ``QoS`` as Cyclone
QoS, the way rmw_cyclonedds builds ROS 2's profiles, and back; a domain with a sample-size cap;
taking raw samples; reading the incompatible-QoS statuses through the C library."""

from __future__ import annotations

import ctypes as ct
import os
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from cyclonedds._clayer import ddspy_take
from cyclonedds.core import DDSException, InstanceState, Policy, Qos, SampleState, ViewState
from cyclonedds.domain import Domain
from cyclonedds.internal import DDS
from cyclonedds.util import duration

from ros_nodes.port import DEFAULT_MAX_BYTES, MAX_BYTES, QoS

_ANY = SampleState.Any | ViewState.Any | InstanceState.Any
_INFINITE = duration(infinite=True)

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
