"""The transport port every Spine node is written against: publish, subscribe, timer, clock,
parameters. Adapters: ``ros_nodes.dds`` (Cyclone DDS with ROS 2's wire conventions),
``ros_nodes.inprocess`` (deterministic, simulated clock, for unit tests) and
``ros_nodes.rclpy_port`` (a ROS 2 install).

Messages are always ``rosbags`` message objects (``deploy.logs.messages``); adapters convert.

Re-exported here for the nodes and adapters: ``QoS``, ROS 2's named profiles and ``parse_qos``
(``ros_nodes.qos``), the size caps and ``PortHealth`` / ``QosEvent`` (``ros_nodes.port_health``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from ros_nodes.port_health import (  # noqa: F401  (re-exported)
    DEFAULT_MAX_BYTES,
    MAX_BYTES,
    PortHealth,
    QosEvent,
    max_bytes,
)
from ros_nodes.qos import (  # noqa: F401  (re-exported)
    DEFAULT,
    LATCHED,
    LATCHED_QOS,
    PARAMETER_EVENTS,
    PARAMETERS,
    PROFILES,
    QOS_SYNTAX,
    RELIABLE_QOS,
    SENSOR_DATA,
    SENSOR_QOS,
    SERVICES_DEFAULT,
    SYSTEM_DEFAULT,
    QoS,
    command_qos,
    incompatible_policies,
    parse_qos,
)


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
