"""A robot is configuration: ``configs/robot/<name>.yaml`` (or any YAML path) -> ``RobotConfig``.

    name: panda
    model: menagerie:franka_emika_panda/panda_nohand   # or an MJCF/URDF path (relative to this file)
    joints: [joint1, joint2, joint3, joint4, joint5, joint6, joint7]   # command order
    ee: attachment_site                                 # a site, or a body (+ ee_offset)
    velocity_limits: [2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61]   # rad/s: models have none
    home: home                                          # a keyframe name, or joint values (rad)
    workspace_low: [0.3, -0.3, 0.1]                     # the goal / end-effector box (m, world)
    workspace_high: [0.6, 0.3, 0.5]
    actuators: {kp: 400.0, kv: 40.0}                    # position servos where the model has none

``joints: []`` takes every hinge or slide joint from the root down to the end effector, in
that order. A ``menagerie:<robot>[/<entry>]`` model resolves through the ``mujoco-menagerie``
package, which downloads it on first use or reads ``MENAGERIE_ROOT`` (a local copy). URDFs
load through MuJoCo's importer. ``sim.robots.configured`` turns a config into a MuJoCo model
and the constants a task reads; the task spec, the contract and the safety limits follow
from them. Every unknown or missing key is an error naming the file and the key.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

ROBOT_DIR = Path(__file__).resolve().parents[1] / "configs" / "robot"
MENAGERIE = "menagerie:"


class RobotConfigError(ValueError):
    """A robot config is malformed or names something its model lacks; says file and key."""


@dataclass(frozen=True)
class ServoConfig:
    """Position servos added for joints the model does not actuate (per joint: same gains)."""

    kp: float = 400.0
    """Stiffness (N m / rad)."""
    kv: float = 40.0
    """Damping (N m s / rad)."""
    force_max: float | None = None
    """Torque limit (N m); None: unlimited."""


@dataclass(frozen=True)
class RobotConfig:
    """One arm: its model file and what a task, the contract and the safety layer need of it."""

    name: str
    """Robot name (the contract's ``robot``)."""
    model: str
    """MJCF (.xml) or URDF (.urdf) path, relative to the YAML file; or ``menagerie:<robot>[/<entry>]``."""
    ee: str
    """End-effector site, or body (then ``ee_offset`` in its frame)."""
    velocity_limits: tuple[float, ...]
    """Joint velocity limits (rad/s), command order: the safety layer enforces them."""
    workspace_low: tuple[float, float, float]
    """Lower corner of the goal / end-effector box, world frame (m)."""
    workspace_high: tuple[float, float, float]
    """Upper corner of the goal / end-effector box, world frame (m)."""
    joints: tuple[str, ...] = ()
    """Joints in command order; empty: the hinge/slide chain from the root to ``ee``."""
    ee_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """End-effector point in the ``ee`` body's frame (m), when ``ee`` is a body."""
    home: str | tuple[float, ...] = "home"
    """Start pose: a keyframe name in the model, or joint positions (rad), command order."""
    actuators: ServoConfig | None = None
    """Position servos for joints without an actuator; None: every joint must have one."""
    replace_actuators: bool = False
    """Replace the model's actuators of the joints by ``actuators`` (e.g. torque motors)."""
    gravity_compensation: bool = True
    """Compensate gravity on the arm's bodies, as a real arm's controller does."""
    source: str = ""
    """Where the config was read from (for messages)."""

    def model_path(self) -> Path:
        """The model file: resolved relative to the YAML file, or through mujoco-menagerie."""
        if self.model.startswith(MENAGERIE):
            return _menagerie_xml(self.model[len(MENAGERIE) :], self.source)
        path = Path(self.model).expanduser()
        if not path.is_absolute() and self.source:
            path = Path(self.source).parent / path
        if not path.is_file():
            raise RobotConfigError(f"{self.source or self.name}: model {self.model!r}: no such file ({path})")
        return path.resolve()


def known_robots() -> list[str]:
    """Names of the robot configs shipped in ``configs/robot/``."""
    return sorted(p.stem for p in ROBOT_DIR.glob("*.yaml") if p.stem != "none")


def load_robot_config(name_or_path: str | Path) -> RobotConfig:
    """A shipped robot by name (``configs/robot/<name>.yaml``) or any YAML path."""
    path = Path(name_or_path).expanduser()
    if path.suffix not in (".yaml", ".yml"):
        path = ROBOT_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise RobotConfigError(
                f"unknown robot {str(name_or_path)!r}: no {path}; shipped: {known_robots()} "
                "(or give the path of your own robot YAML)"
            )
    if not path.is_file():
        raise RobotConfigError(f"robot config {path}: no such file")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise RobotConfigError(f"robot config {path}: expected a mapping of keys")
    return robot_config_from_dict(data, str(path.resolve()))


def robot_config_from_dict(data: dict[str, Any], source: str = "robot config") -> RobotConfig:
    """Check and build a ``RobotConfig`` from plain data (as in the YAML)."""
    known = {f.name for f in fields(RobotConfig)} - {"source"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise RobotConfigError(f"{source}: unknown key(s) {unknown}; known: {sorted(known)}")
    required = [f.name for f in fields(RobotConfig) if f.default is MISSING and f.name != "source"]
    missing = [k for k in required if k not in data]
    if missing:
        raise RobotConfigError(f"{source}: missing key(s) {missing}")
    d = dict(data)
    for key in ("velocity_limits", "workspace_low", "workspace_high", "joints", "ee_offset"):
        if key in d:
            d[key] = _numbers(d[key], key, source) if key != "joints" else tuple(str(j) for j in d[key] or ())
    if isinstance(d.get("home"), list | tuple):
        d["home"] = _numbers(d["home"], "home", source)
    if d.get("actuators") is not None:
        servo = d["actuators"]
        if not isinstance(servo, dict) or set(servo) - {f.name for f in fields(ServoConfig)}:
            raise RobotConfigError(
                f"{source}: actuators: expected keys among kp, kv, force_max, got {servo!r}"
            )
        d["actuators"] = ServoConfig(**servo)
    cfg = RobotConfig(**d, source=source)
    for key in ("workspace_low", "workspace_high", "ee_offset"):
        if len(getattr(cfg, key)) != 3:
            raise RobotConfigError(f"{source}: {key} needs 3 values (m), got {getattr(cfg, key)}")
    if any(lo >= hi for lo, hi in zip(cfg.workspace_low, cfg.workspace_high, strict=True)):
        raise RobotConfigError(f"{source}: workspace_low must be < workspace_high on every axis")
    if not cfg.velocity_limits or any(v <= 0 for v in cfg.velocity_limits):
        raise RobotConfigError(f"{source}: velocity_limits must be > 0 (rad/s), one per joint")
    if cfg.joints and len(cfg.velocity_limits) != len(cfg.joints):
        raise RobotConfigError(
            f"{source}: velocity_limits has {len(cfg.velocity_limits)} values for {len(cfg.joints)} joints"
        )
    if cfg.replace_actuators and cfg.actuators is None:
        raise RobotConfigError(f"{source}: replace_actuators needs actuators (kp, kv)")
    return cfg


def _numbers(values: Any, key: str, source: str) -> tuple[float, ...]:
    if not isinstance(values, list | tuple):
        raise RobotConfigError(f"{source}: {key} must be a list of numbers, got {values!r}")
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise RobotConfigError(f"{source}: {key} must be a list of numbers, got {values!r}") from None
    if not all(math.isfinite(v) for v in out):
        raise RobotConfigError(f"{source}: {key} must be finite, got {values!r}")
    return out


def _menagerie_xml(ref: str, source: str) -> Path:
    """``<robot>[/<entry>]`` -> the entry's XML through the mujoco-menagerie package."""
    try:
        import mujoco_menagerie as menagerie
    except ImportError:
        raise RobotConfigError(
            f"{source}: model 'menagerie:{ref}' needs the mujoco-menagerie package "
            "(pip install mujoco-menagerie)"
        ) from None
    robot, _, entry = ref.partition("/")
    try:
        return Path(menagerie.get(robot).xml(entry or None))
    except menagerie.MenagerieError as e:
        raise RobotConfigError(
            f"{source}: model 'menagerie:{ref}': {e} (MENAGERIE_ROOT may point at a local copy)"
        ) from None
