"""Box obstacles in any arm's MuJoCo model: one mocap body with one box geom per slot.

``add_obstacle_boxes`` adds the slots to an ``MjSpec`` (parked under the floor);
``ObstacleBoxes`` moves and resizes them per episode without recompiling. Used by arm7's
scenes (``sim/robots/arm7/scene.py``) and by configured arms (``sim/robots/configured.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import mujoco
import numpy as np

OBSTACLE_RGBA = (0.75, 0.25, 0.2, 1.0)
PARK_Z = -2.0  # an absent obstacle sits here, under the floor, out of reach (m)
PARK_HALF = 0.01  # half-size of a parked obstacle box (m)


def add_obstacle_boxes(spec: mujoco.MjSpec, bodies: Sequence[str], geoms: Sequence[str]) -> None:
    """Add one parked mocap body ``bodies[i]`` holding the box geom ``geoms[i]`` per slot."""
    for body_name, geom_name in zip(bodies, geoms, strict=True):
        body = spec.worldbody.add_body(name=body_name, mocap=True, pos=[0.0, 0.0, PARK_Z])
        body.add_geom(
            name=geom_name,
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[PARK_HALF] * 3,
            rgba=list(OBSTACLE_RGBA),
        )


class ObstacleBoxes:
    """The obstacle slots of a compiled model, by the names given to ``add_obstacle_boxes``."""

    def __init__(self, model: mujoco.MjModel, bodies: Sequence[str], geoms: Sequence[str]) -> None:
        self.model = model
        self.geom_ids = [model.geom(name).id for name in geoms]
        found = [model.body(name) for name in bodies]
        self._mocap = [int(b.mocapid[0]) for b in found]
        self._bvh = [int(model.body_bvhadr[b.id]) for b in found]

    def __len__(self) -> int:
        return len(self.geom_ids)

    def place(self, data: mujoco.MjData, centers: np.ndarray, half_sizes: np.ndarray) -> None:
        """Place axis-aligned boxes: ``centers`` and ``half_sizes`` ``(len(self), 3)`` (m), world
        frame. A row of zero half-sizes parks that slot under the floor (no obstacle). Call
        ``mj_forward`` after (the caller's physics does)."""
        centers = np.asarray(centers, dtype=np.float64).reshape(len(self), 3)
        half_sizes = np.asarray(half_sizes, dtype=np.float64).reshape(len(self), 3)
        m = self.model
        for i, (center, half) in enumerate(zip(centers, half_sizes, strict=True)):
            if np.all(half <= 0):
                center, half = np.array([0.0, 0.0, PARK_Z]), np.full(3, PARK_HALF)
            gid = self.geom_ids[i]
            data.mocap_pos[self._mocap[i]] = center
            m.geom_size[gid] = half
            # The collision bounds are compiled once; resizing a box must update all three.
            m.geom_rbound[gid] = np.linalg.norm(half)
            m.geom_aabb[gid, 3:] = half
            m.bvh_aabb[self._bvh[i], 3:] = half
