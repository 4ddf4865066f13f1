"""Scripted reach-over-obstacles expert: up and over the boxes, then straight down.

The via point is above the goal at a safe height (the tallest box plus a clearance); the
hand keeps the start pose's orientation (pointing down), so the arm's lowest part is near the
end effector. Stateless: the phase is read from the end-effector position, so one expert
serves any number of episodes. On arm7 the IK is arm7's (``sim.robots.arm7.ik``). On a
configured arm it is task-priority IK (``sim.robots.priority_ik``: position first, then the
orientation as far as the arm's joints allow), and the hand climbs straight up to 3 cm over
the tallest box before it heads across, and goes down once within 1 cm of the goal's vertical
(its layout, derived to the centimetre, leaves no room for a diagonal).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from sim.registry import register_expert
from sim.robots.arm7.ik import DEFAULT_GAINS, IkGains, pose_ik_step
from sim.robots.priority_ik import PriorityIkGains, priority_ik_step
from sim.tasks.reach import EE_POS, GOAL_FIELD
from sim.tasks.reach_obstacles import OBSTACLE_CENTERS, OBSTACLE_HALF_SIZES, TASK_NAME, ReachObstaclesEnv
from sim.tasks.reach_obstacles_layout import VIA_CLEARANCE


@register_expert(TASK_NAME)
class ReachObstaclesExpert:
    """Moves the end effector to ``(goal x, goal y, safe height)``, then down to the goal.

    Uses the env's physics for the Jacobians, so ``act`` expects the state of the env's
    current physics (``env.state()``).
    """

    def __init__(
        self,
        env: ReachObstaclesEnv,
        clearance: float | None = None,
        descend_radius: float | None = None,
        gains: IkGains = DEFAULT_GAINS,
    ) -> None:
        """
        Args:
            env: the env whose physics and config the expert reads.
            clearance: height of the via point over the tallest box top (m); None: 0.1 on
                arm7, ``VIA_CLEARANCE`` (0.06) on a configured arm (its layout keeps a via point
                that high inside the workspace).
            descend_radius: go down once the end effector is this close to the via point
                horizontally (m); None: 0.03 on arm7, 0.01 on a configured arm (whose layout
                leaves the wall closer to the goal).
            gains: IK step bounds and regularizers (``max_step``, ``max_rot``, ``damping``,
                ``null_gain`` and ``limit_margin`` apply on every arm; ``rot_weight`` on arm7).
        """
        task = env.unwrapped
        self._physics = task.physics
        self._max_delta = task.config.max_delta
        self._configured = bool(task.config.robot)
        self._home = np.asarray(task.robot.HOME, dtype=np.float64)
        self.clearance = (VIA_CLEARANCE if self._configured else 0.1) if clearance is None else clearance
        self.descend_radius = (
            (0.01 if self._configured else 0.03) if descend_radius is None else descend_radius
        )
        self.gains = gains
        self._rot = np.asarray(task.hand_rotation)
        # how far under the safe height the hand may head across: arm7's layouts leave room
        # to head across from the tallest top; a configured arm's, derived to the centimetre,
        # leave 3 cm over it
        self._climb = self.clearance - 0.03 if self._configured else self.clearance

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
        if ee[2] < safe_z - self._climb:  # well below the safe height: straight up first
            return np.array([ee[0], ee[1], safe_z])
        return np.array([goal[0], goal[1], safe_z])

    def act(self, state: Mapping[str, np.ndarray]) -> np.ndarray:
        """Absolute joint-position targets ``(n_joints,)`` (rad) from named raw state."""
        target = self.via_point(state)
        if not self._configured:
            return pose_ik_step(self._physics, target, self._rot, self._max_delta, self.gains)
        g, physics = self.gains, self._physics
        dq = priority_ik_step(
            physics,
            target,
            self._rot,
            self._home,
            PriorityIkGains(g.max_step, g.max_rot, g.damping, g.null_gain),
        )
        dq *= min(1.0, self._max_delta / max(float(np.abs(dq).max()), 1e-12))  # keeps the direction
        q = physics.joint_pos()
        return np.clip(q + dq, physics.pos_min + g.limit_margin, physics.pos_max - g.limit_margin)
