"""In-process adapter of the port: several nodes on one simulated clock, deterministic.

Every message goes through rosbags' CDR serializer and back (as on the wire), so a node never
shares an array with another. Time only moves in ``InProcessBus.run_for``: due timers fire in
time order, and messages published by a callback are delivered before the next timer fires.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable
from typing import Any

from deploy.messages import TYPESTORE
from ros_nodes.params import ParameterStore
from ros_nodes.port import Callback, QoS, Received


class InProcessBus:
    """The shared 'network' and clock. ``start_ns``: the simulated wall clock at start."""

    def __init__(self, start_ns: int = 1_700_000_000_000_000_000) -> None:
        self.now_ns = start_ns
        self._subs: dict[str, list[tuple[InProcessPort, str, Callback, QoS]]] = {}
        self._latched: dict[str, deque[bytes]] = {}
        self._types: dict[str, str] = {}
        self._timers: list[tuple[int, int, _Timer]] = []
        self._seq = itertools.count()
        self._queue: deque[tuple[Callback, str, bytes, int]] = deque()

    def port(self, name: str, params: ParameterStore | None = None) -> InProcessPort:
        return InProcessPort(self, name, params or ParameterStore(name))

    # --- called by ports ----------------------------------------------------------------
    def _publish(self, topic: str, msgtype: str, data: bytes, qos: QoS) -> None:
        known = self._types.setdefault(topic, msgtype)
        if known != msgtype:
            raise TypeError(f"topic {topic}: published as {msgtype}, already carries {known}")
        if qos.transient_local:
            self._latched.setdefault(topic, deque(maxlen=qos.depth)).append(data)
        for port, sub_type, cb, _ in self._subs.get(topic, []):
            if port.alive:
                self._queue.append((cb, sub_type, data, self.now_ns))

    def _subscribe(self, port: InProcessPort, topic: str, msgtype: str, cb: Callback, qos: QoS) -> None:
        self._subs.setdefault(topic, []).append((port, msgtype, cb, qos))
        if qos.transient_local:
            for data in self._latched.get(topic, ()):
                self._queue.append((cb, msgtype, data, self.now_ns))

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
    def __init__(self, bus: InProcessBus, topic: str, msgtype: str, qos: QoS) -> None:
        self.bus, self.topic, self.msgtype, self.qos = bus, topic, msgtype, qos

    def publish(self, msg: Any) -> None:
        self.bus._publish(self.topic, self.msgtype, TYPESTORE.serialize_cdr(msg, self.msgtype), self.qos)


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

    def publisher(self, topic: str, msgtype: str, qos: QoS) -> _Writer:
        return _Writer(self.bus, topic, msgtype, qos)

    def subscribe(self, topic: str, msgtype: str, callback: Callback, qos: QoS) -> None:
        self.bus._subscribe(self, topic, msgtype, callback, qos)

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

    def parameter(self, name: str, default: Any) -> Any:
        return self.params.get(name, default)

    def spin(self, until: Callable[[], bool] | None = None) -> None:
        raise RuntimeError("in-process nodes are driven by InProcessBus.run_for, not spin()")

    def shutdown(self) -> None:
        """Stop this node: its timers stop firing and it receives nothing more (a killed process)."""
        self.alive = False

    def discover_topics(self) -> dict[str, tuple[str, QoS]]:
        return {t: (ty, QoS(reliable=True, depth=100)) for t, ty in self.bus.topics().items()}
