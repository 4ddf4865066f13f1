"""Scripted reach-over-obstacles expert: up and over the boxes, then straight down.

The via point is above the goal at a safe height (the tallest box plus a clearance); the
hand is held pointing down, so the arm's lowest part is the fingertips. Stateless: the
phase is read from the end-effector position, so one expert serves any number of episodes.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from sim.registry import register_expert
from sim.robots.arm7.ik import DEFAULT_GAINS, IkGains, hand_down, pose_ik_step
from sim.tasks.reach import EE_POS, GOAL_FIELD
from sim.tasks.reach_obstacles import OBSTACLE_CENTERS, OBSTACLE_HALF_SIZES, TASK_NAME, ReachObstaclesEnv


@register_expert(TASK_NAME)
class ReachObstaclesExpert:
    """Moves the end effector to ``(goal x, goal y, safe height)``, then down to the goal.

    Uses the env's physics for the Jacobians, so ``act`` expects the state of the env's
    current physics (``env.state()``).
    """

    def __init__(
        self,
        env: ReachObstaclesEnv,
        clearance: float = 0.1,
        descend_radius: float = 0.03,
        gains: IkGains = DEFAULT_GAINS,
    ) -> None:
        """
        Args:
            env: the env whose physics and config the expert reads.
            clearance: height of the via point over the tallest box top (m).
            descend_radius: go down once the end effector is this close to the via point
                horizontally (m).
            gains: IK step bounds and regularizers.
        """
        self._physics = env.unwrapped.physics
        self._max_delta = env.unwrapped.config.max_delta
        self.clearance = clearance
        self.descend_radius = descend_radius
        self.gains = gains
        self._rot = hand_down(0.0)

    def via_point(self, state: Mapping[str, np.ndarray]) -> np.ndarray:
        """The current Cartesian target ``(3,)`` (m): the via point or the goal."""
        goal = np.asarray(state[GOAL_FIELD.name], dtype=np.float64)
        ee = np.asarray(state[EE_POS.name], dtype=np.float64)
        centers = np.asarray(state[OBSTACLE_CENTERS.name]).reshape(-1, 3)
        halves = np.asarray(state[OBSTACLE_HALF_SIZES.name]).reshape(-1, 3)
        tops = centers[:, 2] + halves[:, 2]
        safe_z = max(float(tops.max()) + self.clearance, goal[2])
        off = np.linalg.norm(ee[:2] - goal[:2])
        below = ee[2] < safe_z - self.descend_radius  # on the way down (hysteresis)
        if off <= self.descend_radius or (below and off <= 3 * self.descend_radius):
            return goal
        if ee[2] < safe_z - self.clearance:  # well below the safe height: straight up first
            return np.array([ee[0], ee[1], safe_z])
        return np.array([goal[0], goal[1], safe_z])

    def act(self, state: Mapping[str, np.ndarray]) -> np.ndarray:
        """Absolute joint-position targets ``(7,)`` (rad) from named raw state."""
        target = self.via_point(state)
        return pose_ik_step(self._physics, target, self._rot, self._max_delta, self.gains)
