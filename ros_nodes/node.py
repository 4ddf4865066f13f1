"""Node base class (lifecycle style) and the console-script runner shared by every node.

A node is built on a port, then ``configure()`` (read parameters, load models, create
publishers and subscriptions), ``activate()`` (start timers), ``deactivate()`` (stop timers,
fall back) and ``finish()`` (write files). ``run_node`` drives those transitions on any transport::

    spine-safety-node --ros-args --params-file configs/ros/stack.yaml -p rate_hz:=1000.0
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from deploy.runtime.realtime import realtime_setup
from ros_nodes.params import ParameterError, ParameterStore, load_params
from ros_nodes.port import Port, QoS, Timer, parse_qos

TRANSPORTS = ("auto", "dds", "rclpy")


class Node:
    """Base of Spine's nodes. Subclasses set ``name`` and ``Params`` (a dataclass)."""

    name: ClassVar[str]
    Params: ClassVar[type]

    def __init__(self, port: Port) -> None:
        self.port = port
        store = getattr(port, "params", None) or ParameterStore(self.name)
        self.params: Any = load_params(store, port.parameter, self.Params)
        self.timers: list[Timer] = []
        self.done = False  # set by a node that has finished its work (the runner then stops)

    def configure(self) -> None:
        """Load what the node needs and create its publishers and subscriptions."""

    def activate(self) -> None:
        """Start the node's timers."""

    def deactivate(self) -> None:
        """Stop the timers (subclasses also switch to their fallback)."""
        for t in self.timers:
            t.cancel()
        self.timers.clear()

    def finish(self) -> None:
        """Write results and close files; called once at exit."""


def qos_param(params: Any, name: str, default: QoS) -> QoS:
    """The QoS of one endpoint: ``default`` with the node's ``<name>`` parameter applied over
    it (``ros_nodes.port.parse_qos``: a profile name and/or policies); a bad value raises a
    ``ParameterError`` naming the parameter."""
    try:
        return parse_qos(getattr(params, name), default)
    except ValueError as e:
        raise ParameterError(f"{name}: {e}") from None


def make_port(name: str, store: ParameterStore, transport: str, argv: Sequence[str]) -> Port:
    """The port for ``transport``: ``auto`` takes rclpy when it is importable, else Cyclone DDS."""
    if transport in ("auto", "rclpy"):
        try:
            from ros_nodes.rclpy_port import RclpyPort
        except ImportError:
            if transport == "rclpy":
                raise
        else:
            return RclpyPort(name, store, list(argv))
    from ros_nodes.dds import DdsPort

    enclave = security_enclave(name, store.enclave)
    return DdsPort(name, store, spin_us=float(store.get("spin_us", 0.0)), enclave=enclave)


def security_enclave(node: str, requested: str = "") -> Path | None:
    """The DDS Security enclave this node runs with, from ROS 2's environment variables (the
    ones rclpy reads too): ``ROS_SECURITY_ENABLE=true`` with ``ROS_SECURITY_KEYSTORE``; the
    enclave is ``ROS_SECURITY_ENCLAVE_OVERRIDE``, else ``requested`` (``--enclave``), else the
    node's own in Spine's permissions table. Without them: None, and a warning that anyone on
    the domain can command the robot."""
    keystore = os.environ.get("ROS_SECURITY_KEYSTORE", "")
    if os.environ.get("ROS_SECURITY_ENABLE", "").lower() != "true" or not keystore:
        print(
            f"{node}: WARNING: running WITHOUT DDS Security: any participant on this DDS domain can "
            "publish commands, policy commands and e-stop releases (docs/security.md: spine-keystore, "
            "ROS_SECURITY_ENABLE=true, ROS_SECURITY_KEYSTORE)",
            file=sys.stderr,
        )
        return None
    from ros_nodes.security.keystore import enclave_dir
    from ros_nodes.security.policy import node_enclave

    override = os.environ.get("ROS_SECURITY_ENCLAVE_OVERRIDE", "") or requested
    enclave = enclave_dir(Path(keystore), override) if override else node_enclave(Path(keystore), node)
    if not enclave.is_dir():
        raise FileNotFoundError(
            f"{node}: enclave {enclave} does not exist (spine-keystore create {keystore})"
        )
    return enclave


def run_node(cls: type[Node], argv: Sequence[str] | None = None) -> int:
    """Console-script entry point: parameters, port, lifecycle, spin until done or signalled."""
    argv = list(sys.argv[1:] if argv is None else argv)
    store = ParameterStore(cls.name)
    prog = f"spine-{cls.name.replace('spine_', '').replace('_', '-')}"
    try:
        rest = store.parse_args(argv)
    except ParameterError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    ap = argparse.ArgumentParser(prog=prog, description=(cls.__doc__ or "").splitlines()[0])
    ap.add_argument("--transport", choices=TRANSPORTS, default="auto", help="default: %(default)s")
    args = ap.parse_args(rest)
    port: Port | None = None
    node: Node | None = None
    try:
        port = make_port(cls.name, store, args.transport, argv)
        node = cls(port)
        node.configure()
    except (ParameterError, FileNotFoundError, ValueError, KeyError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    stop = port.shutdown
    signal.signal(signal.SIGTERM, lambda *_: stop())
    signal.signal(signal.SIGINT, lambda *_: stop())
    try:
        node.activate()
        # everything is loaded: keep the collector off the long-lived objects (and real-time
        # scheduling for a node that asks for it: the safety node's rt_priority)
        realtime_setup(getattr(node.params, "rt_priority", 0) or None)
        port.spin(until=lambda: node.done)
    finally:
        node.deactivate()
        node.finish()
        close = getattr(port, "close", None)
        if callable(close):  # the DDS participant goes now, not in the interpreter's teardown
            close()
    return 0
