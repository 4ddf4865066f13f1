"""A position-servoed arm in MuJoCo: MjModel + MjData with state read and written by name
(dm_control style). The arms (arm7, the WidowX 200) subclass it with their constants."""

from __future__ import annotations

from types import ModuleType

import mujoco
import numpy as np


class ServoArmPhysics:
    """An arm's model and simulation state; every index is resolved from names once.

    ``constants`` is the robot's constants module: ``JOINT_NAMES``, ``ACTUATOR_NAMES`` (one
    position servo per joint, same order), ``EE_SITE``, ``GOAL_MOCAP_BODY``, ``HOME``. After
    ``set_joint_state`` and ``step`` derived quantities (site positions, Jacobians) are
    consistent with the joint state. ``model`` is public: domain randomization and system
    identification write its gains, damping and friction. Arrays are ``(n,)`` in joint order.
    """

    def __init__(self, model: mujoco.MjModel, constants: ModuleType) -> None:
        self.model = model
        self.data = mujoco.MjData(model)
        m, c = model, constants
        joints = [m.joint(name) for name in c.JOINT_NAMES]
        self._home = np.asarray(c.HOME, dtype=np.float64)
        self._qpos_adr = np.array([j.qposadr[0] for j in joints])
        self._dof_adr = np.array([j.dofadr[0] for j in joints])
        self._act_id = np.array([m.actuator(name).id for name in c.ACTUATOR_NAMES])
        self._ee_site = m.site(c.EE_SITE).id
        self._goal_mocap = m.body(c.GOAL_MOCAP_BODY).mocapid[0]
        self.pos_min = np.array([j.range[0] for j in joints])
        self.pos_max = np.array([j.range[1] for j in joints])
        self.ctrl_min = m.actuator_ctrlrange[self._act_id, 0].copy()
        self.ctrl_max = m.actuator_ctrlrange[self._act_id, 1].copy()
        self._jacp = np.zeros((3, m.nv))

    @property
    def timestep(self) -> float:
        """Physics step (s)."""
        return float(self.model.opt.timestep)

    def reset(self) -> None:
        """Back to the model's defaults: joints at HOME, at rest, targets at HOME."""
        mujoco.mj_resetData(self.model, self.data)
        self.set_joint_state(self._home, np.zeros(self._home.size))
        self.set_targets(self._home)

    # --- state -------------------------------------------------------------------------
    def joint_pos(self) -> np.ndarray:
        """Joint positions ``(n,)`` (rad), in ``JOINT_NAMES`` order."""
        return self.data.qpos[self._qpos_adr].copy()

    def joint_vel(self) -> np.ndarray:
        """Joint velocities ``(n,)`` (rad/s)."""
        return self.data.qvel[self._dof_adr].copy()

    def ee_pos(self) -> np.ndarray:
        """End-effector site position ``(3,)`` in the world frame (m)."""
        return self.data.site_xpos[self._ee_site].copy()

    def ee_jacobian(self) -> np.ndarray:
        """Positional Jacobian of the end-effector site ``(3, n)`` (m/rad), joint order."""
        mujoco.mj_jacSite(self.model, self.data, self._jacp, None, self._ee_site)
        return self._jacp[:, self._dof_adr].copy()

    def ee_vel(self) -> np.ndarray:
        """Linear end-effector velocity ``(3,)`` in the world frame (m/s)."""
        return self.ee_jacobian() @ self.joint_vel()

    def targets(self) -> np.ndarray:
        """Current servo position targets ``(n,)`` (rad)."""
        return self.data.ctrl[self._act_id].copy()

    def joint_limit_margin(self) -> np.ndarray:
        """Distance of each joint to its nearest position limit ``(n,)`` (rad); < 0 beyond it."""
        q = self.joint_pos()
        return np.minimum(q - self.pos_min, self.pos_max - q)

    # --- writes ------------------------------------------------------------------------
    def set_joint_state(self, q: np.ndarray, qd: np.ndarray) -> None:
        """Teleport the joints to ``q`` (n,) rad with velocities ``qd`` (n,) rad/s."""
        self.data.qpos[self._qpos_adr] = q
        self.data.qvel[self._dof_adr] = qd
        mujoco.mj_forward(self.model, self.data)

    def set_targets(self, q_target: np.ndarray) -> np.ndarray:
        """Set servo targets ``(n,)`` (rad), clipped to the servo ranges; returns them."""
        target = np.clip(q_target, self.ctrl_min, self.ctrl_max)
        self.data.ctrl[self._act_id] = target
        return target

    def set_goal_marker(self, pos: np.ndarray) -> None:
        """Move the visual-only goal marker to ``pos`` (3,) in the world frame (m)."""
        self.data.mocap_pos[self._goal_mocap] = pos

    def step(self, n: int = 1) -> None:
        """Advance ``n`` physics steps, then refresh derived quantities for the new state."""
        mujoco.mj_step(self.model, self.data, nstep=n)
        mujoco.mj_forward(self.model, self.data)
