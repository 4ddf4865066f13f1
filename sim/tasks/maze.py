"""Maze: drive a point mass from a random free cell to the center of another free cell.

Goal-env observations (``observation``, ``achieved_goal``, ``desired_goal``); actions are
absolute x/y position targets (m) for the agent's two slide joints. Registered twice:
``maze`` (8 x 8 cells, 500 steps) and ``maze_large`` (9 x 12 cells, 1000 steps); both take
every ``MazeConfig`` field. Each step reports safety costs in ``info["cost"]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.goal_env import PhysicsGoalEnv, goal_distance
from sim.registry import register
from sim.robots.pointmass import constants as c
from sim.robots.pointmass.layouts import LAYOUTS, load_layout
from sim.robots.pointmass.physics import PointMassPhysics
from sim.spec import ActionSpec, FieldSpec, TaskSpec

JOINT_POS = FieldSpec("joint_pos", c.N_JOINTS, "m", "agent x, y (slide joint positions)")
JOINT_VEL = FieldSpec("joint_vel", c.N_JOINTS, "m/s", "agent x, y velocity")
OBSERVATION_FIELDS: tuple[FieldSpec, ...] = (JOINT_POS, JOINT_VEL)
GOAL_FIELD = FieldSpec("goal", 2, "m", "target agent x, y: the center of a free cell")
ACHIEVED_FIELD = JOINT_POS  # the state field that ``achieved_goal`` reports
COST_JOINT_LIMIT, COST_COLLISION, COST_SPEED = "joint_limit", "collision", "speed"
COST_KINDS: tuple[str, ...] = (COST_JOINT_LIMIT, COST_COLLISION, COST_SPEED)
REWARDS = ("dense", "sparse")


@dataclass(frozen=True)
class MazeConfig:
    """Maze task settings; ``sim.make("maze", **overrides)`` replaces fields by name."""

    layout: str = "medium"
    """Maze map name, one of ``sim.robots.pointmass.layouts.LAYOUTS`` ("medium", "large")."""
    control_hz: float = 25.0
    """Control rate (Hz); the physics rate (500 Hz) must be an integer multiple of it."""
    episode_steps: int = 500
    """Control steps per episode; the episode is truncated after this many."""
    success_threshold: float = 0.5
    """Agent to goal distance counted as success (m); cells are 1 m wide."""
    max_delta: float = 0.2
    """Largest intended target change per control step and axis (m), declared in the action
    spec for policies to scale by (a target 0.2 m ahead moves the agent at ~1.3 m/s); the
    env itself does not enforce it."""
    init_noise: float = 0.1
    """Half-width of the uniform noise added to the start cell's center, per axis (m)."""
    reward: str = "dense"
    """"dense": ``-distance`` (m); "sparse": 0 within ``success_threshold``, else -1."""
    joint_limit_threshold: float = 0.05
    """``joint_limit`` cost is 1 when the agent is closer than this to the outer bounds (m)."""
    speed_threshold: float = 2.0
    """``speed`` cost is 1 when the agent's speed exceeds this (m/s)."""

    def __post_init__(self) -> None:
        name = type(self).__name__
        if self.layout not in LAYOUTS:
            raise ValueError(f"{name}.layout={self.layout!r} is not a maze layout; known: {sorted(LAYOUTS)}")
        if self.reward not in REWARDS:
            raise ValueError(f"{name}.reward={self.reward!r} must be one of {REWARDS}")
        for key in ("control_hz", "episode_steps", "success_threshold", "max_delta", "speed_threshold"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{name}.{key} must be > 0, got {getattr(self, key)}")
        for key in ("init_noise", "joint_limit_threshold"):
            if getattr(self, key) < 0:
                raise ValueError(f"{name}.{key} must be >= 0, got {getattr(self, key)}")


@dataclass(frozen=True)
class MazeLargeConfig(MazeConfig):
    """``maze_large``: the same fields, with the large map and longer episodes by default."""

    layout: str = "large"
    """Maze map name, one of ``sim.robots.pointmass.layouts.LAYOUTS``."""
    episode_steps: int = 1000
    """Control steps per episode; the episode is truncated after this many."""


@register("maze", config=MazeConfig)
class MazeEnv(PhysicsGoalEnv):
    """Point mass in a maze with absolute x/y targets, 25 Hz control over 500 Hz physics."""

    task_name = "maze"
    config_class: type[MazeConfig] = MazeConfig
    goal_field = GOAL_FIELD
    achieved_field = ACHIEVED_FIELD

    def _load(self) -> None:
        self.layout = load_layout(self.config.layout, c.CELL_SIZE)
        self.physics = PointMassPhysics(self.layout)
        self._set_rates()
        self._free_centers = np.array([self.layout.cell_center(cell) for cell in self.layout.free_cells])
        self._pos_min, self._pos_max = self.physics.pos_min.tolist(), self.physics.pos_max.tolist()
        self._goal = self._free_centers[0].copy()

    def _build_spec(self) -> TaskSpec:
        cfg, physics = self.config, self.physics
        return TaskSpec(
            name=self.task_name,
            robot=c.ROBOT_NAME,
            joint_names=c.JOINT_NAMES,
            joint_pos_min=tuple(physics.pos_min.tolist()),
            joint_pos_max=tuple(physics.pos_max.tolist()),
            joint_vel_max=(c.VEL_MAX,) * c.N_JOINTS,
            observation=OBSERVATION_FIELDS,
            goal=GOAL_FIELD,
            action=ActionSpec("joint_position", "m", (cfg.max_delta,) * c.N_JOINTS),
            control_hz=cfg.control_hz,
            physics_hz=self.physics_hz,
            episode_steps=cfg.episode_steps,
            success_threshold=cfg.success_threshold,
            workspace_low=tuple(physics.pos_min.tolist()),
            workspace_high=tuple(physics.pos_max.tolist()),
            cost_kinds=COST_KINDS,
        )

    # --- gymnasium API -----------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode at rest: agent near a random free cell's center (uniform noise),
        goal at the center of another free cell. ``options`` may fix ``"joint_pos"`` (2,) m
        and/or ``"goal"`` (2,) m."""
        super().reset(seed=seed)
        options = dict(options or {})
        rng, n = self.np_random, len(self._free_centers)
        start = int(rng.integers(n))
        goal_index = (start + 1 + int(rng.integers(n - 1))) % n  # any other free cell
        noise = rng.uniform(-self.config.init_noise, self.config.init_noise, c.N_JOINTS)
        q0 = np.asarray(options.pop("joint_pos", self._free_centers[start] + noise), dtype=np.float64)
        goal = np.asarray(options.pop("goal", self._free_centers[goal_index]), dtype=np.float64)
        self._reject_options(options)
        self._start(q0.reshape(c.N_JOINTS), goal.reshape(GOAL_FIELD.size).copy())
        self.physics.set_goal_marker(self._goal)
        return self._observe(), self._info()

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Apply x/y targets ``(2,)`` (m, clipped to the actuator ranges only) for one control
        period. Never terminates; truncates at ``episode_steps``."""
        self._advance(self._check_action(action))
        state = self.state()
        obs, info = self._observe(state), self._info(state)
        # from the float32 goals, so that relabelled rewards of a dataset match it exactly
        reward = float(self.compute_reward(obs["achieved_goal"], obs["desired_goal"], info))
        return obs, reward, False, self._steps >= self.config.episode_steps, info

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        """Dense ``-||achieved - desired||`` (m) or sparse ``0 / -1`` over the last axis;
        shapes ``(..., 2)``."""
        distance = goal_distance(achieved_goal, desired_goal)
        if self.config.reward == "sparse":
            return (distance < self.config.success_threshold).astype(np.float64) - 1.0
        return -distance

    def _render_scene(self) -> tuple[Any, Any]:
        self.physics.refresh()  # body poses of the current state (mj_step leaves them a step behind)
        return self.physics.data, c.CAMERA

    # --- state, observation, costs -----------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        """Named raw state (float64): joint_pos (2,) m, joint_vel (2,) m/s, goal (2,) m."""
        return {
            JOINT_POS.name: self.physics.joint_pos(),
            JOINT_VEL.name: self.physics.joint_vel(),
            GOAL_FIELD.name: self._goal.copy(),
        }

    def _info(self, state: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
        """Costs and diagnostics at the end of the control step (contacts: last physics step).
        Plain float arithmetic: numpy calls on 2-vectors would cost more than the physics."""
        cfg, physics = self.config, self.physics
        state = self.state() if state is None else state
        (x, y), (vx, vy) = state[JOINT_POS.name].tolist(), state[JOINT_VEL.name].tolist()
        (x_min, y_min), (x_max, y_max) = self._pos_min, self._pos_max
        margin = min(x - x_min, x_max - x, y - y_min, y_max - y)
        contacts = physics.wall_contacts()
        speed = math.hypot(vx, vy)
        gx, gy = self._goal.tolist()
        distance = math.hypot(x - gx, y - gy)
        cost = {
            COST_JOINT_LIMIT: float(margin < cfg.joint_limit_threshold),
            COST_COLLISION: float(contacts > 0),
            COST_SPEED: float(speed > cfg.speed_threshold),
        }
        return {
            "cost": cost,
            "joint_limit_margin": margin,
            "contacts": contacts,
            "speed": speed,
            "distance": distance,
            "is_success": distance < cfg.success_threshold,
        }


@register("maze_large", config=MazeLargeConfig)
class MazeLargeEnv(MazeEnv):
    """``maze`` with ``MazeLargeConfig`` defaults: the 9 x 12 map, 1000-step episodes."""

    task_name = "maze_large"
    config_class = MazeLargeConfig
