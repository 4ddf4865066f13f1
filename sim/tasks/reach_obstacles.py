"""Reach over obstacles: an arm's end effector to a low goal behind a wall of boxes.

Like ``reach``, but the arm starts low and 1-3 boxes stand on the table (the ground) between it
and the goal: a wall that the straight start-to-goal segment of the end effector goes through,
and up to two more blocks. The layout is drawn per episode from the seed; the way is up and
over. Touching a box (or the table) is a collision cost. The observation adds every obstacle
slot's center and half-sizes (absent slots are zeros).

The arm is arm7 on its table (start pose READY_LOW, the layout in ``ARM7_LAYOUT``) unless
``robot`` names a robot config: ``sim.make("reach_obstacles", robot="panda")``. Then the boxes
and a ground plane are added to that robot's model, the start pose is HOME moved by IK to the
low near edge of its workspace (the hand pointing down), and every layout field left None is
derived from its workspace box and its geometry (``sim/tasks/reach_obstacles_layout.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any

import numpy as np

from sim.registry import register
from sim.robot_config import load_robot_config
from sim.robots.arm7 import constants as c
from sim.robots.arm7.ik import hand_down
from sim.robots.arm7.scene import ObstaclePhysics
from sim.robots.configured import ConfiguredObstaclePhysics, configured_robot
from sim.spec import FieldSpec
from sim.tasks.reach import OBSERVATION_FIELDS, ReachConfig, ReachEnv
from sim.tasks.reach_obstacles_layout import ArmProbe, derive_layout

TASK_NAME = "reach_obstacles"
N_SLOTS = c.MAX_OBSTACLES  # obstacle slots in the observation, used or not
OBSTACLE_CENTERS = FieldSpec(
    "obstacle_centers", 3 * N_SLOTS, "m", "box centers, world frame, slot-major (x, y, z)"
)
OBSTACLE_HALF_SIZES = FieldSpec(
    "obstacle_half_sizes", 3 * N_SLOTS, "m", "box half-sizes along x, y, z; zeros: no box"
)
OBSTACLE_FIELDS: tuple[FieldSpec, ...] = (*OBSERVATION_FIELDS, OBSTACLE_CENTERS, OBSTACLE_HALF_SIZES)
Range = tuple[float, float]
Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class ReachObstaclesConfig(ReachConfig):
    """Reach-over-obstacles settings; ``workspace_low/high`` is the goal sampling box.

    Every layout field left None is the arm's: arm7's numbers (``ARM7_LAYOUT``), or derived from
    a configured robot's workspace and kinematics (``derive_layout``).
    """

    episode_steps: int = 100
    """Control steps per episode; the episode is truncated after this many."""
    init_noise: float = 0.05
    """Half-width of the uniform noise added to the start pose at reset, per joint (rad)."""
    workspace_low: Vec3 | None = None
    """Lower corner of the goal sampling box, world frame (m): low, beyond the wall."""
    workspace_high: Vec3 | None = None
    """Upper corner of the goal sampling box, world frame (m)."""
    min_obstacles: int = 1
    """Fewest boxes per episode (the wall is always there), 1..3."""
    max_obstacles: int = 3
    """Most boxes per episode, ``min_obstacles..3``; the ones after the wall are blocks."""
    wall_half_thickness: Range | None = None
    """Range of the wall's half-size along x (m)."""
    wall_half_width: Range | None = None
    """Range of the wall's half-size along y (m)."""
    wall_clearance: float | None = None
    """Least x distance from the wall to the start end effector (and to the goal) (m)."""
    wall_goal_clearance: float | None = None
    """Least x distance from the wall to the goal (m); None: ``wall_clearance``."""
    wall_margin: float | None = None
    """Least height of the wall top over the straight start-to-goal segment (m)."""
    wall_max_over_goal: float | None = None
    """Most height of the wall top over the goal (m), so that the arm, with the end effector
    at the goal, clears it (arm7: the wrist is ~0.16 m over the fingertips)."""
    block_low: tuple[float, float] | None = None
    """Lower corner of the xy box that block centers are drawn from (m)."""
    block_high: tuple[float, float] | None = None
    """Upper corner of that box (m)."""
    block_half_size: Range | None = None
    """Range of a block's half-sizes along x and y (m)."""
    block_height: Range | None = None
    """Range of a block's height over the table (m)."""
    block_clearance: float | None = None
    """Least xy distance from the start and goal end effector to a block (m)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.min_obstacles <= self.max_obstacles <= N_SLOTS:
            raise ValueError(
                f"ReachObstaclesConfig needs 1 <= min_obstacles <= max_obstacles <= {N_SLOTS}, "
                f"got {self.min_obstacles}, {self.max_obstacles}"
            )
        for name in ("wall_half_thickness", "wall_half_width", "block_half_size", "block_height"):
            value = getattr(self, name)
            if value is not None and not 0 < value[0] <= value[1]:
                raise ValueError(f"ReachObstaclesConfig.{name} must be 0 < low <= high")


# arm7 on its table, starting at READY_LOW (end effector ~0.38 m ahead, ~0.15 m up)
ARM7_LAYOUT: dict[str, Any] = {
    "workspace_low": (0.58, -0.2, 0.06),
    "workspace_high": (0.68, 0.2, 0.15),
    "wall_half_thickness": (0.02, 0.035),
    "wall_half_width": (0.1, 0.18),
    "wall_clearance": 0.07,
    "wall_goal_clearance": 0.07,
    "wall_margin": 0.03,
    "wall_max_over_goal": 0.13,
    "block_low": (0.4, -0.35),
    "block_high": (0.58, 0.35),
    "block_half_size": (0.02, 0.05),
    "block_height": (0.06, 0.2),
    "block_clearance": 0.15,
}


def sample_layout(
    rng: np.random.Generator, cfg: ReachObstaclesConfig, start: np.ndarray, goal: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Draw the boxes of one episode: a wall across the straight path, then blocks.

    Args:
        rng: the env's generator.
        cfg: ranges to draw from (every layout field set).
        start: end-effector position at reset ``(3,)`` (m).
        goal: goal position ``(3,)`` (m).

    Returns:
        centers and half-sizes, each ``(N_SLOTS, 3)`` (m); unused slots are zeros.
    """
    centers, halves = np.zeros((N_SLOTS, 3)), np.zeros((N_SLOTS, 3))
    n = int(rng.integers(cfg.min_obstacles, cfg.max_obstacles + 1))
    half_x = rng.uniform(*cfg.wall_half_thickness)
    lo_x = start[0] + cfg.wall_clearance + half_x
    goal_clearance = cfg.wall_clearance if cfg.wall_goal_clearance is None else cfg.wall_goal_clearance
    hi_x = goal[0] - goal_clearance - half_x
    x = rng.uniform(lo_x, hi_x) if lo_x < hi_x else (lo_x + hi_x) / 2
    frac = np.clip((x - start[0]) / max(goal[0] - start[0], 1e-6), 0.0, 1.0)
    line = start + frac * (goal - start)  # the straight segment at the wall's center
    path_z = max(start[2], goal[2], line[2])  # the straight segment's top (m)
    low_top = path_z + cfg.wall_margin
    top = rng.uniform(low_top, max(low_top, goal[2] + cfg.wall_max_over_goal))
    half_y = rng.uniform(*cfg.wall_half_width)
    y = line[1] + rng.uniform(-0.5, 0.5) * half_y  # the segment crosses its middle half
    centers[0], halves[0] = (x, y, top / 2), (half_x, half_y, top / 2)
    for i in range(1, n):
        half = rng.uniform(*cfg.block_half_size, size=2)
        height = rng.uniform(*cfg.block_height)
        for _ in range(20):  # rejection: keep the start and the goal free, else no block
            xy = rng.uniform(cfg.block_low, cfg.block_high)
            if min(box_xy_distance(p, xy, half) for p in (goal, start)) > cfg.block_clearance:
                centers[i], halves[i] = (*xy, height / 2), (*half, height / 2)
                break
    return centers, halves


