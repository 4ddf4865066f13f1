"""arm7 physics: MjModel + MjData with state read and written by name (dm_control style)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import mujoco
import numpy as np

from sim.robots.arm7 import constants as c
from sim.robots.servo_arm import ServoArmPhysics


class Contacts(NamedTuple):
    """Active contacts that involve the arm, counted by kind."""

    arm_table: int  # an arm geom against the table (or anything else in the scene)
    arm_self: int  # two arm geoms of non-adjacent links (adjacent pairs never collide)

    @property
    def total(self) -> int:
        return self.arm_table + self.arm_self


class Arm7Physics(ServoArmPhysics):
    """The arm7 model and its simulation state (7 joints; see ``ServoArmPhysics``), plus its
    contacts and the end effector's orientation."""

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
        super().__init__(model if model is not None else mujoco.MjModel.from_xml_path(str(xml_path)), c)
        m = self.model
        arm_bodies = [m.body(name).id for name in c.ARM_BODY_NAMES]
        self._geom_is_arm = np.isin(m.geom_bodyid, arm_bodies)
        ignored = [m.body(name).id for name in ignore_contact_bodies]
        self._geom_is_ignored = np.isin(m.geom_bodyid, ignored)
        self._jacr = np.zeros((3, m.nv))
        self.reset()

    def ee_rotation(self) -> np.ndarray:
        """Orientation of the end-effector site (the hand frame) ``(3, 3)``, world frame;
        column 2 is the approach axis (pointing down at HOME)."""
        return self.data.site_xmat[self._ee_site].reshape(3, 3).copy()

    def ee_rot_jacobian(self) -> np.ndarray:
        """Rotational Jacobian of the end-effector site ``(3, 7)`` (rad/rad), joint order."""
        mujoco.mj_jacSite(self.model, self.data, None, self._jacr, self._ee_site)
        return self._jacr[:, self._dof_adr].copy()

    def contacts(self) -> Contacts:
        """Count the arm's active contacts with the scene and with itself, leaving out
        contacts with the ``ignore_contact_bodies`` given at construction."""
        geoms = self.data.contact.geom[: self.data.ncon]
        geoms = geoms[~self._geom_is_ignored[geoms].any(axis=1)]
        arm = self._geom_is_arm[geoms]
        n_arm = arm.sum(axis=1)
        return Contacts(arm_table=int(np.sum(n_arm == 1)), arm_self=int(np.sum(n_arm == 2)))
