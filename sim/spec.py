"""Task specification: what a task observes, what it commands, how fast, and what it costs.

Numpy-free and mujoco-free on purpose: the spec travels inside every checkpoint and ONNX
bundle (see ``sim.contract``) and is read on robots that have neither torch nor MuJoCo.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class FieldSpec:
    """One named observation or goal field.

    Attributes:
        name: key in the raw robot state, e.g. ``"joint_pos"``.
        size: number of float values (fields are flat vectors).
        unit: physical unit, e.g. ``"rad"``, ``"rad/s"``, ``"m"``.
        description: one line for humans.
    """

    name: str
    size: int
    unit: str
    description: str = ""


@dataclass(frozen=True)
class ActionSpec:
    """The command a policy emits.

    Attributes:
        kind: ``"joint_position"`` (absolute joint-position targets), or ``"normalized"``
            (dm_control's motor commands, ``sim/tasks/dmc.py``). A policy family lists the
            kinds it commands in ``action_kinds`` (``policies.registry.make_policy`` checks).
        unit: ``"rad"`` for joint positions (``"m"`` for the maze's x/y), ``"1"`` normalized.
        max_delta: joint positions: largest change of a target from the measured position in
            one control step, per joint. Normalized: half the command range. Policies scale
            their output by it.
    """

    kind: str
    unit: str
    max_delta: tuple[float, ...]


@dataclass(frozen=True)
class TaskSpec:
    """Everything a policy, its export and the runtime need to know about a task.

    Attributes:
        name: registry name, e.g. ``"reach"``.
        robot: robot model name, e.g. ``"arm7"``.
        joint_names: actuated joints in command order.
        joint_pos_min: lower position limit per joint (rad).
        joint_pos_max: upper position limit per joint (rad).
        joint_vel_max: velocity limit per joint (rad/s).
        observation: fields concatenated, in this order, into the ``observation`` vector.
        goal: the goal field; ``achieved_goal`` and ``desired_goal`` both have its size.
        action: the command.
        control_hz: policy / control rate (Hz).
        physics_hz: physics step rate (Hz); ``physics_hz / control_hz`` is an integer.
        episode_steps: control steps per episode.
        success_threshold: goal distance counted as success (goal units, e.g. m).
        workspace_low: lower corner of the goal / end-effector workspace box (m).
        workspace_high: upper corner of that box (m).
        cost_kinds: names of the per-step safety costs in ``info["cost"]``.
    """

    name: str
    robot: str
    joint_names: tuple[str, ...]
    joint_pos_min: tuple[float, ...]
    joint_pos_max: tuple[float, ...]
    joint_vel_max: tuple[float, ...]
    observation: tuple[FieldSpec, ...]
    goal: FieldSpec
    action: ActionSpec
    control_hz: float
    physics_hz: float
    episode_steps: int
    success_threshold: float
    workspace_low: tuple[float, ...] = ()
    workspace_high: tuple[float, ...] = ()
    cost_kinds: tuple[str, ...] = field(default_factory=tuple)

    @property
    def n_joints(self) -> int:
        return len(self.joint_names)

    @property
    def obs_size(self) -> int:
        return sum(f.size for f in self.observation)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskSpec:
        """Inverse of ``to_dict``; an unknown or missing key raises ``ValueError`` naming it."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"task spec: unknown field(s) {unknown}")
        kw = dict(data)
        try:
            kw["observation"] = tuple(FieldSpec(**f) for f in data["observation"])
            kw["goal"] = FieldSpec(**data["goal"])
            act = dict(data["action"])
            act["max_delta"] = tuple(act["max_delta"])
            kw["action"] = ActionSpec(**act)
        except KeyError as e:
            raise ValueError(f"task spec: missing field {e.args[0]!r}") from None
        for key in (
            "joint_names",
            "joint_pos_min",
            "joint_pos_max",
            "joint_vel_max",
            "workspace_low",
            "workspace_high",
            "cost_kinds",
        ):
            if key in kw:
                kw[key] = tuple(kw[key])
        try:
            return cls(**kw)
        except TypeError as e:
            raise ValueError(f"task spec: {e}") from None


JOINT_POS = "joint_pos"
"""Name of the observation field that holds measured joint positions (rad)."""


def field_offset(fields: tuple[FieldSpec, ...], name: str) -> int:
    """Start index of field ``name`` in the concatenated vector; ``KeyError`` names it."""
    start = 0
    for f in fields:
        if f.name == name:
            return start
        start += f.size
    raise KeyError(f"no field {name!r} among {[f.name for f in fields]}")
