"""Topic mappings: which topics and message fields of a foreign log feed which contract fields.

A mapping is a YAML file (``configs/replay/*.yaml``), read without Hydra so it works on a robot:

    robot: widowx_reach                      # a task, or a robot config (panda, my_arm.yaml): its spec
    joint_states:
      topic: /wx200/joint_states             # sensor_msgs/JointState, matched by joint NAME
      names: {waist: waist}                  # contract joint -> name in the message (default: same)
      position_unit: rad                     # rad | deg
    command:
      topic: /wx200/commands/joint_single
      kind: single                           # single | array | joint_state | trajectory
      name_field: name                       # single: field naming the joint
      value_field: cmd                       # single: the value; array: the list of values
      joints: []                             # array: the joint each list entry commands, in order
      unit: rad
      uncommanded: measured                  # joints the log never commands: measured | error
      interpolation: linear                  # trajectory: linear (as the controller) | hold
    extras:                                  # per-joint side channels kept for reports
      - {name: temperature, topic: /wx200/temperatures/joint_group, names_field: names,
         values_field: temps, unit: degC}
    resample: {rate_hz: null, max_gap_s: 0.1}  # null: the policy rate (see ResampleSpec)

Joint names in the log's messages (joint states and every command kind) are renamed to the
robot's by ``joint_states.names``; ``command.joints`` may name the log's joints or the robot's.
``kind: trajectory`` reads ``trajectory_msgs/JointTrajectory`` (``deploy.logs.commands``).

Every unknown or missing key raises ``MappingError`` naming the file and the key. ``robot`` is a
registered task on its own arm (``widowx_reach``) or a robot config (``configs/robot/<name>.yaml``
or a YAML path, relative paths from the mapping's folder): the log then feeds ``reach`` on that arm
(``sim.robot_env.make_robot_env``).
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

UNIT_SCALE = {"rad": 1.0, "deg": math.pi / 180.0, "rad/s": 1.0, "deg/s": math.pi / 180.0}
COMMAND_KINDS = ("single", "array", "joint_state", "trajectory")


class MappingError(ValueError):
    """A topic mapping is malformed; the message names the file and the key."""


@dataclass(frozen=True)
class JointStateSource:
    """Where measured joint positions and velocities come from."""

    topic: str
    names: dict[str, str] = field(default_factory=dict)  # contract joint -> JointState name
    position_unit: str = "rad"  # rad | deg; converted to rad on read
    velocity_unit: str = "rad/s"  # rad/s | deg/s; converted to rad/s on read

    def name_of(self, joint: str) -> str:
        return self.names.get(joint, joint)


@dataclass(frozen=True)
class CommandSource:
    """Where the commands the robot was sent come from (position targets)."""

    topic: str
    kind: str = "single"  # single: one joint per message; array: a list; joint_state: by name;
    # trajectory: trajectory_msgs/JointTrajectory, each point's positions at its time_from_start
    name_field: str = "name"
    value_field: str = "cmd"
    joints: tuple[str, ...] = ()  # array: the joint of each list entry (log's or robot's name), in order
    unit: str = "rad"  # rad | deg
    uncommanded: str = "measured"  # a joint never commanded: its measured position, or an error
    # trajectory: "linear" follows the setpoint joint_trajectory_controller computes for
    # position-only points (linear from the setpoint at the trajectory's start to each point in
    # turn, sampled every 1 ms); "hold": each point's positions from its time_from_start on
    interpolation: str = "linear"


@dataclass(frozen=True)
class ExtraSource:
    """A per-joint side channel (names list + values list), e.g. motor temperatures."""

    name: str
    topic: str
    names_field: str = "names"
    values_field: str = "values"
    unit: str = ""


@dataclass(frozen=True)
class ResampleSpec:
    """Resampling to the policy rate by sample-and-hold."""

    # None: the robot's control rate. spine-replay --mapping evaluates at it; spine-log-sim replays
    # at it unless --rate says otherwise; spine-log-dataset refuses any rate but the task's own.
    rate_hz: float | None = None
    max_gap_s: float = 0.1  # a tick whose latest joint state is older than this is in a gap


@dataclass(frozen=True)
class LogMapping:
    """One log source mapped onto a robot's contract."""

    robot: str
    joint_states: JointStateSource
    command: CommandSource | None = None
    extras: tuple[ExtraSource, ...] = ()
    resample: ResampleSpec = field(default_factory=ResampleSpec)
    source: str = "mapping"  # where it was read from, for error messages

    def robot_joint(self, log_name: str) -> str | None:
        """The robot joint a joint name in the log stands for (``joint_states.names`` renames
        it); None for a log joint that a rename moved elsewhere (it is not that robot joint)."""
        names = self.joint_states.names
        for robot, logged in names.items():
            if logged == log_name:
                return robot
        return None if log_name in names else log_name

    def command_joints(self) -> tuple[str, ...]:
        """``command.joints`` as robot joint names (each entry is a log name or a robot name)."""
        assert self.command is not None
        names = self.joint_states.names
        return tuple(j if j in names else (self.robot_joint(j) or j) for j in self.command.joints)


