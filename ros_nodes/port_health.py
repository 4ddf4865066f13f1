"""What a port saw go wrong: per-type size caps on incoming samples (``MAX_BYTES``) and
``PortHealth`` / ``QosEvent``, what ``Port.health()`` returns (``ros_nodes.port`` re-exports
them)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

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
