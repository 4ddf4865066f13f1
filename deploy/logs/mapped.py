"""Read a foreign robot log through a topic mapping (``deploy.logs.mapping``) into named series.

rosbag2 (sqlite3, MCAP) and ROS 1 bags are read with ``rosbags``' AnyReader; custom message
types are decoded from the definitions stored in the bag (ROS 1 connections, MCAP schemas).
JointState is matched by joint name, never by index. Stamps that go backwards or repeat are
counted and reported (``StampIssues``), then the series are sorted; nothing is dropped silently.
A bag that breaks off part way yields what it holds and ``skipped`` says what was lost.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.highlevel import AnyReader

from deploy.logs import messages as m
from deploy.logs.joint_state_batch import Decoded
from deploy.logs.joint_state_batch import decode as batch_decode
from deploy.logs.mapping import UNIT_SCALE, LogMapping
from deploy.logs.read import LogError, Series
from deploy.logs.salvage import (
    is_ros1,
    mcap_file,
    salvage_mcap,
    salvage_ros1,
    salvage_sqlite,
    sqlite_without_metadata,
)


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
    command: Series | None  # (M, J) latest target per joint at each command message; NaN: none yet
    commanded: np.ndarray  # (J,) bool: joints the log commands at least once
    extras: dict[str, Series]  # name -> (K, J) NaN where a joint was absent from a message
    topics: dict[str, str]  # every topic in the log -> its message type
    stamps: dict[str, StampIssues]
    skipped: list[str]  # what could not be read or used, in words
    limit_excursions: dict[str, dict[str, float]]  # joint -> {samples, worst_rad} beyond its limits


def read_mapped(
    path: Path | str,
    mapping: LogMapping,
    joint_names: Sequence[str],
    pos_min: Sequence[float],
    pos_max: Sequence[float],
) -> MappedLog:
    """Read ``path`` through ``mapping`` for a robot with ``joint_names`` and position limits (rad)."""
    path, names = Path(path), list(joint_names)
    if not path.exists():
        raise LogError(f"log {path}: no such file or folder")
    rows, joint_rows, topics, skipped = _read_rows(path, mapping)
    js = mapping.joint_states
    if js.topic not in topics:
        raise LogError(
            f"log {path}: no topic {js.topic} (mapping {mapping.source}); topics: {sorted(topics)}"
        )
    if topics[js.topic] != m.JOINT_STATE:
        raise LogError(f"log {path}: {js.topic} is {topics[js.topic]}, not {m.JOINT_STATE}")
    if joint_rows is None or not len(joint_rows[0]):
        raise LogError(f"log {path}: topic {js.topic} holds no readable message")
    stamps = {t: _stamp_issues(t, np.array([s for s, _ in r], dtype=np.int64)) for t, r in rows.items()}
    stamps[js.topic] = _stamp_issues(js.topic, joint_rows[0])
    pos, vel, estimated = _joint_states(path, joint_rows, names, mapping)
    excursions = _check_units(path, js.topic, names, pos.values, np.asarray(pos_min), np.asarray(pos_max))
    command, commanded = None, np.zeros(len(names), dtype=bool)
    if mapping.command is not None:
        if mapping.command.topic not in topics:
            raise LogError(
                f"log {path}: no command topic {mapping.command.topic} (mapping {mapping.source}); "
                f"topics: {sorted(topics)}"
            )
        command, commanded = _commands(path, rows.get(mapping.command.topic, []), names, mapping, skipped)
        if mapping.command.uncommanded == "error" and not commanded.all():
            missing = [n for n, c in zip(names, commanded, strict=True) if not c]
            raise LogError(f"log {path}: {mapping.command.topic} never commands joint(s) {missing}")
    extras = {}
    for ex in mapping.extras:
        if ex.topic not in topics:
            skipped.append(f"extra {ex.name!r}: topic {ex.topic} is not in the log")
            continue
        extras[ex.name] = _extra(rows.get(ex.topic, []), names, ex.names_field, ex.values_field)
    return MappedLog(
        path, names, pos, vel, estimated, command, commanded, extras, topics, stamps, skipped, excursions
    )


JointRows = tuple[np.ndarray, Decoded]  # stamps (N,) ns in recording order, decoded arrays


def _read_rows(
    path: Path, mapping: LogMapping
) -> tuple[dict[str, list[tuple[int, Any]]], JointRows | None, dict[str, str], list[str]]:
    """(stamp ns, message) per wanted topic in recording order, the joint states decoded in a
    batch (``deploy.logs.joint_state_batch``), every topic's type, and what was skipped."""
    js_topic = mapping.joint_states.topic
    wanted = {js_topic} | {e.topic for e in mapping.extras}
    if mapping.command is not None:
        wanted.add(mapping.command.topic)
    rows: dict[str, list[tuple[int, Any]]] = {}
    raws: list[bytes] = []
    log_times: list[int] = []
    joint_rows = None
    skipped: list[str] = []
    reader, salvaged = _open(path, skipped)
    try:
        topics = {c.topic: c.msgtype for c in reader.connections}
        conns = [c for c in reader.connections if c.topic in wanted]
        count = 0
        try:
            for conn, t_ns, raw in reader.messages(connections=conns):
                if conn.topic == js_topic and conn.msgtype == m.JOINT_STATE:
                    raws.append(raw)
                    log_times.append(t_ns)
                else:
                    msg = reader.deserialize(raw, conn.msgtype)
                    rows.setdefault(conn.topic, []).append((_stamp(msg, t_ns), msg))
                count += 1
        except Exception as e:  # a truncated or corrupt chunk: keep what came before it
            expected = sum(c.msgcount for c in conns)
            skipped.append(
                f"reading stopped after {count} of {expected} messages on the mapped topics "
                f"({type(e).__name__}: {e}); the rest of the log is skipped"
            )
        if raws:
            decoded = batch_decode(raws, not reader.is2, lambda raw: reader.deserialize(raw, m.JOINT_STATE))
            t_log = np.array(log_times, dtype=np.int64)
            joint_rows = (np.where(decoded.stamps != 0, decoded.stamps, t_log), decoded)
    finally:
        reader.close()
        if salvaged is not None:
            shutil.rmtree(salvaged, ignore_errors=True)
    return rows, joint_rows, topics, skipped


