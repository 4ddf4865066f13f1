"""One step of damped least-squares IK on arm7's end-effector position and orientation.

Scripted experts call ``pose_ik_step`` once per control step with a Cartesian target; the
step is bounded (``max_step`` m, ``max_rot`` rad, ``max_delta`` rad per joint) so a far
target is approached along a straight line at a steady speed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.robots.arm7 import constants as c
from sim.robots.arm7.physics import Arm7Physics

# Hand frame at HOME: approach axis (column 2) straight down, fingers spread along -y.
HAND_DOWN = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])


def hand_down(yaw: float) -> np.ndarray:
    """Hand orientation ``(3, 3)`` pointing straight down, turned ``yaw`` (rad) about world z
    from HOME's (yaw 0: the finger/palm line runs along world y)."""
    cy, sy = np.cos(yaw), np.sin(yaw)
    rz = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    return rz @ HAND_DOWN


def rotation_error(current: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Small-angle rotation ``(3,)`` (rad, world frame) taking ``current`` toward ``target``
    (both ``(3, 3)``); exact in direction, ~sin of the angle in size."""
    return 0.5 * sum(np.cross(current[:, i], target[:, i]) for i in range(3))


@dataclass(frozen=True)
class IkGains:
    """Step bounds and regularizers of ``pose_ik_step``."""

    max_step: float = 0.035
    """Largest end-effector displacement commanded per step (m)."""
    max_rot: float = 0.15
    """Largest end-effector rotation commanded per step (rad)."""
    rot_weight: float = 0.3
    """Weight of the orientation error against the position error (m/rad)."""
    damping: float = 0.05
    """Damped least-squares regularizer."""
    null_gain: float = 0.2
    """Fraction of the distance to HOME pulled back per step in the task null space."""
    limit_margin: float = 0.1
    """Targets stay this far inside the joint limits (rad)."""


DEFAULT_GAINS = IkGains()


def pose_ik_step(
    physics: Arm7Physics,
    target_pos: np.ndarray,
    target_rot: np.ndarray | None,
    max_delta: float,
    gains: IkGains = DEFAULT_GAINS,
) -> np.ndarray:
    """Joint targets ``(7,)`` (rad) one bounded step from the current state toward the pose.

    Args:
        physics: the arm's physics at its current state (read, not modified).
        target_pos: end-effector position ``(3,)``, world frame (m).
        target_rot: hand orientation ``(3, 3)`` or None for position only.
        max_delta: largest change per joint from the measured position (rad).
        gains: step bounds and regularizers.
    """
    q = physics.joint_pos()
    err = np.asarray(target_pos, dtype=np.float64) - physics.ee_pos()
    dist = np.linalg.norm(err)
    if dist > gains.max_step:
        err *= gains.max_step / dist
    jac = physics.ee_jacobian()
    if target_rot is not None:
        rot_err = rotation_error(physics.ee_rotation(), target_rot)
        angle = np.linalg.norm(rot_err)
        if angle > gains.max_rot:
            rot_err *= gains.max_rot / angle
        err = np.concatenate([err, gains.rot_weight * rot_err])
        jac = np.vstack([jac, gains.rot_weight * physics.ee_rot_jacobian()])
    # J^+ = J^T (J J^T + lambda^2 I)^-1, damped near singularities.
    jac_pinv = jac.T @ np.linalg.inv(jac @ jac.T + gains.damping**2 * np.eye(len(err)))
    null = np.eye(c.N_JOINTS) - jac_pinv @ jac
    dq = jac_pinv @ err + null @ (gains.null_gain * (np.asarray(c.HOME) - q))
    dq *= min(1.0, max_delta / max(float(np.abs(dq).max()), 1e-12))  # keeps the direction
    return np.clip(q + dq, physics.pos_min + gains.limit_margin, physics.pos_max - gains.limit_margin)
