"""The transport port every Spine node is written against: publish, subscribe, timer, clock,
parameters. Adapters: ``ros_nodes.dds`` (Cyclone DDS with ROS 2's wire conventions),
``ros_nodes.inprocess`` (deterministic, simulated clock, for unit tests) and
``ros_nodes.rclpy_port`` (a ROS 2 install).

Messages are always ``rosbags`` message objects (``deploy.messages``); adapters convert.

Also here, shared by the adapters: ``QoS`` and ROS 2's named profiles (``SYSTEM_DEFAULT``,
``DEFAULT``, ``SENSOR_DATA``, ... in ``PROFILES``), ``parse_qos`` for a per-topic override held in
a node parameter, ``incompatible_policies`` (DDS's matching rules), the per-type size caps
(``MAX_BYTES``) and ``PortHealth`` / ``QosEvent``, what ``Port.health()`` returns.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple, Protocol

# --- QoS ----------------------------------------------------------------------------------
# Profiles and matching follow ROS 2 as rmw_cyclonedds builds it (ros2/rmw_cyclonedds,
# rmw_cyclonedds_cpp/src/rmw_node.cpp::create_readwrite_qos):
#   reliability RELIABLE or SYSTEM_DEFAULT -> DDS RELIABLE, max_blocking_time infinite;
#     BEST_EFFORT -> BEST_EFFORT;
#   durability VOLATILE or SYSTEM_DEFAULT -> VOLATILE; TRANSIENT_LOCAL -> TRANSIENT_LOCAL plus a
#     durability service keeping the same history;
#   history KEEP_LAST depth N -> KEEP_LAST N, depth 0 (RMW_QOS_POLICY_DEPTH_SYSTEM_DEFAULT)
#     -> KEEP_LAST 1; KEEP_ALL -> KEEP_ALL;
#   deadline / lifespan set on readers and writers alike when specified (default: infinite);
#   liveliness AUTOMATIC, lease infinite (the profiles' default); writers never autodispose.


@dataclass(frozen=True)
class QoS:
    """The QoS a topic is published / subscribed with (ROS 2's vocabulary and defaults).

    Attributes:
        reliable: RELIABLE if True, else BEST_EFFORT.
        depth: KEEP_LAST history depth; 0 is ROS 2's "system default" depth, which
            rmw_cyclonedds makes 1.
        transient_local: TRANSIENT_LOCAL durability (late joiners get the last ``depth``
            samples) if True, else VOLATILE.
        deadline_s: expected maximum time between samples (s); None: infinite. A writer offers
            it, a reader requests it (a reader's deadline shorter than the writer's does not
            match, as in ROS 2).
        keep_all: KEEP_ALL history instead of KEEP_LAST ``depth``.
        lifespan_s: samples older than this are dropped before delivery (s); None: infinite.
        max_blocking_s: how long a RELIABLE writer's ``publish`` may block when its history is
            full of unacknowledged samples (s); None: infinite, as rmw_cyclonedds sets it. Not a
            ROS 2 profile field (ROS 2 cannot set it); it never affects matching.

    ``QoS()`` keeps Spine's historical default (best effort, keep last 1); prefer the named
    profiles below, which are ROS 2's.
    """

    reliable: bool = False
    depth: int = 1
    transient_local: bool = False
    deadline_s: float | None = None
    keep_all: bool = False
    lifespan_s: float | None = None
    max_blocking_s: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.depth <= 2**31 - 1:
            raise ValueError(f"QoS depth {self.depth}: must be 0..2**31-1 (0: system default, i.e. 1)")
        for name in ("deadline_s", "lifespan_s", "max_blocking_s"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise ValueError(f"QoS {name} {value}: must be >= 0 or None (infinite)")

    @property
    def history_depth(self) -> int:
        """The KEEP_LAST depth the middleware uses: 0 (system default) becomes 1."""
        return max(1, self.depth)

    def describe(self) -> str:
        """The policies in ``parse_qos``'s syntax, e.g. ``reliable,volatile,keep_last:10``."""
        parts = [
            "reliable" if self.reliable else "best_effort",
            "transient_local" if self.transient_local else "volatile",
            "keep_all" if self.keep_all else f"keep_last:{self.history_depth}",
        ]
        for key, value in (
            ("deadline", self.deadline_s),
            ("lifespan", self.lifespan_s),
            ("max_blocking", self.max_blocking_s),
        ):
            if value is not None:
                parts.append(f"{key}:{value:g}")
        return ",".join(parts)


# ROS 2's named profiles (ros2/rmw, rmw/include/rmw/qos_profiles.h), as rmw_cyclonedds builds
# them. rclcpp's SystemDefaultsQoS() is rmw_qos_profile_system_default, SensorDataQoS() is
# rmw_qos_profile_sensor_data, QoS(10) / rclpy's qos_profile_default is rmw_qos_profile_default.
SYSTEM_DEFAULT = QoS(reliable=True, depth=0)  # reliable, volatile, keep last 1 on Cyclone
DEFAULT = QoS(reliable=True, depth=10)  # rmw_qos_profile_default
SENSOR_DATA = QoS(reliable=False, depth=5)  # rmw_qos_profile_sensor_data
SERVICES_DEFAULT = QoS(reliable=True, depth=10)  # rmw_qos_profile_services_default
PARAMETERS = QoS(reliable=True, depth=1000)  # rmw_qos_profile_parameters
PARAMETER_EVENTS = QoS(reliable=True, depth=1000)  # rmw_qos_profile_parameter_events
# rclcpp QoS(1).transient_local(): what robot_state_publisher publishes /robot_description with
# (ros/robot_state_publisher, src/robot_state_publisher.cpp, RobotStatePublisher constructor).
LATCHED = QoS(reliable=True, depth=1, transient_local=True)

PROFILES: dict[str, QoS] = {
    "system_default": SYSTEM_DEFAULT,
    "default": DEFAULT,
    "sensor_data": SENSOR_DATA,
    "services_default": SERVICES_DEFAULT,
    "parameters": PARAMETERS,
    "parameter_events": PARAMETER_EVENTS,
    "latched": LATCHED,
}
"""Profile names ``parse_qos`` accepts (ROS 2's, lower case as ``ros2 topic --qos-profile``)."""

# Spine's earlier names, kept for the nodes that import them.
SENSOR_QOS = SENSOR_DATA
LATCHED_QOS = LATCHED
RELIABLE_QOS = QoS(reliable=True, depth=50)  # diagnostics: transitions must not be lost


def command_qos(period_s: float, periods: float = 3.0) -> QoS:
    """Commands: BEST_EFFORT, KEEP_LAST 1, with a deadline of ``periods`` publish periods."""
    return QoS(reliable=False, depth=1, deadline_s=periods * period_s)


_FLAGS: dict[str, dict[str, Any]] = {
    "reliable": {"reliable": True},
    "best_effort": {"reliable": False},
    "volatile": {"transient_local": False},
    "transient_local": {"transient_local": True},
    "keep_all": {"keep_all": True},
}
_NUMBERS = {"keep_last": "depth", "depth": "depth"}
_DURATIONS = {"deadline": "deadline_s", "lifespan": "lifespan_s", "max_blocking": "max_blocking_s"}
# rclcpp's qos_overrides policy names and values (rclcpp/src/rclcpp/qos_overriding_options.cpp)
_MAPPING_VALUES: dict[str, dict[str, dict[str, Any]]] = {
    "reliability": {"reliable": {"reliable": True}, "best_effort": {"reliable": False},
                    "system_default": {"reliable": True}},
    "durability": {"volatile": {"transient_local": False}, "transient_local": {"transient_local": True},
                   "system_default": {"transient_local": False}},
    "history": {"keep_last": {"keep_all": False}, "keep_all": {"keep_all": True},
                "system_default": {"keep_all": False}},
}  # fmt: skip
QOS_SYNTAX = (
    "a profile name (" + ", ".join(PROFILES) + ") and/or comma-separated policies: "
    "reliable|best_effort, volatile|transient_local, keep_last:N|keep_all, deadline:S, lifespan:S, "
    "max_blocking:S (seconds; 'none' = infinite), e.g. 'sensor_data' or 'reliable,volatile,keep_last:1'"
)


def _duration(text: str, token: str) -> float | None:
    if text.lower() in ("none", "inf", "infinite"):
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"QoS {token!r}: {text!r} is not a number of seconds") from None