def _open(path: Path, skipped: list[str]) -> tuple[AnyReader, Path | None]:
    """An open reader for ``path``; an MCAP without its footer or a ROS 1 bag without its index
    is read from a salvaged copy (``deploy.logs.salvage``), and ``skipped`` says so."""
    try:
        reader = AnyReader([path], default_typestore=m.TYPESTORE)
        reader.open()
        return reader, None
    except Exception as e:  # rosbags raises several types for unreadable files
        error = f"{type(e).__name__}: {e}"
    mcap, db = mcap_file(path), sqlite_without_metadata(path)
    if mcap is None and db is None and not is_ros1(path):
        raise LogError(f"log {path}: cannot open ({error})")
    try:
        if mcap is not None:
            salvaged = salvage_mcap(mcap)
        else:
            salvaged = salvage_sqlite(db) if db is not None else salvage_ros1(path)
        reader = AnyReader([salvaged.log or salvaged.folder], default_typestore=m.TYPESTORE)
        reader.open()
    except Exception as e2:
        raise LogError(
            f"log {path}: cannot open ({error}); salvaging failed too ({type(e2).__name__}: {e2})"
        ) from None
    if salvaged.recovered == 0:
        reader.close()
        shutil.rmtree(salvaged.folder, ignore_errors=True)
        raise LogError(f"log {path}: cannot open ({error}); no complete message to salvage")
    skipped.append(salvaged.note)
    return reader, salvaged.folder


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


