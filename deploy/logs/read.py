"""Read a robot log (rosbag2 sqlite3 / MCAP, ROS 1 bag) into per-topic time series.

JointState is matched by joint name, never by index. Messages with a header are stamped by
``header.stamp``; others (Float64MultiArray) by the time the bag recorded them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.highlevel import AnyReader

from deploy.logs import messages as m


class LogError(ValueError):
    """The log cannot be read as asked; the message names the file, topic or joint."""


@dataclass
class Series:
    """``values[i]`` was observed at ``stamps[i]`` (ns)."""

    stamps: np.ndarray  # (N,) int64 ns
    values: np.ndarray  # (N, D) float64

    def __len__(self) -> int:
        return len(self.stamps)

    def hold(self, stamp: int) -> np.ndarray | None:
        """Sample-and-hold: the latest value at or before ``stamp`` (None before the first)."""
        i = int(np.searchsorted(self.stamps, stamp, side="right")) - 1
        return None if i < 0 else self.values[i]


@dataclass
class RunLog:
    """The series Spine uses from one log, plus what it had to skip."""

    path: Path
    joint_names: list[str]
    joint_pos: Series
    joint_vel: Series
    velocity_estimated: bool
    goal: Series | None = None
    ee_pos: Series | None = None
    command: Series | None = None
    policy_command: Series | None = None
    episode: Series | None = None
    stages: Series | None = None
    topics: dict[str, str] = field(default_factory=dict)


def read_log(path: Path, joint_names: Sequence[str]) -> RunLog:
    """Read ``path`` for the robot's ``joint_names``; a missing topic or joint raises LogError."""
    path = Path(path)
    if not path.exists():
        raise LogError(f"log {path}: no such file or folder")
    rows: dict[str, list[tuple[int, Any]]] = {}
    try:
        with AnyReader([path], default_typestore=m.TYPESTORE) as reader:
            topics = {c.topic: c.msgtype for c in reader.connections}
            wanted = [c for c in reader.connections if _TYPES.get(c.topic) == c.msgtype]
            for conn, t_ns, raw in reader.messages(connections=wanted):
                msg = reader.deserialize(raw, conn.msgtype)
                rows.setdefault(conn.topic, []).append((t_ns, msg))
    except LogError:
        raise
    except Exception as e:  # rosbags raises several types for unreadable files
        raise LogError(f"log {path}: cannot read ({type(e).__name__}: {e})") from None
    if m.TOPIC_JOINT_STATES not in rows:
        raise LogError(f"log {path}: no {m.TOPIC_JOINT_STATES} ({m.JOINT_STATE}); topics: {topics}")
    pos, vel, estimated = _joint_series(path, rows[m.TOPIC_JOINT_STATES], list(joint_names))
    log = RunLog(path, list(joint_names), pos, vel, estimated, topics=topics)
    for topic, (_, attr, decode) in _DECODERS.items():
        if topic != m.TOPIC_JOINT_STATES and topic in rows:
            setattr(log, attr, _series([decode(msg, t) for t, msg in rows[topic]]))
    if m.TOPIC_DIAGNOSTICS in rows:
        diag = rows[m.TOPIC_DIAGNOSTICS]
        log.episode = _series([_diag("episode")(msg, t) for t, msg in diag])
        log.stages = _series([_diag("stages")(msg, t) for t, msg in diag])
    return log


def _joint_series(path: Path, msgs: list[tuple[int, Any]], names: list[str]) -> tuple[Series, Series, bool]:
    stamps, pos, vel = [], [], []
    for t_ns, msg in msgs:
        index = {n: i for i, n in enumerate(msg.name)}
        missing = [n for n in names if n not in index]
        if missing:
            raise LogError(
                f"log {path}: joint(s) {missing} missing from {m.TOPIC_JOINT_STATES} (has {list(msg.name)})"
            )
        idx = [index[n] for n in names]
        stamps.append(m.stamp_ns(msg) or t_ns)
        pos.append(np.asarray(msg.position, dtype=np.float64)[idx])
        v = np.asarray(msg.velocity, dtype=np.float64)
        vel.append(v[idx] if v.size == len(msg.name) else np.full(len(names), np.nan))
    order = np.argsort(np.asarray(stamps), kind="stable")
    s = np.asarray(stamps, dtype=np.int64)[order]
    p, v = np.asarray(pos)[order], np.asarray(vel)[order]
    estimated = bool(np.all(np.isnan(v)))
    if estimated and len(s) > 1:
        v = np.gradient(p, s.astype(np.float64) / 1e9, axis=0)
    return Series(s, p), Series(s, v), estimated


def _series(items: list[tuple[int, np.ndarray]]) -> Series:
    items.sort(key=lambda x: x[0])
    return Series(
        np.array([t for t, _ in items], dtype=np.int64),
        np.array([v for _, v in items], dtype=np.float64),
    )


def _point(msg: Any, t_ns: int) -> tuple[int, np.ndarray]:
    return m.stamp_ns(msg) or t_ns, np.array([msg.point.x, msg.point.y, msg.point.z])


def _array(msg: Any, t_ns: int) -> tuple[int, np.ndarray]:
    return t_ns, np.asarray(msg.data, dtype=np.float64)


def _diag(key: str) -> Any:
    def decode(msg: Any, t_ns: int) -> tuple[int, np.ndarray]:
        for status in msg.status:
            if status.name == m.SAFETY_STATUS:
                values = {kv.key: kv.value for kv in status.values}
                return m.stamp_ns(msg) or t_ns, np.array([float(values.get(key, "nan"))])
        return m.stamp_ns(msg) or t_ns, np.array([np.nan])

    return decode


# topic -> (message type, RunLog attribute, decoder(msg, log time) -> (stamp ns, values))
_DECODERS: dict[str, tuple[str, str, Any]] = {
    m.TOPIC_JOINT_STATES: (m.JOINT_STATE, "joint_pos", None),
    m.TOPIC_GOAL: (m.POINT_STAMPED, "goal", _point),
    m.TOPIC_EE: (m.POINT_STAMPED, "ee_pos", _point),
    m.TOPIC_COMMAND: (m.FLOAT64_ARRAY, "command", _array),
    m.TOPIC_POLICY_CMD: (m.FLOAT64_ARRAY, "policy_command", _array),
}
_TYPES = {topic: ty for topic, (ty, _, _) in _DECODERS.items()} | {m.TOPIC_DIAGNOSTICS: m.DIAGNOSTICS}
