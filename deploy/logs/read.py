"""Read a Spine log (``spine-run``'s, or the bag ``spine-stack`` records) into per-topic series.

JointState is matched by joint name, never by index. Messages with a header are stamped by
``header.stamp``; others (Float64MultiArray) by the time the bag recorded them. A log that does
not open as it is (cut short, no ``metadata.yaml``) is salvaged, a damaged stretch is read
past, a corrupt message is skipped (``deploy.logs.scan``, ``deploy.logs.corrupt``);
``RunLog.skipped`` says what was lost. ``/diagnostics`` carries statuses from several nodes:
the episode is read from any status that has an ``episode`` value (``spine/safety`` in a
``spine-run`` log, ``spine/sim_robot`` in a stack's), the safety stages from ``spine/safety``'s
``stages``; statuses without them (every other node's) are not read as missing values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deploy.logs import messages as m
from deploy.logs.corrupt import Corrupt, decode
from deploy.logs.errors import LogError
from deploy.logs.joint_series import joint_series
from deploy.logs.joint_state_batch import decode as batch_decode
from deploy.logs.mapping import JointStateSource
from deploy.logs.rates import MeasuredRate, measured_rate
from deploy.logs.scan import open_log, scan
from deploy.logs.series import Series

__all__ = ["LogError", "RunLog", "Series", "read_log"]


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
    observation: Series | None = None  # /spine/observation: the task's observation fields
    topics: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # what could not be read or used, in words
    joint_rate: MeasuredRate | None = None  # the joint states' measured rate and largest gap


def read_log(path: Path, joint_names: Sequence[str]) -> RunLog:
    """Read ``path`` for the robot's ``joint_names``; a missing topic or joint raises LogError."""
    path = Path(path)
    skipped: list[str] = []
    corrupt = Corrupt()
    rows: dict[str, list[tuple[int, Any]]] = {}
    raws, log_times = [], []
    with open_log(path, skipped) as reader:
        topics = {c.topic: c.msgtype for c in reader.connections}
        wanted = [c for c in reader.connections if _TYPES.get(c.topic) == c.msgtype]
        seen: dict[str, int] = {}
        for conn, t_ns, raw in scan(reader, wanted, skipped):
            i = seen[conn.topic] = seen.get(conn.topic, -1) + 1
            if conn.topic == m.TOPIC_JOINT_STATES:
                raws.append(raw)
                log_times.append(t_ns)
            elif (msg := decode(reader, conn, raw, i, corrupt)) is not None:
                rows.setdefault(conn.topic, []).append((t_ns, msg))
        decoded = batch_decode(raws, not reader.is2, lambda raw: reader.deserialize(raw, m.JOINT_STATE))
    if not raws:
        raise LogError(f"log {path}: no {m.TOPIC_JOINT_STATES} ({m.JOINT_STATE}); topics: {topics}")
    stamps = np.where(decoded.stamps != 0, decoded.stamps, np.array(log_times, dtype=np.int64))
    js = JointStateSource(m.TOPIC_JOINT_STATES)
    series = joint_series(path, stamps, decoded, list(joint_names), js, corrupt, skipped)
    log = RunLog(path, list(joint_names), series.pos, series.vel, series.estimated, topics=topics)
    log.joint_rate = measured_rate(m.TOPIC_JOINT_STATES, series.pos.stamps)
    for topic, (_, attr, decoder) in _DECODERS.items():
        if topic != m.TOPIC_JOINT_STATES and topic in rows:
            setattr(log, attr, _series([decoder(msg, t) for t, msg in rows[topic]]))
    if m.TOPIC_DIAGNOSTICS in rows:
        diag = rows[m.TOPIC_DIAGNOSTICS]
        log.episode = _series([x for t, msg in diag if (x := _diag(msg, t, "episode", None)) is not None])
        log.stages = _series(
            [x for t, msg in diag if (x := _diag(msg, t, "stages", m.SAFETY_STATUS)) is not None]
        )
    log.skipped = skipped + corrupt.notes()
    return log


def _series(items: list[tuple[int, np.ndarray]]) -> Series | None:
    if not items:
        return None
    items.sort(key=lambda x: x[0])
    return Series(
        np.array([t for t, _ in items], dtype=np.int64),
        np.array([v for _, v in items], dtype=np.float64),
    )


def _point(msg: Any, t_ns: int) -> tuple[int, np.ndarray]:
    return m.stamp_ns(msg) or t_ns, np.array([msg.point.x, msg.point.y, msg.point.z])


def _array(msg: Any, t_ns: int) -> tuple[int, np.ndarray]:
    return t_ns, np.asarray(msg.data, dtype=np.float64)


def _diag(msg: Any, t_ns: int, key: str, status_name: str | None) -> tuple[int, np.ndarray] | None:
    """(stamp, [value]) of ``key`` in the first status (named ``status_name``, if given) that has
    it as a finite number; None when no status of this message does."""
    for status in msg.status:
        if status_name is not None and status.name != status_name:
            continue
        values = {kv.key: kv.value for kv in status.values}
        try:
            value = float(values[key])
        except (KeyError, ValueError):
            continue
        if math.isfinite(value):
            return m.stamp_ns(msg) or t_ns, np.array([value])
    return None


# topic -> (message type, RunLog attribute, decoder(msg, log time) -> (stamp ns, values))
_DECODERS: dict[str, tuple[str, str, Any]] = {
    m.TOPIC_JOINT_STATES: (m.JOINT_STATE, "joint_pos", None),
    m.TOPIC_GOAL: (m.POINT_STAMPED, "goal", _point),
    m.TOPIC_EE: (m.POINT_STAMPED, "ee_pos", _point),
    m.TOPIC_COMMAND: (m.FLOAT64_ARRAY, "command", _array),
    m.TOPIC_POLICY_CMD: (m.FLOAT64_ARRAY, "policy_command", _array),
    m.TOPIC_OBSERVATION: (m.FLOAT64_ARRAY, "observation", _array),
}
_TYPES = {topic: ty for topic, (ty, _, _) in _DECODERS.items()} | {m.TOPIC_DIAGNOSTICS: m.DIAGNOSTICS}