def _parse_token(token: str, first: bool) -> tuple[QoS | None, dict[str, Any]]:
    """One token of the string syntax -> (a whole profile, or None; fields it sets)."""
    key, sep, value = token.partition(":")
    key = key.strip().lower()
    if not sep and key in PROFILES:
        if not first:
            raise ValueError(f"QoS {token!r}: a profile name must come first")
        return PROFILES[key], {}
    if not sep and key in _FLAGS:
        return None, dict(_FLAGS[key])
    if sep and key in _NUMBERS:
        try:
            return None, {"depth": int(value), "keep_all": False}
        except ValueError:
            raise ValueError(f"QoS {token!r}: {value!r} is not an integer") from None
    if sep and key in _DURATIONS:
        return None, {_DURATIONS[key]: _duration(value.strip(), token)}
    raise ValueError(f"QoS {token!r} not understood; expected {QOS_SYNTAX}")


def _parse_mapping(spec: Mapping[str, Any], base: QoS) -> QoS:
    """rclcpp-style keys: profile, reliability, durability, history, depth, deadline, lifespan."""
    spec = {str(k).lower(): v for k, v in spec.items()}
    if "profile" in spec:
        base = parse_qos(str(spec.pop("profile")), base)
    fields: dict[str, Any] = {}
    for key, value in spec.items():
        if key in _MAPPING_VALUES:
            choice = _MAPPING_VALUES[key].get(str(value).lower())
            if choice is None:
                raise ValueError(f"QoS {key}: {value!r}, choose one of {sorted(_MAPPING_VALUES[key])}")
            fields.update(choice)
        elif key == "depth":
            fields["depth"] = int(value)
        elif key in _DURATIONS:
            fields[_DURATIONS[key]] = None if value is None else _duration(str(value), key)
        else:
            known = ["profile", *_MAPPING_VALUES, "depth", *_DURATIONS]
            raise ValueError(f"QoS key {key!r} not understood; use {known}")
    return replace(base, **fields)


