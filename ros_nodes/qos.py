"""QoS in ROS 2's vocabulary: ``QoS``, ROS 2's named profiles as rmw_cyclonedds builds them,
``parse_qos`` for a per-topic override held in a node parameter, and ``incompatible_policies``
(DDS's matching rules). Shared by every port adapter (``ros_nodes.port`` re-exports it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

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
