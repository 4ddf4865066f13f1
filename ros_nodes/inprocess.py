"""In-process adapter of the port: several nodes on one simulated clock, deterministic.

Every message goes through rosbags' CDR serializer and back (as on the wire), so a node never
shares an array with another. Time only moves in ``InProcessBus.run_for``: due timers fire in
time order, and messages published by a callback are delivered before the next timer fires.

QoS as DDS matches it (``ros_nodes.port.incompatible_policies``): a publisher and a
subscription whose profiles do not match never connect, and both ports report it in
``health()`` (and on stderr), as the Cyclone DDS adapter does. Transient-local publishers keep
their last ``depth`` messages for transient-local subscriptions that come later. A message
larger than its type's size cap (``ros_nodes.port_health.MAX_BYTES``) is dropped and counted.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable
from typing import Any

from deploy.logs.messages import TYPESTORE
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


class InProcessBus:
    """The shared 'network' and clock. ``start_ns``: the simulated wall clock at start."""

    def __init__(self, start_ns: int = 1_700_000_000_000_000_000) -> None:
        self.now_ns = start_ns
        self._subs: dict[str, list[_Sub]] = {}
        self._writers: dict[str, list[_Writer]] = {}
        self._unmatched: set[tuple[int, int]] = set()  # (id(writer), id(sub)) that never connect
        self._types: dict[str, str] = {}
        self._timers: list[tuple[int, int, _Timer]] = []
        self._seq = itertools.count()
        self._queue: deque[tuple[Callback, str, bytes, int]] = deque()

    def port(self, name: str, params: ParameterStore | None = None) -> InProcessPort:
        return InProcessPort(self, name, params or ParameterStore(name))

    # --- called by ports ----------------------------------------------------------------
    def _match(self, writer: _Writer, sub: _Sub) -> bool:
        """Whether ``writer`` serves ``sub``; the first time they do not, both ports report it."""
        bad = incompatible_policies(writer.qos, sub.qos)
        if bad:
            self._unmatched.add((id(writer), id(sub)))
            policy, ours, theirs = ", ".join(bad), sub.qos.describe(), writer.qos.describe()
            sub.port._health.add_qos_event(
                QosEvent(
                    sub.topic, "subscription", policy, ours, theirs, f"{writer.port.name}:{id(writer):x}"
                ),
                sub.port.name,
            )
            writer.port._health.add_qos_event(
                QosEvent(sub.topic, "publisher", policy, theirs, ours, f"{sub.port.name}:{id(sub):x}"),
                writer.port.name,
            )
        return not bad

    def _add_writer(self, writer: _Writer) -> None:
        self._writers.setdefault(writer.topic, []).append(writer)
        for sub in self._subs.get(writer.topic, []):
            self._match(writer, sub)

    def _enqueue(self, sub: _Sub, data: bytes) -> None:
        if len(data) > sub.max_bytes:
            sub.port._health.count_drop("oversize", sub.topic)
            return
        self._queue.append((sub.callback, sub.msgtype, data, self.now_ns))

    def _publish(self, writer: _Writer, data: bytes) -> None:
        topic, msgtype = writer.topic, writer.msgtype
        known = self._types.setdefault(topic, msgtype)
        if known != msgtype:
            raise TypeError(f"topic {topic}: published as {msgtype}, already carries {known}")
        if writer.qos.transient_local:
            writer.latched.append(data)
        for sub in self._subs.get(topic, []):
            if sub.port.alive and (id(writer), id(sub)) not in self._unmatched:
                self._enqueue(sub, data)

    def _subscribe(self, sub: _Sub) -> None:
        self._subs.setdefault(sub.topic, []).append(sub)
        for writer in self._writers.get(sub.topic, []):
            if self._match(writer, sub) and sub.qos.transient_local and writer.port.alive:
                for data in writer.latched:
                    self._enqueue(sub, data)

    def _add_timer(self, timer: _Timer) -> None:
        heapq.heappush(self._timers, (timer.next_ns, next(self._seq), timer))

    # --- driving --------------------------------------------------------------------------
    def deliver(self) -> None:
        """Run the callbacks of every message published so far (and of those they publish)."""
        while self._queue:
            cb, msgtype, data, sent = self._queue.popleft()
            cb(TYPESTORE.deserialize_cdr(data, msgtype), Received(sent, self.now_ns))

    def run_for(self, seconds: float) -> None:
        """Advance the clock by ``seconds``, firing timers in order and delivering messages."""
        end = self.now_ns + round(seconds * 1e9)
        self.deliver()
        while self._timers and self._timers[0][0] <= end:
            t_ns, _, timer = heapq.heappop(self._timers)
            if not (timer.active and timer.port.alive):
                continue
            self.now_ns = t_ns
            timer.fire()
            self._add_timer(timer)
            self.deliver()
        self.now_ns = end

    def topics(self) -> dict[str, str]:
        return dict(self._types)


class _Writer:
    def __init__(self, port: InProcessPort, topic: str, msgtype: str, qos: QoS) -> None:
        self.port, self.bus, self.topic, self.msgtype, self.qos = port, port.bus, topic, msgtype, qos
        self.latched: deque[bytes] = deque(maxlen=qos.history_depth)  # transient local only

    def publish(self, msg: Any) -> None:
        self.bus._publish(self, TYPESTORE.serialize_cdr(msg, self.msgtype))


class _Sub:
    def __init__(self, port: InProcessPort, topic: str, msgtype: str, callback: Callback, qos: QoS) -> None:
        self.port, self.topic, self.msgtype, self.callback, self.qos = port, topic, msgtype, callback, qos
        self.max_bytes = max_bytes(msgtype, port.max_bytes)


class _Timer:
    def __init__(
        self,
        port: InProcessPort,
        period_s: float,
        callback: Callable[[], None],
        prepare: Callable[[], None] | None = None,
    ) -> None:
        self.port = port
        self.prepare = prepare  # simulated time: runs right before the callback
        self.period_s = period_s
        self.period_ns = round(period_s * 1e9)
        self.callback = callback
        self.next_ns = port.bus.now_ns + self.period_ns
        self.ticks = 0
        self.overruns = 0  # never: simulated time waits for every tick
        self.active = True

    def cancel(self) -> None:
        self.active = False

    def fire(self) -> None:
        self.next_ns += self.period_ns
        self.ticks += 1
        if self.prepare is not None:
            self.prepare()
        self.callback()


class InProcessPort:
    """One node's view of an ``InProcessBus``."""

    def __init__(self, bus: InProcessBus, name: str, params: ParameterStore) -> None:
        self.bus, self.name, self.params = bus, name, params
        self.alive = True
        self.max_bytes: dict[str, int] = {}
        """Per-type overrides of ``ros_nodes.port_health.MAX_BYTES`` (bytes); set before subscribing."""
        self._health = PortHealth()

    def publisher(self, topic: str, msgtype: str, qos: QoS) -> _Writer:
        writer = _Writer(self, topic, msgtype, qos)
        self.bus._add_writer(writer)
        return writer

    def subscribe(self, topic: str, msgtype: str, callback: Callback, qos: QoS) -> None:
        self.bus._subscribe(_Sub(self, topic, msgtype, callback, qos))

    def health(self) -> PortHealth:
        """Incompatible QoS seen (matched when endpoints are created) and oversized drops."""
        return self._health.copy()

    def timer(
        self,
        period_s: float,
        callback: Callable[[], None],
        prepare: Callable[[], None] | None = None,
        prepare_s: float = 0.0,
    ) -> _Timer:
        t = _Timer(self, period_s, callback, prepare)
        self.bus._add_timer(t)
        return t

    def now_ns(self) -> int:
        return self.bus.now_ns

    def monotonic_ns(self) -> int:
        return self.bus.now_ns  # the simulated clock never goes back

    def parameter(self, name: str, default: Any) -> Any:
        return self.params.get(name, default)

    def spin(self, until: Callable[[], bool] | None = None) -> None:
        raise RuntimeError("in-process nodes are driven by InProcessBus.run_for, not spin()")

    def shutdown(self) -> None:
        """Stop this node: its timers stop firing and it receives nothing more (a killed process)."""
        self.alive = False

    def discover_topics(self) -> dict[str, tuple[str, QoS]]:
        """Published topics: topic -> (type, a QoS every publisher serves), as the DDS port."""
        found = {}
        for topic, msgtype in self.bus.topics().items():
            offered = [w.qos for w in self.bus._writers.get(topic, [])]
            reliable = all(q.reliable for q in offered)
            transient_local = all(q.transient_local for q in offered)
            found[topic] = (msgtype, QoS(reliable=reliable, depth=100, transient_local=transient_local))
        return found
