"""Read a foreign robot log through a topic mapping (``deploy.logs.mapping``) into named series.

rosbag2 (sqlite3, MCAP) and ROS 1 bags are read with ``rosbags``' AnyReader; custom message
types are decoded from the definitions stored in the bag (ROS 1 connections, MCAP schemas).
JointState is matched by joint name, never by index. Stamps that go backwards or repeat are
counted and reported (``StampIssues``), then the series are sorted; nothing is dropped silently.
A log that does not open as it is is salvaged, a damaged stretch is read past, a corrupt
message is skipped (``deploy.logs.scan``, ``deploy.logs.corrupt``); ``skipped`` says what was lost.
Each mapped topic's measured rate and largest gap are in ``rates`` (``deploy.logs.rates``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deploy.logs import messages as m
from deploy.logs.commands import command_events, get_field
from deploy.logs.corrupt import Corrupt, decode, isolated_out_of_range
from deploy.logs.errors import LogError
from deploy.logs.joint_series import joint_series
from deploy.logs.joint_state_batch import Decoded
from deploy.logs.joint_state_batch import decode as batch_decode
from deploy.logs.mapping import UNIT_SCALE, LogMapping
from deploy.logs.rates import MeasuredRate, measured_rate
from deploy.logs.scan import open_log, scan
from deploy.logs.series import Series

COMMAND_BOUND = 2 * np.pi + 0.1  # rad: a target beyond this is in degrees (or corrupt, if alone)


@dataclass
class StampIssues:
    """Stamp health of one topic, in recording order."""

    topic: str
    messages: int
    non_monotonic: int = 0  # stamps earlier than the previous message's
    duplicated: int = 0  # stamps equal to the previous message's
    first_bad_s: list[float] = field(default_factory=list)  # up to 5, seconds from the log start
    max_gap_s: float = 0.0  # largest interval between consecutive stamps

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MappedLog:
    """Series of one log mapped onto a robot's joints (rad, rad/s; stamps in ns)."""

    path: Path
    joint_names: list[str]
    joint_pos: Series  # (N, J)
    joint_vel: Series  # (N, J)
    velocity_estimated: bool
    command: Series | None  # (M, J) latest target per joint at each command event; NaN: none yet
    commanded: np.ndarray  # (J,) bool: joints the log commands at least once
    extras: dict[str, Series]  # name -> (K, J) NaN where a joint was absent from a message
    topics: dict[str, str]  # every topic in the log -> its message type
    stamps: dict[str, StampIssues]
    skipped: list[str]  # what could not be read or used, in words
    limit_excursions: dict[str, dict[str, float]]  # joint -> {samples, worst_rad} beyond its limits
    rates: dict[str, MeasuredRate] = field(default_factory=dict)  # mapped topic -> measured rate
    corrupt: dict[str, int] = field(default_factory=dict)  # topic -> corrupt messages skipped

    @property
    def joint_rate(self) -> MeasuredRate:
        """The measured rate of the joint states."""
        return next(iter(self.rates.values()))


def read_mapped(
    path: Path | str,
    mapping: LogMapping,
    joint_names: Sequence[str],
    pos_min: Sequence[float],
    pos_max: Sequence[float],
) -> MappedLog:
    """Read ``path`` through ``mapping`` for a robot with ``joint_names`` and position limits (rad)."""
    path, names = Path(path), list(joint_names)
    skipped: list[str] = []
    corrupt = Corrupt()
    rows, joint_rows, topics, listed = _read_rows(path, mapping, skipped, corrupt)
    js = mapping.joint_states
    if js.topic not in topics:
        raise LogError(
            f"log {path}: no topic {js.topic} (mapping {mapping.source}); topics: {sorted(topics)}"
        )
    if topics[js.topic] != m.JOINT_STATE:
        raise LogError(f"log {path}: {js.topic} is {topics[js.topic]}, not {m.JOINT_STATE}")
    if joint_rows is None or not len(joint_rows[0]):
        lost = (
            f"; the log lists {listed[js.topic]} and none could be read: {skipped}"
            if listed[js.topic]
            else ""
        )
        raise LogError(f"log {path}: topic {js.topic} holds no readable message{lost}")
    stamps = {t: _stamp_issues(t, np.array([s for s, _ in r], dtype=np.int64)) for t, r in rows.items()}
    series = joint_series(path, *joint_rows, names, js, corrupt, skipped)
    stamps[js.topic] = _stamp_issues(js.topic, series.recorded)
    pos, vel = series.pos, series.vel
    rates = {js.topic: measured_rate(js.topic, pos.stamps)}
    excursions = _check_units(path, js.topic, names, pos.values, np.asarray(pos_min), np.asarray(pos_max))
    command, commanded = None, np.zeros(len(names), dtype=bool)
    if mapping.command is not None:
        cmd = mapping.command
        if cmd.topic not in topics:
            raise LogError(
                f"log {path}: no command topic {cmd.topic} (mapping {mapping.source}); "
                f"topics: {sorted(topics)}"
            )
        command, commanded = _commands(path, rows.get(cmd.topic, []), names, mapping, skipped, corrupt)
        if command is not None:
            rates[cmd.topic] = measured_rate(cmd.topic, np.array([t for t, _ in rows[cmd.topic]]))
        if cmd.uncommanded == "error" and not commanded.all():
            missing = [n for n, c in zip(names, commanded, strict=True) if not c]
            raise LogError(f"log {path}: {cmd.topic} never commands joint(s) {missing}")
    extras = {}
    for ex in mapping.extras:
        if ex.topic not in topics:
            skipped.append(f"extra {ex.name!r}: topic {ex.topic} is not in the log")
            continue
        extras[ex.name] = _extra(rows.get(ex.topic, []), names, mapping, ex.names_field, ex.values_field)
    skipped.extend(corrupt.notes())
    return MappedLog(
        path,
        names,
        pos,
        vel,
        series.estimated,
        command,
        commanded,
        extras,
        topics,
        stamps,
        skipped,
        excursions,
        rates,
        corrupt.to_dict(),
    )


