"""rclpy adapter of the port, for a machine with ROS 2 (rclpy is not on PyPI; it comes with
a ROS 2 install). Thin on purpose: ROS 2 does the executor, QoS, parameters and clock.

Not exercised on our machines (no rclpy); the Cyclone DDS adapter is the one tested here, and
a ROS 2 node on ``rmw_cyclonedds_cpp`` talks to either. Importing this module raises
``ImportError`` without rclpy, which ``ros_nodes.node.make_port`` uses to fall back to DDS.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import rclpy  # ImportError without ROS 2: make_port falls back to Cyclone DDS
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.duration import Duration
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node as RosNode
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from deploy.logs.messages import TYPESTORE
from ros_nodes.params import ParameterStore
from ros_nodes.port import Callback, PortHealth, QoS, Received


def ros_qos(qos: QoS) -> QoSProfile:
    profile = QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=qos.depth,
        reliability=ReliabilityPolicy.RELIABLE if qos.reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if qos.transient_local else DurabilityPolicy.VOLATILE,
    )
    if qos.deadline_s is not None:
        profile.deadline = Duration(nanoseconds=round(qos.deadline_s * 1e9))
    return profile


def _ros_class(msgtype: str) -> Any:
    """The generated ROS 2 message class of ``pkg/msg/Type``."""
    import importlib

    pkg, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{pkg}.msg"), name)


class _Timer:
    def __init__(self, timer: Any, period_s: float) -> None:
        self._timer, self.period_s, self.ticks, self.overruns = timer, period_s, 0, 0

    def cancel(self) -> None:
        self._timer.cancel()


class RclpyPort:
    """One rclpy node; messages cross as CDR bytes (``raw=True``), decoded by rosbags."""

    def __init__(self, name: str, params: ParameterStore, argv: Sequence[str]) -> None:
        if not rclpy.ok():
            rclpy.init(args=["spine", *argv])
        self.name = name
        self.params = params
        self.node = RosNode(name)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._stop = False

    def publisher(self, topic: str, msgtype: str, qos: QoS) -> Any:
        pub = self.node.create_publisher(_ros_class(msgtype), topic, ros_qos(qos))

        class _Pub:
            def publish(self, msg: Any) -> None:
                pub.publish(TYPESTORE.serialize_cdr(msg, msgtype).tobytes())  # rclpy takes bytes

        return _Pub()

    def subscribe(self, topic: str, msgtype: str, callback: Callback, qos: QoS) -> None:
        def on_raw(data: bytes) -> None:
            now = self.now_ns()
            callback(TYPESTORE.deserialize_cdr(data, msgtype), Received(now, now))

        self.node.create_subscription(_ros_class(msgtype), topic, on_raw, ros_qos(qos), raw=True)

    def timer(
        self,
        period_s: float,
        callback: Callable[[], None],
        prepare: Callable[[], None] | None = None,
        prepare_s: float = 0.0,
    ) -> _Timer:
        """``prepare`` is not called: rclpy's executor has no hook before a timer's deadline."""
        holder: list[_Timer] = []

        def tick() -> None:
            holder[0].ticks += 1
            callback()

        holder.append(_Timer(self.node.create_timer(period_s, tick), period_s))
        return holder[0]

    def now_ns(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()

    def health(self) -> PortHealth:
        """rclpy reports incompatible QoS in its own log (rcl's QoS event warnings); this thin
        adapter does not count them (no rclpy here to test it against), so it reports none."""
        return PortHealth()

    def parameter(self, name: str, default: Any) -> Any:
        """Declared as a ROS parameter; ``--params-file`` / ``-p`` reach it through rclpy."""
        value = self.params.get(name, default)
        descriptor = ParameterDescriptor(dynamic_typing=True)  # e.g. an empty list default
        return self.node.declare_parameter(name, value, descriptor).value

    def spin(self, until: Callable[[], bool] | None = None) -> None:
        self._stop = False
        while rclpy.ok() and not self._stop and not (until and until()):
            self.executor.spin_once(timeout_sec=0.05)

    def shutdown(self) -> None:
        self._stop = True