def parse_qos(spec: str | Mapping[str, Any] | None, base: QoS = DEFAULT) -> QoS:
    """A per-topic QoS override (a node parameter) applied over ``base`` (the node's default).

    ``spec`` is one of:

    - ``None`` or ``""``: ``base`` unchanged;
    - a string: an optional profile name first (``system_default``, ``default``,
      ``sensor_data``, ``services_default``, ``parameters``, ``parameter_events``,
      ``latched``), then comma-separated policies, each overriding the profile (or ``base``):
      ``reliable`` | ``best_effort``, ``volatile`` | ``transient_local``, ``keep_last:N``
      (alias ``depth:N``) | ``keep_all``, ``deadline:S``, ``lifespan:S``, ``max_blocking:S``
      (seconds; ``none`` = infinite). E.g. ``"sensor_data"``, ``"reliable,volatile,keep_last:1"``,
      ``"default,transient_local"``, ``"best_effort,deadline:0.003"``;
    - a mapping with rclcpp's ``qos_overrides`` policy names: ``profile``, ``reliability``
      (reliable / best_effort / system_default), ``durability`` (volatile / transient_local /
      system_default), ``history`` (keep_last / keep_all), ``depth``, ``deadline``, ``lifespan``
      (seconds), ``max_blocking``.

    Raises ``ValueError`` naming the token it does not understand.
    """
    if spec is None:
        return base
    if isinstance(spec, Mapping):
        return _parse_mapping(spec, base)
    tokens = [t.strip() for t in str(spec).split(",") if t.strip()]
    qos, fields = base, {}
    for i, token in enumerate(tokens):
        profile, update = _parse_token(token, first=i == 0)
        if profile is not None:
            qos = profile
        fields.update(update)
    return replace(qos, **fields)


