"""Push: arm7 slides a puck across the table to a goal, around a low block in the way.

The puck starts on one side of the arm's front lane (|y| ~0.2 m) and its goal lies on the
other side; a fixed block at the middle stops a straight push, so the puck must go around
it on the near side (toward the robot) or the far side. The goal is the puck's target
position (m); ``achieved_goal`` is the puck's position. Touching the puck is the task, so
arm-puck contacts are not collisions; the arm against the table, the block or itself is.
Each episode draws a ``mode`` (0: near side, 1: far side) that the scripted expert follows
and ``info["mode"]`` reports; it is not observed, so expert data is bimodal.
With ``pocket_depth`` two walls stand out of the block's face toward the puck's start, one at
each end: a pocket the puck fits in, set by the block and the goal (not observed apart).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.registry import register
from sim.robots.arm7 import constants as c
from sim.robots.arm7.scene import PushPhysics
from sim.spec import FieldSpec
from sim.tasks.reach import COST_KINDS, EE_POS, JOINT_POS, JOINT_VEL, Arm7GoalEnv, ReachConfig

TASK_NAME = "push"
OBJECT_POS = FieldSpec("object_pos", 3, "m", "puck center, world frame")
OBJECT_QUAT = FieldSpec("object_quat", 4, "1", "puck orientation, unit quaternion (w, x, y, z)")
OBSTACLE_CENTER = FieldSpec("obstacle_center", 3, "m", "block center, world frame")
OBSTACLE_HALF_SIZE = FieldSpec("obstacle_half_size", 3, "m", "block half-sizes along x, y, z")
OBSERVATION_FIELDS: tuple[FieldSpec, ...] = (
    JOINT_POS,
    JOINT_VEL,
    EE_POS,
    OBJECT_POS,
    OBJECT_QUAT,
    OBSTACLE_CENTER,
    OBSTACLE_HALF_SIZE,
)
GOAL_FIELD = FieldSpec("goal", 3, "m", "target puck center, world frame (on the table)")
POCKET_WALL_HALF = 0.008  # half-thickness of a pocket wall (m)
MODE_NEAR, MODE_FAR = 0, 1  # which side of the block the expert takes (toward the robot or not)
Range = tuple[float, float]


@dataclass(frozen=True)
class PushConfig(ReachConfig):
    """Push settings; ``workspace_low/high`` bounds the puck, goal and pusher (m, declared)."""

    episode_steps: int = 250
    """Control steps per episode (10 s at 25 Hz); truncated after this many."""
    success_threshold: float = 0.04
    """Puck center to goal distance counted as success (m)."""
    workspace_low: tuple[float, float, float] = (0.3, -0.3, 0.0)
    """Lower corner of the box holding the puck, the goal and the pusher (m)."""
    workspace_high: tuple[float, float, float] = (0.7, 0.3, 0.15)
    """Upper corner of that box (m)."""
    lane_x: Range = (0.47, 0.53)
    """Range of the x of the puck's start and of the goal (m)."""
    side_y: Range = (0.17, 0.22)
    """Range of |y| of the start and of the goal, on opposite sides of y = 0 (m)."""
    block_half_x: Range = (0.04, 0.06)
    """Range of the block's half-size across the lane, along x (m)."""
    block_half_y: Range = (0.015, 0.03)
    """Range of the block's half-size along the lane, along y (m)."""
    block_height: float = 0.025
    """Block height (m): as tall as the puck and lower than the palm's underside while
    pushing (0.03 m), so the palm may pass over it; the puck and the fingertips may not."""
    block_jitter: float = 0.015
    """Largest offset of the block's xy from the start-goal midpoint (m)."""
    late_fork: bool = False
    """Off (default): the expert heads for its side of the block from the first step, so the
    hidden ``mode`` shows in the arm's approach. On: the expert first pushes the puck straight
    at the block, to a point on the block's axis level with the detour's start, and turns to
    its side only there; both modes look the same until the puck is ~6 cm from that fork, and
    the mean of the two ways on (what a regression policy learns) pushes it into the block."""
    pocket_depth: float = 0.0
    """Length (m) of the two walls standing out of the block's face toward the puck's start,
    one beside each end of it (0: no walls). The pocket between them is wider than the
    puck: a push straight at the block (the mean of the two ways) lodges the puck in it, and
    the expert, which goes around the walls as well, never shows a way out. A test of whether
    a policy commits to one way, with ``late_fork``; it needs 3 obstacle slots. The expert
    stops the puck at the fork, a clearance further out than without walls; ``side_y``
    (0.21, 0.25) leaves room for that (the expert: 98 of 100 episodes, 82 with 0.01 rad
    action noise; 29 of 40 with that noise and the default ``side_y``)."""
    paired_modes: bool = False
    """On: a reset without a seed right after a fresh layout replays that layout (start joints,
    puck, goal, block) with the other ``mode``, so collected data shows each situation both
    ways and ``mode`` cannot be told from the layout. Seeded resets always draw a fresh layout."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("lane_x", "side_y", "block_half_x", "block_half_y"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"PushConfig.{name} must be 0 < low <= high")
        if not 0 <= self.pocket_depth <= 0.1:
            raise ValueError(f"PushConfig.pocket_depth must be in [0, 0.1] m, got {self.pocket_depth}")


def pocket_walls(
    block: np.ndarray, half: np.ndarray, start: np.ndarray, depth: float
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The two pocket walls as ``(center (3,), half-sizes (3,))`` boxes (m): ``depth`` m long
    along y, out of the block's face on ``start``'s side, just outside its two ends in x.

    Args:
        block: block center (3,) m; half: its half-sizes (3,) m.
        start: a point on the side the pocket opens to, e.g. the puck's start (>= 2,) m.
        depth: wall length (m).
    """
    toward = 1.0 if start[1] > block[1] else -1.0
    y = block[1] + toward * (half[1] + depth / 2)
    wall = np.array([POCKET_WALL_HALF, depth / 2, half[2]])
    return [
        (np.array([block[0] + end * (half[0] + POCKET_WALL_HALF), y, block[2]]), wall.copy())
        for end in (-1.0, 1.0)
    ]