def box_xy_distance(point: np.ndarray, center: np.ndarray, half: np.ndarray) -> float:
    """Horizontal distance (m) from ``point`` (>= 2,) to an axis-aligned box's footprint."""
    gap = np.maximum(np.abs(np.asarray(point[:2]) - center[:2]) - half[:2], 0.0)
    return float(np.linalg.norm(gap))


@register(TASK_NAME, config=ReachObstaclesConfig)
class ReachObstaclesEnv(ReachEnv):
    """An arm (arm7, or ``robot``) reaching a goal behind 1-3 boxes; contacts with them are
    collisions."""

    task_name = TASK_NAME
    config_class = ReachObstaclesConfig
    robot_configurable = True
    observation_fields = OBSTACLE_FIELDS
    start_pose = c.READY_LOW
    scene_options = (OBSTACLE_CENTERS.name, OBSTACLE_HALF_SIZES.name)
    hand_rotation = hand_down(0.0)  # end-effector orientation (3, 3) the start pose has, world frame

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._centers = np.zeros((N_SLOTS, 3))  # (slots, 3) m, set at every reset
        self._halves = np.zeros((N_SLOTS, 3))
        super().__init__(*args, **kwargs)

    def _make_physics(self) -> ObstaclePhysics:
        return ObstaclePhysics(N_SLOTS)

    def _load(self) -> None:
        given = self.config  # its None layout fields are the arm's
        super()._load()  # the arm: arm7, or the configured robot (its bare model, replaced below)
        layout = ARM7_LAYOUT
        if given.robot:
            model, _ = configured_robot(given.robot, obstacles=N_SLOTS)
            self.physics = ConfiguredObstaclePhysics(model, self.robot, N_SLOTS)
            source = load_robot_config(given.robot).source
            self.start_pose, self.hand_rotation, layout = configured_layout(self.physics, self.robot, source)
        chosen = {k: v for k, v in layout.items() if getattr(given, k) is None}
        self.config = replace(self.config, **chosen)
        self._goal = np.asarray(self.config.workspace_low, dtype=np.float64)

    def _reset_scene(self, options: dict[str, Any]) -> None:
        """Draw the boxes; ``options`` may fix ``"obstacle_centers"`` and
        ``"obstacle_half_sizes"`` (``(3, 3)`` m each, zero half-sizes: no box)."""
        centers, halves = sample_layout(self.np_random, self.config, self.physics.ee_pos(), self._goal)
        self._centers = np.asarray(options.pop(OBSTACLE_CENTERS.name, centers), float).reshape(N_SLOTS, 3)
        self._halves = np.asarray(options.pop(OBSTACLE_HALF_SIZES.name, halves), float).reshape(N_SLOTS, 3)
        self.physics.set_obstacles(self._centers, self._halves)

    def state(self) -> dict[str, np.ndarray]:
        """Reach's state plus obstacle_centers (9,) m and obstacle_half_sizes (9,) m."""
        return {
            **super().state(),
            OBSTACLE_CENTERS.name: self._centers.reshape(-1).copy(),
            OBSTACLE_HALF_SIZES.name: self._halves.reshape(-1).copy(),
        }


