"""Commands of a foreign log as position-target events on the robot's joints.

Four message shapes (``command.kind`` of the mapping):

- ``single``: one joint per message, named in ``name_field``, its target in ``value_field``
  (e.g. Interbotix ``JointSingleCommand``);
- ``array``: a list of targets in ``value_field`` (e.g. ``std_msgs/Float64MultiArray`` of
  ros2_control's forward_command_controller), entry ``i`` for joint ``command.joints[i]``;
- ``joint_state``: a ``sensor_msgs/JointState`` of targets, matched by name;
- ``trajectory``: a ``trajectory_msgs/JointTrajectory`` (joint_trajectory_controller's input,
  the UR driver's default): each point's ``positions`` are an event at the trajectory's start
  (``header.stamp``; zero: when it was recorded, as the controller starts it on arrival) plus
  the point's ``time_from_start``. A later trajectory replaces the points of an earlier one
  due after its own start, as the controller does (a point due exactly then was reached).
  With ``interpolation: linear`` (the default) the events are the setpoint
  joint_trajectory_controller follows for position-only points, every ``TRAJECTORY_STEP_NS``:
  from the setpoint held when the trajectory starts (the previous trajectory's, or its own
  first point for the first one) linearly to each point in turn, then held; ``hold`` keeps
  each point's positions from its time on (a step at every point).

Joint names in messages are the log's; ``joint_states.names`` renames them to the robot's for
every kind. An event's joints the robot does not have are counted, never silently dropped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deploy.logs.errors import LogError
from deploy.logs.mapping import LogMapping

TRAJECTORY_STEP_NS = 1_000_000  # linear trajectories: one setpoint event per ms


@dataclass
class CommandEvents:
    """Command events in message order: ``values[i]`` (rad, before unit scaling) at ``stamps[i]``."""

    stamps: np.ndarray  # (M,) int64 ns
    values: np.ndarray  # (M, J) NaN where the event does not command the joint
    messages: np.ndarray  # (M,) index of the message each event came from
    ignored: Counter[str] = field(default_factory=Counter)  # log joint -> events the robot lacks it
    notes: list[str] = field(default_factory=list)  # points without positions, replaced points


def command_events(
    path: Path, rows: Sequence[tuple[int, Any]], names: Sequence[str], mapping: LogMapping
) -> CommandEvents:
    """Events of the command ``rows`` ((stamp ns, message)) for the robot's joints ``names``."""
    cmd = mapping.command
    assert cmd is not None
    col = {n: j for j, n in enumerate(names)}
    if cmd.kind == "trajectory":
        return _trajectory_events(path, rows, col, mapping)
    stamps, values, index = [], [], []
    ignored: Counter[str] = Counter()
    for i, (t_ns, msg) in enumerate(rows):
        row = np.full(len(names), np.nan)
        for joint, value in _pairs(path, msg, i, mapping):
            robot = mapping.robot_joint(joint) if cmd.kind != "array" else joint
            if robot in col:
                row[col[robot]] = value
            else:
                ignored[joint] += 1
        stamps.append(t_ns)
        values.append(row)
        index.append(i)
    return CommandEvents(
        np.array(stamps, dtype=np.int64),
        np.array(values, dtype=np.float64).reshape(len(values), len(names)),
        np.array(index, dtype=np.int64),
        ignored,
    )


def _pairs(path: Path, msg: Any, i: int, mapping: LogMapping) -> list[tuple[str, float]]:
    """(joint, target) pairs of one single / array / joint_state message; joint names are the
    log's (``array``: the robot joints ``command.joints`` resolves to)."""
    cmd = mapping.command
    assert cmd is not None
    if cmd.kind == "single":
        return [
            (
                str(get_field(msg, cmd.name_field)),
                _number(path, msg, i, cmd.value_field, get_field(msg, cmd.value_field)),
            )
        ]
    if cmd.kind == "array":
        raw = get_field(msg, cmd.value_field)
        values = _numbers(path, msg, i, cmd.value_field, raw)
        if values.size != len(cmd.joints):
            raise LogError(
                f"log {path}: {cmd.topic} message {i} has {values.size} values in {cmd.value_field!r}, "
                f"command.joints names {len(cmd.joints)}"
            )
        return list(zip(mapping.command_joints(), values.tolist(), strict=True))
    names, positions = (
        list(get_field(msg, "name")),
        _numbers(path, msg, i, "position", get_field(msg, "position")),
    )
    return list(zip(names, positions.tolist(), strict=False))


