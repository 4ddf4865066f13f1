"""Reach over obstacles: arm7's end effector to a low goal behind a wall of boxes.

Like ``reach``, but the arm starts low (READY_LOW) and 1-3 boxes stand on the table between
it and the goal: a wall that the straight start-to-goal segment of the end effector goes
through, and up to two more blocks. The layout is drawn per episode from the seed; the way
is up and over. Touching a box is a collision cost.
The observation adds every obstacle slot's center and half-sizes (absent slots are zeros).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.registry import register
from sim.robots.arm7 import constants as c
from sim.robots.arm7.scene import ObstaclePhysics
from sim.spec import FieldSpec
from sim.tasks.reach import OBSERVATION_FIELDS, ReachConfig, ReachEnv

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


@dataclass(frozen=True)
class ReachObstaclesConfig(ReachConfig):
    """Reach-over-obstacles settings; ``workspace_low/high`` is the goal sampling box."""

    episode_steps: int = 100
    """Control steps per episode; the episode is truncated after this many."""
    init_noise: float = 0.05
    """Half-width of the uniform noise added to READY_LOW at reset, per joint (rad)."""
    workspace_low: tuple[float, float, float] = (0.58, -0.2, 0.06)
    """Lower corner of the goal sampling box, world frame (m): low, beyond the wall."""
    workspace_high: tuple[float, float, float] = (0.68, 0.2, 0.15)
    """Upper corner of the goal sampling box, world frame (m)."""
    min_obstacles: int = 1
    """Fewest boxes per episode (the wall is always there), 1..3."""
    max_obstacles: int = 3
    """Most boxes per episode, ``min_obstacles..3``; the ones after the wall are blocks."""
    wall_half_thickness: Range = (0.02, 0.035)
    """Range of the wall's half-size along x (m)."""
    wall_half_width: Range = (0.1, 0.18)
    """Range of the wall's half-size along y (m)."""
    wall_clearance: float = 0.07
    """Least x distance from the wall to the start and to the goal end effector (m)."""
    wall_margin: float = 0.03
    """Least height of the wall top over the straight start-to-goal segment (m)."""
    wall_max_over_goal: float = 0.13
    """Most height of the wall top over the goal (m), so that the wrist, ~0.16 m over
    the fingertips, clears it with the hand at the goal."""
    block_low: tuple[float, float] = (0.4, -0.35)
    """Lower corner of the xy box that block centers are drawn from (m)."""
    block_high: tuple[float, float] = (0.58, 0.35)
    """Upper corner of that box (m)."""
    block_half_size: Range = (0.02, 0.05)
    """Range of a block's half-sizes along x and y (m)."""
    block_height: Range = (0.06, 0.2)
    """Range of a block's height over the table (m)."""
    block_clearance: float = 0.15
    """Least xy distance from the start and goal end effector to a block (m)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.min_obstacles <= self.max_obstacles <= N_SLOTS:
            raise ValueError(
                f"ReachObstaclesConfig needs 1 <= min_obstacles <= max_obstacles <= {N_SLOTS}, "
                f"got {self.min_obstacles}, {self.max_obstacles}"
            )
        for name in ("wall_half_thickness", "wall_half_width", "block_half_size", "block_height"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"ReachObstaclesConfig.{name} must be 0 < low <= high")


def sample_layout(
    rng: np.random.Generator, cfg: ReachObstaclesConfig, start: np.ndarray, goal: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Draw the boxes of one episode: a wall across the straight path, then blocks.

    Args:
        rng: the env's generator.
        cfg: ranges to draw from.
        start: end-effector position at reset ``(3,)`` (m).
        goal: goal position ``(3,)`` (m).

    Returns:
        centers and half-sizes, each ``(N_SLOTS, 3)`` (m); unused slots are zeros.
    """
    centers, halves = np.zeros((N_SLOTS, 3)), np.zeros((N_SLOTS, 3))
    n = int(rng.integers(cfg.min_obstacles, cfg.max_obstacles + 1))
    half_x = rng.uniform(*cfg.wall_half_thickness)
    lo_x = start[0] + cfg.wall_clearance + half_x
    hi_x = goal[0] - cfg.wall_clearance - half_x
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
    """arm7 reaching a goal behind 1-3 boxes; contacts with them are collisions."""

    task_name = TASK_NAME
    config_class = ReachObstaclesConfig
    observation_fields = OBSTACLE_FIELDS
    start_pose = c.READY_LOW
    scene_options = (OBSTACLE_CENTERS.name, OBSTACLE_HALF_SIZES.name)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._centers = np.zeros((N_SLOTS, 3))  # (slots, 3) m, set at every reset
        self._halves = np.zeros((N_SLOTS, 3))
        super().__init__(*args, **kwargs)

    def _make_physics(self) -> ObstaclePhysics:
        return ObstaclePhysics(N_SLOTS)

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
