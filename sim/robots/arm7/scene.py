"""arm7 scenes built on ``arm7.xml`` with MjSpec: box obstacles and a pushable object.

Obstacles are boxes on mocap bodies; tasks move and resize them per episode with
``ObstaclePhysics.set_obstacles`` (no recompilation). ``PushPhysics`` adds a free cylinder
whose contacts with the arm are not counted as collisions: touching it is the task.
"""

from __future__ import annotations

import mujoco
import numpy as np

from sim.robots.arm7 import constants as c
from sim.robots.arm7.physics import Arm7Physics

OBSTACLE_RGBA = (0.75, 0.25, 0.2, 1.0)
OBJECT_RGBA = (0.2, 0.45, 0.85, 1.0)
PARK_Z = -2.0  # an absent obstacle sits here, under the floor, out of reach (m)
_PARK_HALF = 0.01  # half-size of a parked obstacle box (m)


def build_model(n_obstacles: int, with_object: bool = False) -> mujoco.MjModel:
    """arm7 on its table plus ``n_obstacles`` box geoms (parked) and optionally the object.

    Args:
        n_obstacles: number of obstacle box slots, ``0..c.MAX_OBSTACLES``.
        with_object: add the free cylinder ``c.OBJECT_BODY``.
    """
    if not 0 <= n_obstacles <= c.MAX_OBSTACLES:
        raise ValueError(f"n_obstacles must be in [0, {c.MAX_OBSTACLES}], got {n_obstacles}")
    spec = mujoco.MjSpec.from_file(str(c.XML_PATH))
    world = spec.worldbody
    for i in range(n_obstacles):  # one mocap body per box: moved by mocap_pos, own bounds
        body = world.add_body(name=c.obstacle_body(i), mocap=True, pos=[0.0, 0.0, PARK_Z])
        body.add_geom(
            name=c.obstacle_geom(i),
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[_PARK_HALF] * 3,
            rgba=list(OBSTACLE_RGBA),
        )
    if with_object:
        body = world.add_body(name=c.OBJECT_BODY, pos=[0.4, 0.0, c.OBJECT_HALF_HEIGHT])
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
        m = self.model
        self._obstacle_geoms = [m.geom(c.obstacle_geom(i)).id for i in range(n_obstacles)]
        bodies = [m.body(c.obstacle_body(i)) for i in range(n_obstacles)]
        self._obstacle_mocap = [int(b.mocapid[0]) for b in bodies]
        self._obstacle_bvh = [int(m.body_bvhadr[b.id]) for b in bodies]

    @property
    def n_obstacles(self) -> int:
        return len(self._obstacle_geoms)

    def set_obstacles(self, centers: np.ndarray, half_sizes: np.ndarray) -> None:
        """Place axis-aligned boxes: ``centers`` and ``half_sizes`` ``(n_obstacles, 3)`` (m).

        A row of zero half-sizes parks that slot under the floor (no obstacle).
        """
        centers = np.asarray(centers, dtype=np.float64).reshape(self.n_obstacles, 3)
        half_sizes = np.asarray(half_sizes, dtype=np.float64).reshape(self.n_obstacles, 3)
        m = self.model
        for i, (center, half) in enumerate(zip(centers, half_sizes, strict=True)):
            if np.all(half <= 0):
                center, half = np.array([0.0, 0.0, PARK_Z]), np.full(3, _PARK_HALF)
            gid = self._obstacle_geoms[i]
            self.data.mocap_pos[self._obstacle_mocap[i]] = center
            m.geom_size[gid] = half
            # The collision bounds are compiled once; resizing a box must update all three.
            m.geom_rbound[gid] = np.linalg.norm(half)
            m.geom_aabb[gid, 3:] = half
            m.bvh_aabb[self._obstacle_bvh[i], 3:] = half
        mujoco.mj_forward(m, self.data)


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