def _trajectory_events(
    path: Path, rows: Sequence[tuple[int, Any]], col: dict[str, int], mapping: LogMapping
) -> CommandEvents:
    cmd = mapping.command
    assert cmd is not None
    starts, points = [], []  # per message: start ns, [(time ns, {column: value})]
    ignored: Counter[str] = Counter()
    empty = 0
    for i, (t_ns, msg) in enumerate(rows):
        joints = [str(n) for n in get_field(msg, "joint_names")]
        start = _header_stamp(msg) or int(t_ns)
        cols = [col.get(mapping.robot_joint(n)) for n in joints]
        for n, c in zip(joints, cols, strict=True):
            if c is None:
                ignored[n] += 1
        mine = []
        for p in get_field(msg, "points"):
            positions = _numbers(path, msg, i, "points[].positions", get_field(p, "positions"))
            if positions.size != len(joints):
                empty += 1  # a velocity- or effort-only point, or one that names no position per joint
                continue
            at = start + int(p.time_from_start.sec) * 1_000_000_000 + int(p.time_from_start.nanosec)
            mine.append((at, {c: v for c, v in zip(cols, positions.tolist(), strict=True) if c is not None}))
        starts.append(start)
        points.append(mine)
    order = np.argsort(np.array(starts, dtype=np.int64), kind="stable")
    stamps, values, index = [], [], []
    replaced = 0
    setpoint: tuple[np.ndarray, np.ndarray] | None = None  # the previous trajectory: (times, rows)
    for k, i in enumerate(order):
        until = starts[order[k + 1]] if k + 1 < len(order) else None  # the next trajectory takes over
        times, rows = [], []
        for at, targets in points[i]:
            if until is not None and at > until:
                replaced += 1
                continue
            row = np.full(len(col), np.nan)
            for c, v in targets.items():
                row[c] = v
            times.append(at)
            rows.append(row)
        if cmd.interpolation == "linear" and times:
            times, rows = _linear_setpoints(starts[i], times, rows, setpoint, until)
            setpoint = (np.array(times, dtype=np.int64), np.array(rows))
            if until is not None:  # from ``until`` on the next trajectory's setpoint is the command
                keep = [j for j, at in enumerate(times) if at < until]
                times, rows = [times[j] for j in keep], [rows[j] for j in keep]
        stamps += times
        values += rows
        index += [int(i)] * len(times)
    notes = []
    if empty:
        notes.append(f"{empty} trajectory point(s) on {cmd.topic} without one position per joint (skipped)")
    if replaced:
        notes.append(
            f"{replaced} trajectory point(s) on {cmd.topic} replaced by a later trajectory before their time"
        )
    return CommandEvents(
        np.array(stamps, dtype=np.int64),
        np.array(values, dtype=np.float64).reshape(len(values), len(col)),
        np.array(index, dtype=np.int64),
        ignored,
        notes,
    )


def _linear_setpoints(
    start: int,
    times: list[int],
    rows: list[np.ndarray],
    previous: tuple[np.ndarray, np.ndarray] | None,
    until: int | None,
) -> tuple[list[int], list[np.ndarray]]:
    """The controller's setpoint from ``start`` to the last point (or ``until``), every
    ``TRAJECTORY_STEP_NS``, plus each point's own time: linear from the setpoint held at
    ``start`` (``previous`` trajectory's, else the first point) through ``rows`` at ``times``."""
    knots_t = np.array(times, dtype=np.int64)
    knots = np.array(rows)
    first = knots[0]
    if previous is not None and len(previous[0]):
        prev_t, prev_rows = previous
        j = int(np.searchsorted(prev_t, start, side="right")) - 1
        held = prev_rows[max(j, 0)]
        first = np.where(np.isnan(held), knots[0], held)
    if knots_t[0] > start:
        knots_t, knots = np.r_[start, knots_t], np.vstack([first, knots])
    end = knots_t[-1] if until is None else min(knots_t[-1], until)
    grid = np.union1d(np.arange(knots_t[0], end + 1, TRAJECTORY_STEP_NS), knots_t[knots_t <= end])
    out = np.empty((len(grid), knots.shape[1]))
    for c in range(knots.shape[1]):
        out[:, c] = np.interp(grid, knots_t, knots[:, c])  # NaN knots stay NaN around them
    return grid.tolist(), list(out)


def _header_stamp(msg: Any) -> int:
    header = getattr(msg, "header", None)
    if header is None:
        return 0
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def get_field(msg: Any, dotted: str) -> Any:
    """``msg.a.b`` for ``dotted = "a.b"``; a missing field raises ``LogError`` naming it."""
    value = msg
    for part in dotted.split("."):
        if not hasattr(value, part):
            fields = [f for f in getattr(msg, "__dataclass_fields__", {}) if not f.startswith("__")]
            raise LogError(f"message {msg.__msgtype__} has no field {dotted!r} (its fields: {fields})")
        value = getattr(value, part)
    return value


def _number(path: Path, msg: Any, i: int, name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise LogError(
            f"log {path}: field {name!r} of {msg.__msgtype__} (message {i}) is {type(value).__name__}, "
            f"not a number; check command.kind and command.value_field in the mapping"
        ) from None


def _numbers(path: Path, msg: Any, i: int, name: str, value: Any) -> np.ndarray:
    try:
        return np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        first = type(value[0]).__name__ if len(value) else type(value).__name__
        hint = (
            "; a trajectory_msgs/JointTrajectory is mapped with command.kind: trajectory"
            if "JointTrajectory" in msg.__msgtype__
            else "; check command.kind and command.value_field in the mapping"
        )
        raise LogError(
            f"log {path}: field {name!r} of {msg.__msgtype__} (message {i}) holds {first}, not numbers{hint}"
        ) from None
