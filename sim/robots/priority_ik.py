"""Task-priority IK for any position-servoed arm: end-effector position first, orientation in
what the position leaves free, a pull toward a rest pose in what is left.

Works on an arm with fewer joints than a full pose needs (a 4-joint arm keeps as much of the
orientation as its null space allows). The physics needs ``joint_pos``, ``ee_pos``,
``ee_rotation``, ``ee_jacobian``, ``ee_rot_jacobian``, ``set_joint_state`` and ``pos_min/max``
(``ConfiguredArmPhysics``, ``Arm7Physics``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class PriorityIkGains:
    """Step bounds and regularizers of ``priority_ik_step``."""

    max_step: float = 0.035
    """Largest end-effector displacement commanded per step (m)."""
    max_rot: float = 0.15
    """Largest end-effector rotation commanded per step (rad)."""
    damping: float = 0.05
    """Damped least-squares regularizer of both tasks."""
    null_gain: float = 0.2
    """Fraction of the distance to the rest pose pulled back per step, in the null space."""


def _dls(jac: np.ndarray, damping: float) -> np.ndarray:
    """Damped pseudo-inverse ``J^T (J J^T + lambda^2 I)^-1``."""
    return jac.T @ np.linalg.inv(jac @ jac.T + damping**2 * np.eye(jac.shape[0]))


def rotation_error(current: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Small-angle rotation ``(3,)`` (rad, world frame) taking ``current`` toward ``target``."""
    return 0.5 * np.cross(current.T, target.T).sum(axis=0)


def priority_ik_step(
    physics: Any,
    target_pos: np.ndarray,
    target_rot: np.ndarray | None,
    rest: np.ndarray,
    gains: PriorityIkGains = PriorityIkGains(),
) -> np.ndarray:
    """A joint step ``dq`` ``(n,)`` (rad) toward the end-effector pose from the physics' state.

    Args:
        physics: the arm at its current state (read only).
        target_pos: end-effector position ``(3,)``, world frame (m).
        target_rot: end-effector orientation ``(3, 3)``, or None: position only.
        rest: joint positions ``(n,)`` (rad) the redundancy is pulled toward.
        gains: step bounds and regularizers.
    """
    q = physics.joint_pos()
    err = np.asarray(target_pos, dtype=np.float64) - physics.ee_pos()
    err *= min(1.0, gains.max_step / max(float(np.linalg.norm(err)), 1e-12))
    jac = physics.ee_jacobian()
    dq = _dls(jac, gains.damping) @ err
    free = np.eye(q.size) - np.linalg.pinv(jac, rcond=1e-4) @ jac  # what the position leaves free
    if target_rot is not None:
        rot_err = rotation_error(physics.ee_rotation(), target_rot)
        rot_err *= min(1.0, gains.max_rot / max(float(np.linalg.norm(rot_err)), 1e-12))
        jac_rot = physics.ee_rot_jacobian() @ free
        pinv_rot = _dls(jac_rot, gains.damping)
        dq += pinv_rot @ (rot_err - physics.ee_rot_jacobian() @ dq)
        free = free - pinv_rot @ jac_rot
    return dq + free @ (gains.null_gain * (np.asarray(rest, dtype=np.float64) - q))


def solve_pose(
    physics: Any,
    target_pos: np.ndarray,
    target_rot: np.ndarray | None,
    rest: np.ndarray,
    iterations: int = 300,
) -> tuple[np.ndarray, float]:
    """Joint positions ``(n,)`` (rad) inside the limits that put the end effector at
    ``target_pos`` (orientation ``target_rot`` where the arm can), iterated from ``rest``; and
    the position error left (m). Moves the physics' joints (kinematics only): the caller
    resets them after."""
    q = np.asarray(rest, dtype=np.float64).copy()
    gains = PriorityIkGains(max_step=0.05, max_rot=0.3, damping=0.02, null_gain=0.05)
    for _ in range(iterations):
        physics.set_joint_state(q, np.zeros(q.size))
        pos_err = np.linalg.norm(np.asarray(target_pos) - physics.ee_pos())
        rot_err = (
            0.0 if target_rot is None else np.linalg.norm(rotation_error(physics.ee_rotation(), target_rot))
        )
        dq = priority_ik_step(physics, target_pos, target_rot, rest, gains)
        if (pos_err < 1e-4 and rot_err < 1e-3) or np.abs(dq).max() < 1e-6:  # there (or stuck)
            break
        q = np.clip(q + dq, physics.pos_min, physics.pos_max)
    physics.set_joint_state(q, np.zeros(q.size))
    return q, float(np.linalg.norm(np.asarray(target_pos) - physics.ee_pos()))
