"""arm7 scenes built on ``arm7.xml`` with MjSpec: box obstacles and a pushable object.

Obstacles are boxes on mocap bodies (``sim/robots/obstacles.py``, as on any configured arm);
tasks move and resize them per episode with ``ObstaclePhysics.set_obstacles`` (no
recompilation). ``PushPhysics`` adds a free cylinder whose contacts with the arm are not
counted as collisions: touching it is the task.
"""

from __future__ import annotations

import mujoco
import numpy as np

from sim.robots.arm7 import constants as c
from sim.robots.arm7.physics import Arm7Physics
from sim.robots.obstacles import ObstacleBoxes, add_obstacle_boxes

OBJECT_RGBA = (0.2, 0.45, 0.85, 1.0)


def build_model(n_obstacles: int, with_object: bool = False) -> mujoco.MjModel:
    """arm7 on its table plus ``n_obstacles`` box geoms (parked) and optionally the object.

    Args:
        n_obstacles: number of obstacle box slots, ``0..c.MAX_OBSTACLES``.
        with_object: add the free cylinder ``c.OBJECT_BODY``.
    """
    if not 0 <= n_obstacles <= c.MAX_OBSTACLES:
        raise ValueError(f"n_obstacles must be in [0, {c.MAX_OBSTACLES}], got {n_obstacles}")
    spec = mujoco.MjSpec.from_file(str(c.XML_PATH))
    slots = range(n_obstacles)
    add_obstacle_boxes(spec, [c.obstacle_body(i) for i in slots], [c.obstacle_geom(i) for i in slots])
    if with_object:
        body = spec.worldbody.add_body(name=c.OBJECT_BODY, pos=[0.4, 0.0, c.OBJECT_HALF_HEIGHT])
        body.add_freejoint(name=c.OBJECT_JOINT)
        body.add_geom(
            name=c.OBJECT_GEOM,
            type=mujoco.mjtGeom.mjGEOM_CYLINDER,
            size=[c.OBJECT_RADIUS, c.OBJECT_HALF_HEIGHT, 0.0],
            mass=c.OBJECT_MASS,
            friction=list(c.OBJECT_FRICTION),
            priority=1,  # its friction, not the table's or the fingers', sets the contact's
            rgba=list(OBJECT_RGBA),
        )
    return spec.compile()


class ObstaclePhysics(Arm7Physics):
    """arm7 with ``n_obstacles`` movable box obstacles (their contacts with the arm count)."""

    def __init__(
        self, n_obstacles: int, with_object: bool = False, ignore_contact_bodies: tuple[str, ...] = ()
    ) -> None:
        model = build_model(n_obstacles, with_object)
        super().__init__(model=model, ignore_contact_bodies=ignore_contact_bodies)
        slots = range(n_obstacles)
        self._obstacles = ObstacleBoxes(
            self.model, [c.obstacle_body(i) for i in slots], [c.obstacle_geom(i) for i in slots]
        )
        self._obstacle_geoms = self._obstacles.geom_ids

    @property
    def n_obstacles(self) -> int:
        return len(self._obstacles)

    def set_obstacles(self, centers: np.ndarray, half_sizes: np.ndarray) -> None:
        """Place axis-aligned boxes: ``centers`` and ``half_sizes`` ``(n_obstacles, 3)`` (m).

        A row of zero half-sizes parks that slot under the floor (no obstacle).
        """
        self._obstacles.place(self.data, centers, half_sizes)
        mujoco.mj_forward(self.model, self.data)


class PushPhysics(ObstaclePhysics):
    """arm7, ``n_obstacles`` box slots and a free cylinder (arm-object contacts are not
    collisions)."""

    def __init__(self, n_obstacles: int = 1) -> None:
        super().__init__(n_obstacles, with_object=True, ignore_contact_bodies=(c.OBJECT_BODY,))
        m = self.model
        joint = m.joint(c.OBJECT_JOINT)
        self._obj_qpos = int(joint.qposadr[0])
        self._obj_dof = int(joint.dofadr[0])
        self._obj_geom = m.geom(c.OBJECT_GEOM).id

    def object_pos(self) -> np.ndarray:
        """Object center ``(3,)``, world frame (m)."""
        return self.data.qpos[self._obj_qpos : self._obj_qpos + 3].copy()

    def object_quat(self) -> np.ndarray:
        """Object orientation ``(4,)`` as a unit quaternion (w, x, y, z), world frame."""
        return self.data.qpos[self._obj_qpos + 3 : self._obj_qpos + 7].copy()

    def object_vel(self) -> np.ndarray:
        """Object linear velocity ``(3,)``, world frame (m/s)."""
        return self.data.qvel[self._obj_dof : self._obj_dof + 3].copy()

    def arm_object_contacts(self) -> int:
        """Active contacts between the arm and the object."""
        geoms = self.data.contact.geom[: self.data.ncon]
        touches = (geoms == self._obj_geom).any(axis=1)
        return int(np.sum(touches & self._geom_is_arm[geoms].any(axis=1)))

    def object_obstacle_contacts(self) -> int:
        """Active contacts between the object and the obstacle boxes."""
        geoms = self.data.contact.geom[: self.data.ncon]
        touches = (geoms == self._obj_geom).any(axis=1)
        return int(np.sum(touches & np.isin(geoms, self._obstacle_geoms).any(axis=1)))

    def set_object_pose(self, pos: np.ndarray, yaw: float = 0.0) -> None:
        """Put the object at rest at ``pos`` (3,) m, turned ``yaw`` (rad) about world z."""
        q = self.data.qpos
        q[self._obj_qpos : self._obj_qpos + 3] = pos
        q[self._obj_qpos + 3 : self._obj_qpos + 7] = [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
        self.data.qvel[self._obj_dof : self._obj_dof + 6] = 0.0
        mujoco.mj_forward(self.model, self.data)