JointRows = tuple[np.ndarray, Decoded]  # stamps (N,) ns in recording order, decoded arrays


def _read_rows(
    path: Path, mapping: LogMapping, skipped: list[str], corrupt: Corrupt
) -> tuple[dict[str, list[tuple[int, Any]]], JointRows | None, dict[str, str], dict[str, int]]:
    """(stamp ns, message) per wanted topic in recording order, the joint states decoded in a
    batch (``deploy.logs.joint_state_batch``), every topic's type, and the messages the log
    lists per topic."""
    js_topic = mapping.joint_states.topic
    wanted = {js_topic} | {e.topic for e in mapping.extras}
    if mapping.command is not None:
        wanted.add(mapping.command.topic)
    rows: dict[str, list[tuple[int, Any]]] = {}
    raws: list[bytes] = []
    log_times: list[int] = []
    joint_rows = None
    with open_log(path, skipped) as reader:
        topics = {c.topic: c.msgtype for c in reader.connections}
        conns = [c for c in reader.connections if c.topic in wanted]
        listed = {t: sum(c.msgcount for c in conns if c.topic == t) for t in wanted}
        _check_types(path, reader, conns)
        seen: dict[str, int] = {}
        for conn, t_ns, raw in scan(reader, conns, skipped):
            i = seen[conn.topic] = seen.get(conn.topic, -1) + 1
            if conn.topic == js_topic and conn.msgtype == m.JOINT_STATE:
                raws.append(raw)
                log_times.append(t_ns)
            elif (msg := decode(reader, conn, raw, i, corrupt)) is not None:
                rows.setdefault(conn.topic, []).append((_stamp(msg, t_ns), msg))
        if raws:
            decoded = batch_decode(raws, not reader.is2, lambda raw: reader.deserialize(raw, m.JOINT_STATE))
            t_log = np.array(log_times, dtype=np.int64)
            joint_rows = (np.where(decoded.stamps != 0, decoded.stamps, t_log), decoded)
    return rows, joint_rows, topics, listed


def _check_types(path: Path, reader: Any, conns: list[Any]) -> None:
    """A mapped topic whose type neither the log defines nor ``rosbags`` knows raises ``LogError``."""
    for c in conns:
        if c.msgtype not in reader.typestore.types:
            raise LogError(
                f"log {path}: topic {c.topic} is {c.msgtype}, a type the log stores no definition of "
                f"(a ROS 2 Humble sqlite3 bag stores none) and which is not a standard ROS 2 type"
            )


def _stamp(msg: Any, t_ns: int) -> int:
    """``header.stamp`` (ns) when the message has a non-zero one, else the recording time."""
    header = getattr(msg, "header", None)
    if header is None:
        return int(t_ns)
    stamp = int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)
    return stamp or int(t_ns)


def _stamp_issues(topic: str, s: np.ndarray) -> StampIssues:
    """Stamp health of ``s`` (ns, in recording order)."""
    issues = StampIssues(topic, len(s))
    if len(s) < 2:
        return issues
    d = np.diff(s)
    issues.non_monotonic, issues.duplicated = int(np.sum(d < 0)), int(np.sum(d == 0))
    bad = np.flatnonzero(d <= 0)[:5] + 1
    issues.first_bad_s = [round(float(s[i] - s[0]) / 1e9, 6) for i in bad]
    issues.max_gap_s = float(d.max()) / 1e9
    return issues


