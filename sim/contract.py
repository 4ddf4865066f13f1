"""The policy I/O contract: travels with every checkpoint, ONNX file and bundle.

It is the task spec plus what the exported graph expects and promises (tensor names, shapes,
dtypes), the rates it runs at, and where it came from (weights hash, training config). The
runtime refuses a model whose contract does not match the robot, naming the field.
Dependency-free (no numpy, torch or MuJoCo) so every layer can read it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from sim.spec import TaskSpec

FORMAT_VERSION = 1


class ContractMismatch(ValueError):
    """A model's contract disagrees with the robot it is asked to drive."""

    def __init__(self, field_name: str, bundle_value: object, robot_value: object) -> None:
        self.field = field_name
        super().__init__(
            f"contract field {field_name!r} does not match the robot: "
            f"model has {bundle_value!r}, robot has {robot_value!r}"
        )


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output: name, shape (batch first) and dtype (``"float32"``)."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    description: str = ""


@dataclass(frozen=True)
class PolicyContract:
    """What a policy consumes and produces, and at which rates.

    Attributes:
        family: policy family, e.g. ``"gcbc"``.
        task: the task spec the policy was trained on (joint names, fields, limits, rates).
        inputs: graph inputs in order.
        outputs: graph outputs in order.
        policy_hz: rate the policy runs at (Hz).
        high_level_hz: rate of a high-level policy, for hierarchical families
            (``policy_hz / high_level_every``).
        high_level_every: control ticks between high-level calls (1 when flat); its output
            is held for the low level in between.
        critic_hz: rate of the safety critic, when the bundle has one.
        chunk_length: actions per policy call (1 for single-step policies).
        execute_steps: targets of each chunk executed before the next plan (receding
            horizon; chunks are planned at ``policy_hz / execute_steps``).
        sampler_steps: denoising steps unrolled in the graph (0 when not generative).
        high_level_inputs: inputs of the high-level graph (``high_level.onnx``; hierarchical
            families only, empty otherwise), which runs at ``high_level_hz``.
        high_level_outputs: its outputs; the first one feeds the low level's input of the
            same name, held between high-level calls.
        precision: weights of the graphs: ``"float32"``, or ``"int8"`` after dynamic quantization.
        opset: ONNX opset of the exported graph (``None`` before export).
        weights_sha256: hash of the weights the graph was built from.
        train_config: the resolved training config, for provenance.
        format_version: version of this contract's layout.
    """

    family: str
    task: TaskSpec
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    policy_hz: float
    high_level_hz: float | None = None
    high_level_every: int = 1
    critic_hz: float | None = None
    chunk_length: int = 1
    execute_steps: int = 1
    sampler_steps: int = 0
    high_level_inputs: tuple[TensorSpec, ...] = ()
    high_level_outputs: tuple[TensorSpec, ...] = ()
    precision: str = "float32"
    opset: int | None = None
    weights_sha256: str = ""
    train_config: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "contract") -> PolicyContract:
        """Parse a contract; a bad field raises ``ValueError`` naming it and ``source``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: unknown contract field(s) {unknown}")
        version = data.get("format_version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise ValueError(
                f"{source}: contract format_version {version}, this Spine reads {FORMAT_VERSION}"
            )
        kw = dict(data)
        try:
            if kw.get("high_level_hz") and "high_level_every" not in kw:  # written before the field
                kw["high_level_every"] = max(1, round(kw["policy_hz"] / kw["high_level_hz"]))
            kw["task"] = TaskSpec.from_dict(data["task"])
            kw["inputs"] = tuple(_tensor(t) for t in data["inputs"])
            kw["outputs"] = tuple(_tensor(t) for t in data["outputs"])
            for key in ("high_level_inputs", "high_level_outputs"):
                kw[key] = tuple(_tensor(t) for t in data.get(key, ()))
            return cls(**kw)
        except KeyError as e:
            raise ValueError(f"{source}: missing contract field {e.args[0]!r}") from None
        except (TypeError, ValueError) as e:
            raise ValueError(f"{source}: {e}") from None

    @classmethod
    def from_json(cls, text: str, source: str = "contract") -> PolicyContract:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{source}: not valid JSON ({e})") from None
        return cls.from_dict(data, source)

    def check_robot(self, robot: TaskSpec, rtol: float = 1e-6) -> None:
        """Raise ``ContractMismatch`` on the first field where the model and robot disagree."""
        mine = self.task
        _same("robot", mine.robot, robot.robot)  # two arms can share joint names and limits
        _same("joint_names (count)", len(mine.joint_names), len(robot.joint_names))
        for i, (a, b) in enumerate(zip(mine.joint_names, robot.joint_names, strict=True)):
            _same(f"joint_names[{i}]", a, b)
        for key in ("joint_pos_min", "joint_pos_max", "joint_vel_max"):
            for i, (a, b) in enumerate(zip(getattr(mine, key), getattr(robot, key), strict=True)):
                if not math.isclose(a, b, rel_tol=rtol, abs_tol=1e-9):
                    _same(f"{key}[{i}] ({mine.joint_names[i]})", a, b)
        _same("observation (count)", len(mine.observation), len(robot.observation))
        for i, (a, b) in enumerate(zip(mine.observation, robot.observation, strict=True)):
            _same(f"observation[{i}].name", a.name, b.name)
            _same(f"observation[{i}].size ({a.name})", a.size, b.size)
            _same(f"observation[{i}].unit ({a.name})", a.unit, b.unit)
        _same("goal.name", mine.goal.name, robot.goal.name)
        _same("goal.size", mine.goal.size, robot.goal.size)
        _same("goal.unit", mine.goal.unit, robot.goal.unit)
        _same("action.kind", mine.action.kind, robot.action.kind)
        _same("action.unit", mine.action.unit, robot.action.unit)
        if not math.isclose(self.policy_hz, robot.control_hz, rel_tol=rtol):
            _same("policy_hz", self.policy_hz, robot.control_hz)
        self.check_graphs(robot)

    @property
    def hierarchical(self) -> bool:
        """Whether the bundle has a high-level graph next to the policy."""
        return bool(self.high_level_inputs)

    def check_graphs(self, robot: TaskSpec) -> None:
        """The graphs' tensors have the robot's dimensions and the rates fit together;
        ``ContractMismatch`` names the tensor or the rate that does not."""
        sizes = {"observation": robot.obs_size, "goal": robot.goal.size}
        for group, tensors in (("inputs", self.inputs), ("high_level_inputs", self.high_level_inputs)):
            for t in tensors:
                if t.name in sizes:
                    _same(f"{group}[{t.name}].shape[-1]", t.shape[-1], sizes[t.name])
        if not self.outputs:
            raise ContractMismatch("outputs", "no outputs", "a joint-target output")
        out = self.outputs[0]
        _same(f"outputs[{out.name}].shape[-1]", out.shape[-1], robot.n_joints)
        if self.chunk_length > 1:
            _same(f"chunk_length (outputs[{out.name}].shape[1])", self.chunk_length, out.shape[1])
        if not 1 <= self.execute_steps <= self.chunk_length:
            bound = f"1..{self.chunk_length} (chunk_length)"
            raise ContractMismatch("execute_steps", self.execute_steps, bound)
        if self.hierarchical:
            if self.high_level_every < 1:
                raise ContractMismatch("high_level_every", self.high_level_every, ">= 1")
            every, hz = self.high_level_every, self.high_level_hz
            if hz is None or not math.isclose(hz * every, self.policy_hz, rel_tol=1e-6):
                want = f"policy_hz / high_level_every = {self.policy_hz / every:g}"
                raise ContractMismatch("high_level_hz", hz, want)


def _same(name: str, bundle_value: object, robot_value: object) -> None:
    if bundle_value != robot_value:
        raise ContractMismatch(name, bundle_value, robot_value)


def _tensor(data: dict[str, Any]) -> TensorSpec:
    kw = dict(data)
    kw["shape"] = tuple(int(s) for s in data["shape"])
    return TensorSpec(**kw)