# a configured robot's constants -> its start pose, hand orientation and layout (computed once)
_DERIVED: dict[int, tuple[SimpleNamespace, tuple[Any, ...]]] = {}


def configured_layout(
    physics: ConfiguredObstaclePhysics, robot: SimpleNamespace, source: str
) -> tuple[tuple[float, ...], np.ndarray, dict[str, Any]]:
    """A configured arm's start pose (rad), hand orientation ``(3, 3)`` and layout fields
    (``sim/tasks/reach_obstacles_layout.py``); raises ``ValueError`` naming the robot config
    (``source``, its YAML) when the arm cannot do the task."""
    if id(robot) not in _DERIVED:
        where = f"robot {robot.ROBOT_NAME!r} ({source})"
        if physics.arm_collision_geoms() == 0:
            raise ValueError(
                f"reach_obstacles on {where}: the arm has no collision geometry (no geom of "
                f"{list(robot.ARM_BODY_NAMES)} has contype/conaffinity), so touching a box cannot be seen"
            )
        probe = ArmProbe(physics, robot)
        low, high = np.asarray(robot.WORKSPACE_LOW), np.asarray(robot.WORKSPACE_HIGH)
        start, layout = derive_layout(probe, low, high, where)
        probe.rotation.setflags(write=False)  # shared by every env of this robot
        _DERIVED[id(robot)] = (robot, (tuple(start.tolist()), probe.rotation, layout))
    return _DERIVED[id(robot)][1]  # type: ignore[return-value]