def _check_units(
    path: Path, topic: str, names: list[str], q: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> dict[str, dict[str, float]]:
    """Degrees read as radians raise; smaller excursions beyond the limits are returned."""
    bound = np.maximum(np.abs(lo), np.abs(hi))
    worst = np.nanmax(np.abs(q), axis=0)
    for j, name in enumerate(names):
        if worst[j] > max(bound[j] + 1.0, 2 * np.pi + 0.1):
            raise LogError(
                f"log {path}: joint {name!r} on {topic} reaches |q| = {worst[j]:.4g}, far beyond its "
                f"limits [{lo[j]:.3f}, {hi[j]:.3f}] rad: the log looks like degrees; set "
                f"joint_states.position_unit: deg in the mapping"
            )
    out = {}
    for j, name in enumerate(names):
        beyond = np.maximum(lo[j] - q[:, j], q[:, j] - hi[j])
        if np.nanmax(beyond) > 1e-3:
            out[name] = {"samples": int(np.sum(beyond > 1e-3)), "worst_rad": float(np.nanmax(beyond))}
    return out


def _commands(
    path: Path,
    rows: list[tuple[int, Any]],
    names: list[str],
    mapping: LogMapping,
    skipped: list[str],
    corrupt: Corrupt,
) -> tuple[Series | None, np.ndarray]:
    cmd = mapping.command
    assert cmd is not None
    if not rows:
        skipped.append(f"command topic {cmd.topic} has no readable message")
        return None, np.zeros(len(names), dtype=bool)
    events = command_events(path, rows, names, mapping)
    for joint, k in sorted(events.ignored.items()):
        skipped.append(f"{k} command(s) on {cmd.topic} for joint {joint!r}, which the robot does not have")
    skipped.extend(events.notes)
    values = events.values * UNIT_SCALE[cmd.unit]
    if not np.any(~np.isnan(values)):
        seen = sorted(events.ignored)
        robot = {n: mapping.joint_states.name_of(n) for n in names}
        raise LogError(
            f"log {path}: none of the {len(rows)} messages on {cmd.topic} commands a joint of the robot "
            f"(they name {seen[:12]}; the robot's joints are named {robot} in the log, by joint_states.names "
            f"of mapping {mapping.source}); check command.kind, command.joints and the renames"
        )
    order = np.argsort(events.stamps, kind="stable")
    stamps, values, source = events.stamps[order], values[order], events.messages[order]
    for j, name in enumerate(names):
        has = np.flatnonzero(~np.isnan(values[:, j]))
        for k in has[isolated_out_of_range(values[has, j], COMMAND_BOUND)]:
            corrupt.add(cmd.topic, f"message {source[k]}: command {values[k, j]:.4g} for joint {name!r}")
            values[k, j] = np.nan
    commanded = ~np.all(np.isnan(values), axis=0)
    held = _ffill(values)
    worst = np.nanmax(np.abs(held), axis=0, initial=0.0)
    for j, name in enumerate(names):
        if worst[j] > COMMAND_BOUND:
            raise LogError(
                f"log {path}: command for joint {name!r} on {cmd.topic} reaches {worst[j]:.4g}: "
                f"looks like degrees; set command.unit: deg in the mapping"
            )
    return Series(stamps, held), commanded


def _extra(
    rows: list[tuple[int, Any]], names: list[str], mapping: LogMapping, names_field: str, values_field: str
) -> Series:
    col = {n: j for j, n in enumerate(names)}
    out = np.full((len(rows), len(names)), np.nan)
    for i, (_, msg) in enumerate(rows):
        for joint, value in zip(get_field(msg, names_field), get_field(msg, values_field), strict=False):
            robot = mapping.robot_joint(str(joint))
            if robot in col:
                out[i, col[robot]] = float(value)
    return Series(np.array([t for t, _ in rows], dtype=np.int64), out)


def _ffill(a: np.ndarray) -> np.ndarray:
    """Forward-fill NaNs down each column (the latest value so far; NaN before the first)."""
    idx = np.where(np.isnan(a), 0, np.arange(len(a))[:, None])
    np.maximum.accumulate(idx, axis=0, out=idx)
    out = a[idx, np.arange(a.shape[1])]
    out[np.isnan(a).cumprod(axis=0).astype(bool)] = np.nan
    return out
