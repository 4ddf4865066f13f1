"""arm7 physics: MjModel + MjData with state read and written by name (dm_control style)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import mujoco
import numpy as np

from sim.robots.arm7 import constants as c


class Contacts(NamedTuple):
    """Active contacts that involve the arm, counted by kind."""

    arm_table: int  # an arm geom against the table (or anything else in the scene)
    arm_self: int  # two arm geoms of non-adjacent links (adjacent pairs never collide)

    @property
    def total(self) -> int:
        return self.arm_table + self.arm_self


class Arm7Physics:
    """The arm7 model and its simulation state; every index is resolved from names once.

    After ``set_joint_state`` and ``step`` all derived quantities (site positions, contacts,
    Jacobians) are consistent with the current joint state.
    """

    def __init__(
        self,
        xml_path: Path = c.XML_PATH,
        model: mujoco.MjModel | None = None,
        ignore_contact_bodies: tuple[str, ...] = (),
    ) -> None:
        """
        Args:
            xml_path: MJCF to load when ``model`` is not given.
            model: an already compiled model that contains arm7 (e.g. a scene built by
                ``sim.robots.arm7.scene``); takes precedence over ``xml_path``.
            ignore_contact_bodies: bodies whose contacts with the arm ``contacts`` leaves
                out, e.g. an object the arm is meant to touch.
        """
        self.model = model if model is not None else mujoco.MjModel.from_xml_path(str(xml_path))
        self.data = mujoco.MjData(self.model)
        m = self.model
        joints = [m.joint(name) for name in c.JOINT_NAMES]
        self._qpos_adr = np.array([j.qposadr[0] for j in joints])
        self._dof_adr = np.array([j.dofadr[0] for j in joints])
        self._act_id = np.array([m.actuator(name).id for name in c.ACTUATOR_NAMES])
        self._ee_site = m.site(c.EE_SITE).id
        self._goal_mocap = m.body(c.GOAL_MOCAP_BODY).mocapid[0]
        arm_bodies = [m.body(name).id for name in c.ARM_BODY_NAMES]
        self._geom_is_arm = np.isin(m.geom_bodyid, arm_bodies)
        ignored = [m.body(name).id for name in ignore_contact_bodies]
        self._geom_is_ignored = np.isin(m.geom_bodyid, ignored)
        self.pos_min = np.array([j.range[0] for j in joints])
        self.pos_max = np.array([j.range[1] for j in joints])
        self.ctrl_min = m.actuator_ctrlrange[self._act_id, 0].copy()
        self.ctrl_max = m.actuator_ctrlrange[self._act_id, 1].copy()
        self._jacp = np.zeros((3, m.nv))
        self._jacr = np.zeros((3, m.nv))
        self.reset()

    @property
    def timestep(self) -> float:
        """Physics step (s)."""
        return float(self.model.opt.timestep)

    def reset(self) -> None:
        """Back to the model's defaults: joints at HOME, at rest, targets at HOME."""
        mujoco.mj_resetData(self.model, self.data)
        self.set_joint_state(np.asarray(c.HOME), np.zeros(c.N_JOINTS))
        self.set_targets(np.asarray(c.HOME))

    # --- state -------------------------------------------------------------------------
    def joint_pos(self) -> np.ndarray:
        """Joint positions ``(7,)`` (rad), in ``JOINT_NAMES`` order."""
        return self.data.qpos[self._qpos_adr].copy()

    def joint_vel(self) -> np.ndarray:
        """Joint velocities ``(7,)`` (rad/s)."""
        return self.data.qvel[self._dof_adr].copy()

    def ee_pos(self) -> np.ndarray:
        """End-effector site position ``(3,)`` in the world frame (m)."""
        return self.data.site_xpos[self._ee_site].copy()

    def ee_jacobian(self) -> np.ndarray:
        """Positional Jacobian of the end-effector site ``(3, 7)`` (m/rad), joint order."""
        mujoco.mj_jacSite(self.model, self.data, self._jacp, None, self._ee_site)
        return self._jacp[:, self._dof_adr].copy()

    def ee_rotation(self) -> np.ndarray:
        """Orientation of the end-effector site (the hand frame) ``(3, 3)``, world frame;
        column 2 is the approach axis (pointing down at HOME)."""
        return self.data.site_xmat[self._ee_site].reshape(3, 3).copy()

    def ee_rot_jacobian(self) -> np.ndarray:
        """Rotational Jacobian of the end-effector site ``(3, 7)`` (rad/rad), joint order."""
        mujoco.mj_jacSite(self.model, self.data, None, self._jacr, self._ee_site)
        return self._jacr[:, self._dof_adr].copy()

    def ee_vel(self) -> np.ndarray:
        """Linear end-effector velocity ``(3,)`` in the world frame (m/s)."""
        return self.ee_jacobian() @ self.joint_vel()

    def targets(self) -> np.ndarray:
        """Current actuator position targets ``(7,)`` (rad)."""
        return self.data.ctrl[self._act_id].copy()

    def joint_limit_margin(self) -> np.ndarray:
        """Distance of each joint to its nearest position limit ``(7,)`` (rad); < 0 beyond it."""
        q = self.joint_pos()
        return np.minimum(q - self.pos_min, self.pos_max - q)

    def contacts(self) -> Contacts:
        """Count the arm's active contacts with the scene and with itself, leaving out
        contacts with the ``ignore_contact_bodies`` given at construction."""
        geoms = self.data.contact.geom[: self.data.ncon]
        geoms = geoms[~self._geom_is_ignored[geoms].any(axis=1)]
        arm = self._geom_is_arm[geoms]
        n_arm = arm.sum(axis=1)
        return Contacts(arm_table=int(np.sum(n_arm == 1)), arm_self=int(np.sum(n_arm == 2)))

    # --- writes ------------------------------------------------------------------------
    def set_joint_state(self, q: np.ndarray, qd: np.ndarray) -> None:
        """Teleport the joints to ``q`` (7,) rad with velocities ``qd`` (7,) rad/s."""
        self.data.qpos[self._qpos_adr] = q
        self.data.qvel[self._dof_adr] = qd
        mujoco.mj_forward(self.model, self.data)

    def set_targets(self, q_target: np.ndarray) -> np.ndarray:
        """Set position targets ``(7,)`` (rad), clipped to the actuator ranges; returns them."""
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