def incompatible_policies(offered: QoS, requested: QoS) -> list[str]:
    """DDS's request-vs-offered rules: the policies (ROS 2 / DDS names) for which a writer
    offering ``offered`` cannot serve a reader requesting ``requested``; empty if they match.

    RELIABILITY: a best-effort writer never serves a reliable reader. DURABILITY: a volatile
    writer never serves a transient-local reader. DEADLINE: the writer's deadline must not
    exceed the reader's (None is infinite). Liveliness is AUTOMATIC with an infinite lease on
    both sides, so it always matches.
    """
    bad = []
    if requested.reliable and not offered.reliable:
        bad.append("RELIABILITY")
    if requested.transient_local and not offered.transient_local:
        bad.append("DURABILITY")
    inf = float("inf")
    offered_deadline = inf if offered.deadline_s is None else offered.deadline_s
    if offered_deadline > (inf if requested.deadline_s is None else requested.deadline_s):
        bad.append("DEADLINE")
    return bad


# --- size caps ----------------------------------------------------------------------------
DEFAULT_MAX_BYTES = 64 * 1024
MAX_BYTES: dict[str, int] = {
    "std_msgs/msg/Bool": 64,  # 4-byte encapsulation header + 1 byte, padded
    "geometry_msgs/msg/PointStamped": 1024,  # 3 doubles, a stamp and a frame_id
    "sensor_msgs/msg/JointState": 64 * 1024,  # ~300 joints: name + position, velocity, effort
    "std_msgs/msg/Float64MultiArray": 64 * 1024,  # ~8000 doubles
    "trajectory_msgs/msg/JointTrajectory": 256 * 1024,  # e.g. 7 joints x 4 arrays x 1000 points
    "diagnostic_msgs/msg/DiagnosticArray": 64 * 1024,
}
"""Largest serialized sample (CDR bytes incl. the 4-byte header) a port delivers, per type;
larger ones are dropped before they are deserialized and counted (``PortHealth.oversize``).
Types not listed: ``DEFAULT_MAX_BYTES``. Adapters take overrides (``DdsPort(max_bytes=...)``)."""


def max_bytes(msgtype: str, overrides: Mapping[str, int] | None = None) -> int:
    """The size cap of ``msgtype`` (bytes): ``overrides``, else ``MAX_BYTES``, else the default."""
    if overrides and msgtype in overrides:
        return int(overrides[msgtype])
    return MAX_BYTES.get(msgtype, DEFAULT_MAX_BYTES)


# --- health -------------------------------------------------------------------------------
@dataclass(frozen=True)
class QosEvent:
    """An incompatible-QoS match: one of our endpoints and a peer that DDS will not connect.

    Attributes:
        topic: the ROS 2 topic name (``/spine/estop``).
        side: our endpoint: ``"subscription"`` (it requested more than a publisher offers: no
            messages will be received from that publisher) or ``"publisher"`` (a subscription
            requests more than it offers: no messages will be sent to it).
        policy: the policy DDS named (``RELIABILITY``, ``DURABILITY``, ``DEADLINE``,
            ``LIVELINESS``, ...), as ROS 2's "Last incompatible policy".
        ours: our endpoint's policies (``QoS.describe`` syntax).
        peer: the peer's policies, or ``"unknown"`` when it left before it could be looked up.
        peer_id: the peer endpoint's GUID (``""`` when unknown).
    """

    topic: str
    side: str
    policy: str
    ours: str
    peer: str
    peer_id: str = ""

    def message(self) -> str:
        """One log line, in rclcpp's words plus both sides' policies."""
        if self.side == "subscription":
            what = "a publisher offering incompatible QoS; no messages will be received from it"
            who = f"subscription {self.ours} <- publisher {self.peer}"
        else:
            what = "a subscription requesting incompatible QoS; no messages will be sent to it"
            who = f"publisher {self.ours} -> subscription {self.peer}"
        peer = f" [{self.peer_id}]" if self.peer_id else ""
        return f"QoS incompatible on {self.topic}: {what}. Policy {self.policy}: {who}{peer}"


