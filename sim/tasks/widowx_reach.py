"""WidowX reach: move the wx200's end effector to a goal point sampled in its workspace box.

Goal-env observations (``observation``, ``achieved_goal``, ``desired_goal``); actions are
absolute joint-position targets (rad) for the five arm joints, held by position servos. The
robot spec of this task (joint names, limits, fields) is what WidowX bundles and replays of
real WidowX logs are checked against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from sim.observation import build_observation, field_vector
from sim.registry import register
from sim.robots.widowx200 import constants as c
from sim.robots.widowx200.physics import WidowXPhysics
from sim.spec import ActionSpec, FieldSpec, TaskSpec
from sim.tasks.reach import make_config

TASK_NAME = "widowx_reach"
JOINT_POS = FieldSpec("joint_pos", c.N_JOINTS, "rad", "measured joint positions")
JOINT_VEL = FieldSpec("joint_vel", c.N_JOINTS, "rad/s", "measured joint velocities")
EE_POS = FieldSpec("ee_pos", 3, "m", "end-effector position, world frame")
OBSERVATION_FIELDS: tuple[FieldSpec, ...] = (JOINT_POS, JOINT_VEL, EE_POS)
GOAL_FIELD = FieldSpec("goal", 3, "m", "target end-effector position, world frame")
COST_JOINT_LIMIT, COST_SPEED = "joint_limit", "speed"
COST_KINDS: tuple[str, ...] = (COST_JOINT_LIMIT, COST_SPEED)


@dataclass(frozen=True)
class WidowXReachConfig:
    """WidowX reach settings; ``WidowXReachEnv(**overrides)`` replaces fields by name."""

    control_hz: float = 25.0
    """Control (policy) rate (Hz); the physics rate (500 Hz) must be an integer multiple of it."""
    episode_steps: int = 100
    """Control steps per episode; the episode is truncated after this many."""
    success_threshold: float = 0.02
    """End-effector to goal distance counted as success (m)."""
    max_delta: float = 1.0
    """Largest target change from the measured position per control step and joint (rad),
    declared in the action spec for policies to scale by. Position-mode servos are commanded
    well ahead of where the joint is (the vendor's sweep leads by up to ~0.9 rad)."""
    init_noise: float = 0.3
    """Half-width of the uniform noise added to HOME at reset, per joint (rad)."""
    workspace_low: tuple[float, float, float] = c.WORKSPACE_LOW
    """Lower corner of the goal sampling box, world frame (m)."""
    workspace_high: tuple[float, float, float] = c.WORKSPACE_HIGH
    """Upper corner of the goal sampling box, world frame (m)."""
    joint_limit_threshold: float = 0.05
    """``joint_limit`` cost is 1 when any joint is closer than this to a limit (rad)."""
    speed_threshold: float = 1.0
    """``speed`` cost is 1 when the end-effector speed exceeds this (m/s)."""

    def __post_init__(self) -> None:
        for name in ("control_hz", "episode_steps", "success_threshold", "max_delta"):
            if getattr(self, name) <= 0:
                raise ValueError(f"WidowXReachConfig.{name} must be > 0, got {getattr(self, name)}")


@register(TASK_NAME, config=WidowXReachConfig)
class WidowXReachEnv(gym.Env):
    """wx200 reaching with absolute joint-position targets, 25 Hz control over 500 Hz physics."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 25}  # noqa: RUF012
    home: tuple[float, ...] = c.HOME  # the IK expert's null-space posture (sim/experts/reach_expert.py)

    def __init__(self, config: Any = None, render_mode: str | None = None, **overrides: Any) -> None:
        self.config = make_config(config, overrides, WidowXReachConfig)
        self.render_mode = render_mode
        self.physics = WidowXPhysics()
        self.physics_hz = round(1.0 / self.physics.timestep, 6)
        substeps = self.physics_hz / self.config.control_hz
        if abs(substeps - round(substeps)) > 1e-9:
            raise ValueError(
                f"WidowXReachConfig.control_hz={self.config.control_hz} does not divide {self.physics_hz} Hz"
            )
        self.substeps = round(substeps)
        cfg = self.config
        self._spec = TaskSpec(
            name=TASK_NAME,
            robot=c.ROBOT_NAME,
            joint_names=c.JOINT_NAMES,
            joint_pos_min=c.JOINT_POS_MIN,
            joint_pos_max=c.JOINT_POS_MAX,
            joint_vel_max=c.JOINT_VEL_MAX,
            observation=OBSERVATION_FIELDS,
            goal=GOAL_FIELD,
            action=ActionSpec("joint_position", "rad", (cfg.max_delta,) * c.N_JOINTS),
            control_hz=cfg.control_hz,
            physics_hz=self.physics_hz,
            episode_steps=cfg.episode_steps,
            success_threshold=cfg.success_threshold,
            workspace_low=tuple(cfg.workspace_low),
            workspace_high=tuple(cfg.workspace_high),
            cost_kinds=COST_KINDS,
        )
        self.action_space = gym.spaces.Box(
            self.physics.ctrl_min.astype(np.float32),
            self.physics.ctrl_max.astype(np.float32),
            dtype=np.float32,
        )
        goal_box = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
        self.observation_space = gym.spaces.Dict(
            {
                "observation": gym.spaces.Box(-np.inf, np.inf, (self._spec.obs_size,), np.float32),
                "achieved_goal": goal_box,
                "desired_goal": goal_box,
            }
        )
        self._goal = np.asarray(cfg.workspace_low, dtype=np.float64)
        self._steps = 0
        self._renderer: Any = None

    @property
    def task_spec(self) -> TaskSpec:
        """The task spec (joint names, limits, fields, rates, costs)."""
        return self._spec

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Joints at HOME + uniform noise, goal uniform in the workspace box; ``options`` may
        fix ``"joint_pos"`` (5,) rad and/or ``"goal"`` (3,) m."""
        super().reset(seed=seed)
        options = dict(options or {})
        cfg, rng, p = self.config, self.np_random, self.physics
        q0 = np.clip(
            np.asarray(c.HOME) + rng.uniform(-cfg.init_noise, cfg.init_noise, c.N_JOINTS),
            p.pos_min,
            p.pos_max,
        )
        goal = rng.uniform(cfg.workspace_low, cfg.workspace_high)
        q0 = np.asarray(options.pop("joint_pos", q0), dtype=np.float64).reshape(c.N_JOINTS)
        goal = np.asarray(options.pop("goal", goal), dtype=np.float64).reshape(3)
        if options:
            raise ValueError(f"{TASK_NAME} reset: unknown option(s) {sorted(options)}")
        p.reset()
        p.set_joint_state(q0, np.zeros(c.N_JOINTS))
        p.set_targets(q0)
        p.set_goal_marker(goal)
        self._goal, self._steps = goal, 0
        return self._observe(), self._info()

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Apply joint targets ``(5,)`` (rad, clipped to the servo ranges) for one control period."""
        target = np.asarray(action, dtype=np.float64)
        if target.shape != (c.N_JOINTS,) or not np.all(np.isfinite(target)):
            raise ValueError(f"{TASK_NAME}: action must be {c.N_JOINTS} finite values, got {target}")
        self.physics.set_targets(target)
        self.physics.step(self.substeps)
        self._steps += 1
        info = self._info()
        return self._observe(), -info["distance"], False, self._steps >= self.config.episode_steps, info

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        """``-||achieved - desired||`` over the last axis (m)."""
        diff = np.asarray(achieved_goal, np.float64) - np.asarray(desired_goal, np.float64)
        return -np.linalg.norm(diff, axis=-1)

    def state(self) -> dict[str, np.ndarray]:
        """joint_pos (5,) rad, joint_vel (5,) rad/s, ee_pos (3,) m, goal (3,) m (float64)."""
        p = self.physics
        return {
            JOINT_POS.name: p.joint_pos(),
            JOINT_VEL.name: p.joint_vel(),
            EE_POS.name: p.ee_pos(),
            GOAL_FIELD.name: self._goal.copy(),
        }

    def _observe(self) -> dict[str, np.ndarray]:
        state = self.state()
        return {
            "observation": build_observation(state, self._spec.observation),
            "achieved_goal": field_vector(state, EE_POS).astype(np.float32),
            "desired_goal": field_vector(state, GOAL_FIELD).astype(np.float32),
        }

    def _info(self) -> dict[str, Any]:
        cfg, p = self.config, self.physics
        margin = float(p.joint_limit_margin().min())
        ee_speed = float(np.linalg.norm(p.ee_vel()))
        distance = float(np.linalg.norm(p.ee_pos() - self._goal))
        cost = {
            COST_JOINT_LIMIT: float(margin < cfg.joint_limit_threshold),
            COST_SPEED: float(ee_speed > cfg.speed_threshold),
        }
        return {
            "cost": cost,
            "joint_limit_margin": margin,
            "ee_speed": ee_speed,
            "distance": distance,
            "is_success": distance < cfg.success_threshold,
        }

    def render(self, width: int = 640, height: int = 480) -> np.ndarray | None:
        """An ``(height, width, 3)`` uint8 image from the workspace camera in ``"rgb_array"`` mode."""
        if self.render_mode != "rgb_array":
            return None
        if self._renderer is None or (self._renderer.height, self._renderer.width) != (height, width):
            from sim.video import offscreen_renderer

            self.close()
            self._renderer = offscreen_renderer(self.physics.model, height, width)
        self._renderer.update_scene(self.physics.data, camera=c.CAMERA)
        return self._renderer.render()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
