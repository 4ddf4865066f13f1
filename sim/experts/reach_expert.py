"""Scripted reach expert: damped least-squares IK with a null-space pull toward HOME.

Any arm task with the reach state fields (``joint_pos``, ``ee_pos``, ``goal``), a physics with
``ee_jacobian()``/``pos_min``/``pos_max`` and a ``config.max_delta`` can use it; its HOME is the
env's robot's (``env.unwrapped.robot.HOME``: arm7 or the WidowX).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from sim.registry import register_expert
from sim.tasks.reach import EE_POS, GOAL_FIELD, JOINT_POS, ReachEnv


@register_expert("reach")
class ReachExpert:
    """Moves the end effector straight at the goal, at most ``max_step`` m per control step.

    Uses the env's physics for the end-effector Jacobian, so ``act`` expects the state of
    the env's current physics (``env.state()``).
    """

    def __init__(
        self,
        env: ReachEnv,
        max_step: float = 0.035,
        damping: float = 0.05,
        null_gain: float = 0.3,
        limit_margin: float = 0.1,
    ) -> None:
        """
        Args:
            env: the reach env whose physics and config the expert reads.
            max_step: largest commanded end-effector displacement per control step (m).
            damping: damped least-squares regularizer (m).
            null_gain: fraction of the distance to HOME pulled back per step in the
                null space of the position task.
            limit_margin: targets stay this far inside the joint limits (rad).
        """
        self.env = env
        self.max_step = max_step
        self.damping = damping
        self.null_gain = null_gain
        physics = env.unwrapped.physics
        self._physics = physics
        self._max_delta = env.unwrapped.config.max_delta
        self._home = np.asarray(env.unwrapped.robot.HOME, dtype=np.float64)
        self._low = physics.pos_min + limit_margin
        self._high = physics.pos_max - limit_margin

    def act(self, state: Mapping[str, np.ndarray]) -> np.ndarray:
        """Absolute joint-position targets ``(n_joints,)`` (rad) from named raw state."""
        q = np.asarray(state[JOINT_POS.name], dtype=np.float64)
        goal = np.asarray(state[GOAL_FIELD.name], dtype=np.float64)
        err = goal - np.asarray(state[EE_POS.name], dtype=np.float64)
        dist = np.linalg.norm(err)
        if dist > self.max_step:
            err *= self.max_step / dist
        jac = self._physics.ee_jacobian()
        # J^+ = J^T (J J^T + lambda^2 I)^-1, damped near singularities.
        jjt = jac @ jac.T + self.damping**2 * np.eye(3)
        jac_pinv = jac.T @ np.linalg.inv(jjt)
        null = np.eye(q.size) - jac_pinv @ jac
        dq = jac_pinv @ err + null @ (self.null_gain * (self._home - q))
        dq = np.clip(dq, -self._max_delta, self._max_delta)
        return np.clip(q + dq, self._low, self._high)