@register(TASK_NAME, config=PushConfig)
class PushEnv(Arm7GoalEnv):
    """arm7 pushing a puck around a block to a goal on the table (joint-position targets)."""

    task_name = TASK_NAME
    config_class = PushConfig
    observation_fields = OBSERVATION_FIELDS
    goal_field = GOAL_FIELD
    achieved_field = OBJECT_POS
    cost_kinds = COST_KINDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._block_center = np.zeros(3)  # (3,) m, set at every reset
        self._block_half = np.zeros(3)  # (3,) m
        self.mode = MODE_NEAR
        self._pending: tuple[Any, ...] | None = None  # paired_modes: the layout to replay next
        super().__init__(*args, **kwargs)

    def _make_physics(self) -> PushPhysics:
        return PushPhysics(3 if self.config.pocket_depth > 0 else 1)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode: joints at HOME + noise, puck on one side, goal on the other,
        the block between them, and a fresh ``mode``.

        ``options`` may fix ``"joint_pos"`` (7,) rad, ``"object_pos"`` (3,) m, ``"goal"``
        (3,) m and ``"mode"`` (0 or 1); the block stays between the puck and the goal.
        """
        super().reset(seed=seed)
        options = dict(options or {})
        cfg, rng = self.config, self.np_random
        q0 = np.asarray(c.HOME) + rng.uniform(-cfg.init_noise, cfg.init_noise, c.N_JOINTS)
        q0 = np.clip(q0, self.physics.pos_min, self.physics.pos_max)
        side = rng.choice([-1.0, 1.0])
        start = np.array([rng.uniform(*cfg.lane_x), side * rng.uniform(*cfg.side_y), c.OBJECT_HALF_HEIGHT])
        goal = np.array([rng.uniform(*cfg.lane_x), -side * rng.uniform(*cfg.side_y), c.OBJECT_HALF_HEIGHT])
        yaw = rng.uniform(-np.pi, np.pi)
        jitter = rng.uniform(-cfg.block_jitter, cfg.block_jitter, 2)
        half = np.array(
            [rng.uniform(*cfg.block_half_x), rng.uniform(*cfg.block_half_y), cfg.block_height / 2]
        )
        mode = int(rng.integers(2))
        if cfg.paired_modes:
            if seed is None and self._pending is not None:  # the same layout, the other way
                q0, start, goal, yaw, jitter, half, mode = self._pending
                mode, self._pending = 1 - mode, None
            else:
                self._pending = (q0, start, goal, yaw, jitter, half, mode)
        q0 = np.asarray(options.pop("joint_pos", q0), dtype=np.float64).reshape(c.N_JOINTS)
        start = np.asarray(options.pop(OBJECT_POS.name, start), dtype=np.float64).reshape(3)
        goal = np.asarray(options.pop(GOAL_FIELD.name, goal), dtype=np.float64).reshape(3)
        self.mode = int(options.pop("mode", mode))
        self._reject_options(options)
        if self.mode not in (MODE_NEAR, MODE_FAR):
            raise ValueError(f"{TASK_NAME} reset: mode must be 0 or 1, got {self.mode}")
        self._start(q0, goal)
        self._block_center = np.array([*((start[:2] + goal[:2]) / 2 + jitter), half[2]])
        self._block_half = half
        boxes = [(self._block_center, half)]
        if cfg.pocket_depth > 0:
            boxes += pocket_walls(self._block_center, half, start, cfg.pocket_depth)
        centers, halves = zip(*boxes, strict=True)
        self.physics.set_obstacles(np.array(centers), np.array(halves))
        self.physics.set_object_pose(start, yaw)
        self.physics.set_goal_marker(goal)
        return self._observe(), self._info()

    def state(self) -> dict[str, np.ndarray]:
        """Named raw state (float64): joint_pos (7,) rad, joint_vel (7,) rad/s, ee_pos (3,)
        m, object_pos (3,) m, object_quat (4,), obstacle_center (3,) m, obstacle_half_size
        (3,) m, goal (3,) m."""
        physics = self.physics
        return {
            JOINT_POS.name: physics.joint_pos(),
            JOINT_VEL.name: physics.joint_vel(),
            EE_POS.name: physics.ee_pos(),
            OBJECT_POS.name: physics.object_pos(),
            OBJECT_QUAT.name: physics.object_quat(),
            OBSTACLE_CENTER.name: self._block_center.copy(),
            OBSTACLE_HALF_SIZE.name: self._block_half.copy(),
            GOAL_FIELD.name: self._goal.copy(),
        }

    def _achieved(self) -> np.ndarray:
        return self.physics.object_pos()

    def _info(self) -> dict[str, Any]:
        """Reach's costs and diagnostics (arm-puck contacts left out of ``collision``), plus
        ``mode``, ``object_contacts`` (arm-puck) and ``object_block_contacts`` (puck-block)."""
        info = super()._info()
        info["mode"] = self.mode
        info["object_contacts"] = self.physics.arm_object_contacts()
        info["object_block_contacts"] = self.physics.object_obstacle_contacts()
        return info
