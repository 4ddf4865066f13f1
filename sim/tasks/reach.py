"""Reach: move an arm's end effector to a goal point sampled in the workspace box.

Goal-env observations (``observation``, ``achieved_goal``, ``desired_goal``); actions are
absolute joint-position targets (rad). Each step reports safety costs in ``info["cost"]``.
The arm is arm7 unless ``robot`` names a robot config (``configs/robot/<name>.yaml`` or a YAML
path: ``sim.robot_config``): ``sim.make("reach", robot="panda")``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import ModuleType, SimpleNamespace
from typing import Any, ClassVar

import numpy as np

from sim.goal_env import PhysicsGoalEnv, goal_distance
from sim.registry import register
from sim.robots.arm7 import constants as c
from sim.robots.arm7.physics import Arm7Physics
from sim.robots.configured import ConfiguredArmPhysics, configured_robot
from sim.spec import ActionSpec, FieldSpec, TaskSpec

TASK_NAME = "reach"
JOINT_POS = FieldSpec("joint_pos", c.N_JOINTS, "rad", "measured joint positions")
JOINT_VEL = FieldSpec("joint_vel", c.N_JOINTS, "rad/s", "measured joint velocities")
EE_POS = FieldSpec("ee_pos", 3, "m", "end-effector position, world frame")
OBSERVATION_FIELDS: tuple[FieldSpec, ...] = (JOINT_POS, JOINT_VEL, EE_POS)
GOAL_FIELD = FieldSpec("goal", 3, "m", "target end-effector position, world frame")
ACHIEVED_FIELD = EE_POS  # the state field that ``achieved_goal`` reports
COST_JOINT_LIMIT, COST_COLLISION, COST_SPEED = "joint_limit", "collision", "speed"
COST_KINDS: tuple[str, ...] = (COST_JOINT_LIMIT, COST_COLLISION, COST_SPEED)


@dataclass(frozen=True)
class ReachConfig:
    """Reach task settings; ``ReachEnv(**overrides)`` replaces fields by name."""

    control_hz: float = 25.0
    """Control rate (Hz); the physics rate (500 Hz) must be an integer multiple of it."""
    episode_steps: int = 100
    """Control steps per episode; the episode is truncated after this many."""
    success_threshold: float = 0.03
    """End-effector to goal distance counted as success (m)."""
    max_delta: float = 0.06
    """Largest intended target change per control step and joint (rad), declared in the
    action spec for policies to scale by; the env itself does not enforce it."""
    init_noise: float = 0.1
    """Half-width of the uniform noise added to HOME at reset, per joint (rad)."""
    workspace_low: tuple[float, float, float] | None = None
    """Lower corner of the goal sampling box, world frame (m); None: the robot's."""
    workspace_high: tuple[float, float, float] | None = None
    """Upper corner of the goal sampling box, world frame (m); None: the robot's."""
    joint_limit_threshold: float = 0.05
    """``joint_limit`` cost is 1 when any joint is closer than this to a limit (rad)."""
    speed_threshold: float = 1.0
    """``speed`` cost is 1 when the end-effector speed exceeds this (m/s)."""
    robot: str = ""
    """A robot config: a name in ``configs/robot/`` or a YAML path; "": the task's own arm."""

    def __post_init__(self) -> None:
        cls = type(self).__name__
        for name in ("control_hz", "episode_steps", "success_threshold", "max_delta"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{cls}.{name} must be > 0, got {getattr(self, name)}")
        if self.init_noise < 0:
            raise ValueError(f"{cls}.init_noise must be >= 0, got {self.init_noise}")
        if (self.workspace_low is None) != (self.workspace_high is None):
            raise ValueError(f"{cls}.workspace_low and workspace_high are set together (or both None)")
        if self.workspace_low is None or self.workspace_high is None:
            return
        if len(self.workspace_low) != 3 or len(self.workspace_high) != 3:
            raise ValueError(f"{cls}.workspace_low/high must have 3 values (m)")
        if any(lo > hi for lo, hi in zip(self.workspace_low, self.workspace_high, strict=True)):
            raise ValueError(f"{cls}.workspace_low must be <= workspace_high")


class ArmGoalEnv(PhysicsGoalEnv):
    """Base of the arm goal-envs: absolute joint-position targets, control over 500 Hz physics.

    Subclasses set the class attributes below (``robot``: the arm's constants module) and
    define ``_make_physics``, ``reset``, ``state`` and ``_achieved``; this class (with
    ``sim.goal_env``) owns the spaces, the spec, stepping, reward, costs and rendering.
    Their configs have (at least) ``ReachConfig``'s fields. A ``collision`` cost needs a
    physics with ``contacts()``.
    """

    # the arm's constants: ROBOT_NAME, JOINT_NAMES, JOINT_POS_MIN/MAX, JOINT_VEL_MAX, N_JOINTS,
    # CAMERA, HOME, WORKSPACE_LOW/HIGH; a configured robot's replace them per instance
    robot: ClassVar[ModuleType | SimpleNamespace]
    observation_fields: ClassVar[tuple[FieldSpec, ...]]
    cost_kinds: ClassVar[tuple[str, ...]]
    robot_configurable: ClassVar[bool] = False  # True: ``config.robot`` may name another arm

    def _load(self) -> None:
        name = getattr(self.config, "robot", "")
        if name and not self.robot_configurable:
            raise ValueError(
                f"task {self.task_name!r} runs on its own arm ({self.robot.ROBOT_NAME}); robot={name!r} "
                "works with task=reach"
            )
        if name:
            model, self.robot = configured_robot(name)  # type: ignore[misc]
            self.physics = ConfiguredArmPhysics(model, self.robot)
            self.start_pose = self.robot.HOME
            per_joint = (JOINT_POS.name, JOINT_VEL.name)  # sized by the arm's joints
            self.observation_fields = tuple(
                replace(f, size=self.robot.N_JOINTS) if f.name in per_joint else f
                for f in self.observation_fields
            )
        else:
            self.physics = self._make_physics()
        if getattr(self.config, "workspace_low", ()) is None:
            box = {"workspace_low": self.robot.WORKSPACE_LOW, "workspace_high": self.robot.WORKSPACE_HIGH}
            self.config = replace(self.config, **box)
        self._set_rates()
        self._goal = np.asarray(self.config.workspace_low, dtype=np.float64)

    def _make_physics(self) -> Any:
        """The simulation this task runs in."""
        raise NotImplementedError

    def _build_spec(self) -> TaskSpec:
        cfg, r = self.config, self.robot
        return TaskSpec(
            name=self.task_name,
            robot=r.ROBOT_NAME,
            joint_names=r.JOINT_NAMES,
            joint_pos_min=r.JOINT_POS_MIN,
            joint_pos_max=r.JOINT_POS_MAX,
            joint_vel_max=r.JOINT_VEL_MAX,
            observation=self.observation_fields,
            goal=self.goal_field,
            action=ActionSpec("joint_position", "rad", (cfg.max_delta,) * r.N_JOINTS),
            control_hz=cfg.control_hz,
            physics_hz=self.physics_hz,
            episode_steps=cfg.episode_steps,
            success_threshold=cfg.success_threshold,
            workspace_low=tuple(cfg.workspace_low),
            workspace_high=tuple(cfg.workspace_high),
            cost_kinds=self.cost_kinds,
        )

    # --- gymnasium API -----------------------------------------------------------------
    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Apply joint targets ``(n,)`` (rad, clipped to the actuator ranges only) for one
        control period. Reward is ``-distance`` (goal units); never terminates, truncates
        at ``episode_steps``."""
        self._advance(self._check_action(action))
        info = self._info()
        truncated = self._steps >= self.config.episode_steps
        return self._observe(), -info["distance"], False, truncated, info

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        """``-||achieved - desired||`` over the last axis; shapes ``(..., goal size)``."""
        return -goal_distance(achieved_goal, desired_goal)

    def _render_scene(self) -> tuple[Any, Any]:
        return self.physics.data, self.robot.CAMERA

    # --- state, observation, costs -----------------------------------------------------
    def _achieved(self) -> np.ndarray:
        """The achieved goal ``(goal size,)`` read from the physics (float64)."""
        raise NotImplementedError

    def _info(self) -> dict[str, Any]:
        """Costs and diagnostics of the current state (end of the control step)."""
        cfg, physics = self.config, self.physics
        margin = float(physics.joint_limit_margin().min())
        ee_speed = float(np.linalg.norm(physics.ee_vel()))
        distance = float(np.linalg.norm(self._achieved() - self._goal))
        cost = {COST_JOINT_LIMIT: float(margin < cfg.joint_limit_threshold)}
        info: dict[str, Any] = {"cost": cost, "joint_limit_margin": margin}
        if COST_COLLISION in self.cost_kinds:
            contacts = physics.contacts().total
            cost[COST_COLLISION], info["contacts"] = float(contacts > 0), contacts
        cost[COST_SPEED] = float(ee_speed > cfg.speed_threshold)
        success = distance < cfg.success_threshold
        return {**info, "ee_speed": ee_speed, "distance": distance, "is_success": success}


class Arm7GoalEnv(ArmGoalEnv):
    """Base of the arm7 goal-envs (reach, reach_obstacles, push)."""

    robot = c

    def _make_physics(self) -> Arm7Physics:
        """The simulation this task runs in (the bare arm on its table here)."""
        return Arm7Physics()


@register(TASK_NAME, config=ReachConfig)
class ReachEnv(Arm7GoalEnv):
    """arm7 reaching with absolute joint-position targets, 25 Hz control over 500 Hz physics
    (other arms reuse it by setting ``robot`` and ``_make_physics``: ``widowx_reach``)."""

    task_name = TASK_NAME
    config_class = ReachConfig
    robot_configurable = True
    observation_fields = OBSERVATION_FIELDS
    goal_field = GOAL_FIELD
    achieved_field = ACHIEVED_FIELD
    cost_kinds = COST_KINDS
    start_pose: ClassVar[tuple[float, ...]] = c.HOME  # joints (rad) reset adds noise to
    scene_options: ClassVar[tuple[str, ...]] = ()  # reset options ``_reset_scene`` takes

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode: joints at ``start_pose`` (HOME) + uniform noise, goal uniform in
        the workspace.

        ``options`` may fix ``"joint_pos"`` (n,) rad and/or ``"goal"`` (3,) m; subclasses
        take more through ``_reset_scene``.
        """
        super().reset(seed=seed)
        options = dict(options or {})
        cfg, rng, n = self.config, self.np_random, self.robot.N_JOINTS
        noise = rng.uniform(-cfg.init_noise, cfg.init_noise, n)
        q0 = np.clip(np.asarray(self.start_pose) + noise, self.physics.pos_min, self.physics.pos_max)
        goal = rng.uniform(cfg.workspace_low, cfg.workspace_high)
        q0 = np.asarray(options.pop("joint_pos", q0), dtype=np.float64).reshape(n)
        goal = np.asarray(options.pop("goal", goal), dtype=np.float64).reshape(self.goal_field.size)
        self._reject_options(options, self.scene_options)
        self._start(q0, goal)
        self._reset_scene(options)
        self.physics.set_goal_marker(goal)
        return self._observe(), self._info()

    def _reset_scene(self, options: dict[str, Any]) -> None:
        """Hook: place task-specific scene parts after the arm and goal, drawing from
        ``self.np_random``; ``options`` holds only ``scene_options`` keys. Reach has none."""

    def state(self) -> dict[str, np.ndarray]:
        """Named raw state (float64): joint_pos (n,) rad, joint_vel (n,) rad/s, ee_pos (3,)
        m, goal (3,) m: what a real robot's runtime assembles from its sensors."""
        return {
            JOINT_POS.name: self.physics.joint_pos(),
            JOINT_VEL.name: self.physics.joint_vel(),
            EE_POS.name: self.physics.ee_pos(),
            GOAL_FIELD.name: self._goal.copy(),
        }

    def _achieved(self) -> np.ndarray:
        return self.physics.ee_pos()