def load_mapping(path: Path | str) -> LogMapping:
    """Read and check a mapping YAML; errors name ``path`` and the key at fault."""
    path = Path(path)
    if not path.is_file():
        raise MappingError(f"mapping {path}: no such file")
    data = YAML(typ="safe").load(path.read_text())
    return mapping_from_dict(data or {}, source=str(path))


def mapping_from_dict(data: dict[str, Any], source: str = "mapping") -> LogMapping:
    """Build a ``LogMapping`` from plain data (as in the YAML)."""
    top = _take(LogMapping, data, source, skip={"source"})
    js = _take(JointStateSource, top.pop("joint_states"), f"{source}: joint_states")
    js["names"] = {str(k): str(v) for k, v in (js.get("names") or {}).items()}
    joint_states = JointStateSource(**js)
    for key in ("position_unit", "velocity_unit"):
        _unit(getattr(joint_states, key), f"{source}: joint_states.{key}")
    command = None
    if top.get("command") is not None:
        cmd = _take(CommandSource, top.pop("command"), f"{source}: command")
        cmd["joints"] = tuple(str(j) for j in cmd.get("joints") or ())
        command = CommandSource(**cmd)
        if command.kind not in COMMAND_KINDS:
            raise MappingError(f"{source}: command.kind {command.kind!r} is not one of {COMMAND_KINDS}")
        if command.kind == "array" and not command.joints:
            raise MappingError(f"{source}: command.kind 'array' needs command.joints (one name per entry)")
        _check_joints(command.joints, joint_states.names, f"{source}: command.joints")
        if command.uncommanded not in ("measured", "error"):
            raise MappingError(f"{source}: command.uncommanded must be 'measured' or 'error'")
        if command.interpolation not in ("linear", "hold"):
            raise MappingError(f"{source}: command.interpolation must be 'linear' or 'hold' (trajectory)")
        _unit(command.unit, f"{source}: command.unit")
    top.pop("command", None)
    extras = tuple(
        ExtraSource(**_take(ExtraSource, e, f"{source}: extras[{i}]"))
        for i, e in enumerate(top.pop("extras", None) or [])
    )
    resample = ResampleSpec(**_take(ResampleSpec, top.pop("resample", None) or {}, f"{source}: resample"))
    if resample.max_gap_s <= 0 or (resample.rate_hz is not None and resample.rate_hz <= 0):
        raise MappingError(f"{source}: resample.rate_hz and resample.max_gap_s must be > 0")
    return LogMapping(
        robot=_robot_path(str(top["robot"]), source),
        joint_states=joint_states,
        command=command,
        extras=extras,
        resample=resample,
        source=source,
    )


def _robot_path(robot: str, source: str) -> str:
    """A relative robot YAML path is relative to the mapping file's folder."""
    if robot.endswith((".yaml", ".yml")) and not Path(robot).is_absolute() and Path(source).is_file():
        return str(Path(source).parent / robot)
    return robot


def _take(cls: type, data: Any, where: str, skip: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
    """``data`` as keyword arguments of ``cls``; unknown or missing required keys raise."""
    if not isinstance(data, dict):
        raise MappingError(f"{where}: expected a mapping of keys, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls) if f.name not in skip}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise MappingError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
    required = [n for n, f in known.items() if f.default is f.default_factory is MISSING]
    missing = [n for n in required if n not in data]
    if missing:
        raise MappingError(f"{where}: missing key(s) {missing}")
    return dict(data)


def _check_joints(joints: tuple[str, ...], names: dict[str, str], where: str) -> None:
    """An entry that is a robot joint renamed to another log name and also another robot
    joint's log name is ambiguous (e.g. names: {a: b, b: a}); so is a repeated entry."""
    for j in joints:
        others = [robot for robot, logged in names.items() if logged == j and robot != j]
        if j in names and names[j] != j and others:
            raise MappingError(
                f"{where}: {j!r} is both the robot joint {j!r} (named {names[j]!r} in the log) and the "
                f"log's name for robot joint {others[0]!r}; name each entry once, as the robot does"
            )
    repeated = sorted({j for j in joints if joints.count(j) > 1})
    if repeated:
        raise MappingError(f"{where}: joint(s) {repeated} named more than once")


def _unit(unit: str, where: str) -> None:
    if unit not in UNIT_SCALE:
        raise MappingError(f"{where}: unit {unit!r} is not one of {sorted(UNIT_SCALE)}")