@dataclass
class PortHealth:
    """What a port saw go wrong, cumulative since it was created.

    Attributes:
        incompatible_qos: one ``QosEvent`` per (topic, our side, peer endpoint), in the order
            seen (peers are never removed: a peer that left is still listed).
        oversize: topic -> samples dropped unread because they exceeded the type's size cap.
        malformed: topic -> samples dropped because they did not deserialize.
    """

    incompatible_qos: list[QosEvent] = field(default_factory=list)
    oversize: dict[str, int] = field(default_factory=dict)
    malformed: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No incompatible QoS seen (dropped samples are counted, not failures)."""
        return not self.incompatible_qos

    def copy(self) -> PortHealth:
        return PortHealth(list(self.incompatible_qos), dict(self.oversize), dict(self.malformed))

    def diagnostic_values(self) -> dict[str, object]:
        """Flat key/values for a ``diagnostic_msgs/KeyValue`` list (totals, then per topic)."""
        values: dict[str, object] = {
            "qos_incompatible": len(self.incompatible_qos),
            "dropped_oversize": sum(self.oversize.values()),
            "dropped_malformed": sum(self.malformed.values()),
        }
        for i, event in enumerate(self.incompatible_qos):
            values[f"qos_incompatible[{i}]"] = event.message()
        for topic, n in sorted(self.oversize.items()):
            values[f"dropped_oversize[{topic}]"] = n
        for topic, n in sorted(self.malformed.items()):
            values[f"dropped_malformed[{topic}]"] = n
        return values

    def add_qos_event(self, event: QosEvent, node: str) -> bool:
        """Record ``event`` once per (topic, side, peer); print it to stderr the first time."""
        key = (event.topic, event.side, event.peer_id or event.peer)
        if any((e.topic, e.side, e.peer_id or e.peer) == key for e in self.incompatible_qos):
            return False
        self.incompatible_qos.append(event)
        print(f"[{node}] ERROR: {event.message()}", file=sys.stderr, flush=True)
        return True

    def count_drop(self, kind: str, topic: str) -> None:
        """Count one dropped sample: ``kind`` is ``"oversize"`` or ``"malformed"``."""
        counts = self.oversize if kind == "oversize" else self.malformed
        counts[topic] = counts.get(topic, 0) + 1


class Received(NamedTuple):
    """When a message was published (source clock) and taken here, ns since the Unix epoch."""

    source_ns: int
    received_ns: int


Callback = Callable[[Any, Received], None]


class Publisher(Protocol):
    def publish(self, msg: Any) -> None: ...


class Timer(Protocol):
    """A periodic timer; the port counts its ticks and overruns (ticks that started more than
    one period late, i.e. missed a deadline)."""

    period_s: float
    ticks: int
    overruns: int

    def cancel(self) -> None: ...


class Port(Protocol):
    """What a node may do. One port per node (one ROS 2 node / DDS participant)."""

    name: str

    def publisher(self, topic: str, msgtype: str, qos: QoS) -> Publisher: ...

    def subscribe(self, topic: str, msgtype: str, callback: Callback, qos: QoS) -> None: ...

    def timer(
        self,
        period_s: float,
        callback: Callable[[], None],
        prepare: Callable[[], None] | None = None,
        prepare_s: float = 0.0,
    ) -> Timer:
        """Call ``callback`` every ``period_s``; ``prepare`` (optional) ``prepare_s`` before each
        deadline, where the adapter can (Cyclone DDS: yes; in-process: just before ``callback``;
        rclpy: never, its executor has no such hook)."""
        ...

    def now_ns(self) -> int:
        """Wall-clock time (ns since the Unix epoch; simulated in-process)."""
        ...

    def monotonic_ns(self) -> int:
        """A clock that never goes back (ns, arbitrary origin): what ages are measured on."""
        ...

    def parameter(self, name: str, default: Any) -> Any:
        """Declare parameter ``name`` and return its value (``default`` when not set)."""
        ...

    def spin(self, until: Callable[[], bool] | None = None) -> None:
        """Run callbacks and timers until ``until()`` is true or ``shutdown()`` is called."""
        ...

    def shutdown(self) -> None: ...

    def health(self) -> PortHealth:
        """A snapshot of what went wrong so far: incompatible QoS (each also printed to stderr
        once), samples dropped for size or as malformed. Cheap; poll it at diagnostics rate."""
        ...