def _joint_states(
    path: Path, rows: JointRows, names: list[str], mapping: LogMapping
) -> tuple[Series, Series, bool]:
    js = mapping.joint_states
    wanted = [js.name_of(n) for n in names]
    stamps, decoded = rows
    n, nj = len(stamps), len(names)
    pos, vel = np.empty((n, nj)), np.full((n, nj), np.nan)
    for idx, msg_names, p, v in decoded.groups:
        index = {name: k for k, name in enumerate(msg_names)}
        missing = [w for w in wanted if w not in index]
        if missing:
            raise LogError(
                f"log {path}: joint(s) {missing} missing from {js.topic} at message {int(idx.min())} "
                f"(it has {list(msg_names)})"
            )
        cols = [index[w] for w in wanted]
        pos[idx] = p[:, cols]
        if v is not None and v.shape[1] == len(msg_names):
            vel[idx] = v[:, cols]
    pos *= UNIT_SCALE[js.position_unit]
    vel *= UNIT_SCALE[js.velocity_unit]
    order = np.argsort(stamps, kind="stable")
    s, p, v = stamps[order], pos[order], vel[order]
    estimated = bool(np.all(np.isnan(v)))
    if estimated and n > 1:
        t = (s - s[0]).astype(np.float64) / 1e9
        v = np.gradient(p, t + np.arange(n) * 1e-12, axis=0)  # the tiny ramp guards duplicated stamps
    return Series(s, p), Series(s, v), estimated


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
    path: Path, rows: list[tuple[int, Any]], names: list[str], mapping: LogMapping, skipped: list[str]
) -> tuple[Series | None, np.ndarray]:
    cmd = mapping.command
    assert cmd is not None
    col = {n: j for j, n in enumerate(names)}
    ignored: Counter[str] = Counter()
    events = np.full((len(rows), len(names)), np.nan)
    stamps = np.array([t for t, _ in rows], dtype=np.int64)
    for i, (_, msg) in enumerate(rows):
        if cmd.kind == "single":
            joint, value = str(_get(msg, cmd.name_field)), float(_get(msg, cmd.value_field))
            pairs = [(joint, value)]
        elif cmd.kind == "array":
            values = np.asarray(_get(msg, cmd.value_field), dtype=np.float64)
            if values.size != len(cmd.joints):
                raise LogError(
                    f"log {path}: {cmd.topic} message {i} has {values.size} values, "
                    f"command.joints names {len(cmd.joints)}"
                )
            pairs = list(zip(cmd.joints, values, strict=True))
        else:  # joint_state
            pairs = list(zip(msg.name, msg.position, strict=False))
        for joint, value in pairs:
            if joint in col:
                events[i, col[joint]] = value
            else:
                ignored[joint] += 1
    for joint, k in sorted(ignored.items()):
        skipped.append(f"{k} command(s) on {cmd.topic} for joint {joint!r}, which the robot does not have")
    if not len(rows):
        skipped.append(f"command topic {cmd.topic} has no readable message")
        return None, np.zeros(len(names), dtype=bool)
    events *= UNIT_SCALE[cmd.unit]
    order = np.argsort(stamps, kind="stable")
    held = _ffill(events[order])
    worst = np.nanmax(np.abs(held), axis=0, initial=0.0)
    for j, name in enumerate(names):
        if worst[j] > 2 * np.pi + 0.1:
            raise LogError(
                f"log {path}: command for joint {name!r} on {cmd.topic} reaches {worst[j]:.4g}: "
                f"looks like degrees; set command.unit: deg in the mapping"
            )
    return Series(stamps[order], held), ~np.all(np.isnan(events), axis=0)


def _extra(rows: list[tuple[int, Any]], names: list[str], names_field: str, values_field: str) -> Series:
    col = {n: j for j, n in enumerate(names)}
    out = np.full((len(rows), len(names)), np.nan)
    for i, (_, msg) in enumerate(rows):
        for joint, value in zip(_get(msg, names_field), _get(msg, values_field), strict=False):
            if joint in col:
                out[i, col[joint]] = float(value)
    return Series(np.array([t for t, _ in rows], dtype=np.int64), out)


def _get(msg: Any, dotted: str) -> Any:
    """``msg.a.b`` for ``dotted = "a.b"``; a missing field raises ``LogError`` naming it."""
    value = msg
    for part in dotted.split("."):
        if not hasattr(value, part):
            raise LogError(f"message {msg.__msgtype__} has no field {dotted!r}")
        value = getattr(value, part)
    return value


def _ffill(a: np.ndarray) -> np.ndarray:
    """Forward-fill NaNs down each column (the latest value so far; NaN before the first)."""
    idx = np.where(np.isnan(a), 0, np.arange(len(a))[:, None])
    np.maximum.accumulate(idx, axis=0, out=idx)
    out = a[idx, np.arange(a.shape[1])]
    out[np.isnan(a).cumprod(axis=0).astype(bool)] = np.nan
    return out
