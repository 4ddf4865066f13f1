"""Recorder node: every topic of the domain into a rosbag2 (MCAP by default).

Discovers published topics whose type Spine knows (``ros_nodes.idl``) every ``discover_s``
and subscribes with the publisher's reliability and durability; each message is written with
its receive time, like ``ros2 bag record``. The bag is rosbags' rosbag2 (version 9, standard
type definitions), readable by ``rosbags`` and ``ros2 bag``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rosbags.rosbag2 import Writer

from deploy.logs import messages as m
from deploy.logs.writer import STORAGE
from ros_nodes.node import Node, run_node
from ros_nodes.port import QoS, Received


@dataclass
class RecorderParams:
    out: str = "runs/stack/bag"
    """Bag folder to create (must not exist)."""
    storage: str = "mcap"
    """mcap or sqlite3."""
    topics: list[str] = field(default_factory=list)
    """Topics to record; empty: every topic discovered (types Spine knows)."""
    discover_s: float = 0.2
    """How often to look for new topics (s)."""


class RecorderNode(Node):
    """Recorder node: writes every topic to a rosbag2 (MCAP)."""

    name = "spine_recorder"
    Params = RecorderParams

    def configure(self) -> None:
        p = self.params
        if p.storage not in STORAGE:
            raise ValueError(f"parameter 'storage': {p.storage!r}, choose one of {sorted(STORAGE)}")
        if Path(p.out).exists():
            raise ValueError(f"parameter 'out': {p.out} exists; choose another folder")
        Path(p.out).parent.mkdir(parents=True, exist_ok=True)
        self.writer = Writer(Path(p.out), version=9, storage_plugin=STORAGE[p.storage])
        self.writer.open()
        self.conns: dict[str, Any] = {}
        self.counts: dict[str, int] = {}

    def activate(self) -> None:
        self._discover()
        self.timers = [self.port.timer(self.params.discover_s, self._discover)]

    def _discover(self) -> None:
        found = self.port.discover_topics()  # type: ignore[attr-defined]
        wanted = self.params.topics or sorted(found)
        for topic in wanted:
            if topic in self.conns or topic not in found:
                continue
            msgtype, qos = found[topic]
            self.conns[topic] = self.writer.add_connection(topic, msgtype, typestore=m.TYPESTORE)
            self.counts[topic] = 0
            sub_qos = QoS(reliable=qos.reliable, depth=100, transient_local=qos.transient_local)
            self.port.subscribe(topic, msgtype, self._writer_for(topic, msgtype), sub_qos)

    def _writer_for(self, topic: str, msgtype: str) -> Any:
        conn = self.conns[topic]

        def write(msg: Any, rx: Received) -> None:
            self.writer.write(conn, rx.received_ns, m.TYPESTORE.serialize_cdr(msg, msgtype))
            self.counts[topic] += 1

        return write

    def finish(self) -> None:
        self.writer.close()
        total = sum(self.counts.values())
        print(f"spine-recorder: {total} messages on {len(self.counts)} topics -> {self.params.out}")


def main(argv: list[str] | None = None) -> int:
    return run_node(RecorderNode, argv)


if __name__ == "__main__":
    sys.exit(main())
