"""The transport port every Spine node is written against: publish, subscribe, timer, clock,
parameters. Adapters: ``ros_nodes.dds`` (Cyclone DDS with ROS 2's wire conventions),
``ros_nodes.inprocess`` (deterministic, simulated clock, for unit tests) and
``ros_nodes.rclpy_port`` (a ROS 2 install).

Messages are always ``rosbags`` message objects (``deploy.messages``); adapters convert.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol


@dataclass(frozen=True)
class QoS:
    """The QoS a topic is published / subscribed with (ROS 2's vocabulary).

    Attributes:
        reliable: RELIABLE if True, else BEST_EFFORT.
        depth: KEEP_LAST history depth.
        transient_local: TRANSIENT_LOCAL durability (late joiners get the last ``depth``
            samples) if True, else VOLATILE.
        deadline_s: expected maximum time between samples (s); None: no deadline.
    """

    reliable: bool = False
    depth: int = 1
    transient_local: bool = False
    deadline_s: float | None = None


SENSOR_QOS = QoS(reliable=False, depth=5)  # rclpy's qos_profile_sensor_data
LATCHED_QOS = QoS(reliable=True, depth=1, transient_local=True)  # goals, e-stop
RELIABLE_QOS = QoS(reliable=True, depth=50)  # diagnostics: transitions must not be lost


def command_qos(period_s: float, periods: float = 3.0) -> QoS:
    """Commands: BEST_EFFORT, KEEP_LAST 1, with a deadline of ``periods`` publish periods."""
    return QoS(reliable=False, depth=1, deadline_s=periods * period_s)


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

    def parameter(self, name: str, default: Any) -> Any:
        """Declare parameter ``name`` and return its value (``default`` when not set)."""
        ...

    def spin(self, until: Callable[[], bool] | None = None) -> None:
        """Run callbacks and timers until ``until()`` is true or ``shutdown()`` is called."""
        ...

    def shutdown(self) -> None: ...
