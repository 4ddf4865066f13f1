"""pointmass physics: MjModel + MjData of a maze, state read and written by name.

``step`` runs ``mj_step`` only: positions and velocities are current afterwards, while
contacts are those found at the start of the last physics step (one step, 2 ms, old). The
point mass needs nothing else between control steps, so no ``mj_forward`` is spent on it.
"""

from __future__ import annotations

import mujoco
import numpy as np

from sim.robots.pointmass import constants as c
from sim.robots.pointmass.layouts import MazeLayout
from sim.robots.pointmass.model import maze_xml


class PointMassPhysics:
    """The point mass in ``layout``; every index is resolved from names once."""

    def __init__(self, layout: MazeLayout, timestep: float = c.TIMESTEP) -> None:
        self.layout = layout
        self.model = mujoco.MjModel.from_xml_string(maze_xml(layout, timestep))
        self.data = mujoco.MjData(self.model)
        m = self.model
        joints = [m.joint(name) for name in c.JOINT_NAMES]
        self._qpos_adr = np.array([j.qposadr[0] for j in joints])
        self._dof_adr = np.array([j.dofadr[0] for j in joints])
        self._act_id = np.array([m.actuator(name).id for name in c.ACTUATOR_NAMES])
        self._agent_geom = m.geom(c.AGENT_GEOM).id
        self._goal_mocap = m.body(c.GOAL_MOCAP_BODY).mocapid[0]
        self.pos_min = np.array([j.range[0] for j in joints])
        self.pos_max = np.array([j.range[1] for j in joints])
        self.ctrl_min = m.actuator_ctrlrange[self._act_id, 0].copy()
        self.ctrl_max = m.actuator_ctrlrange[self._act_id, 1].copy()
        self.reset()

    @property
    def timestep(self) -> float:
        """Physics step (s)."""
        return float(self.model.opt.timestep)

    def reset(self) -> None:
        """Back to the model's defaults: agent at the origin, at rest, targets at the origin."""
        mujoco.mj_resetData(self.model, self.data)
        mujoco.mj_forward(self.model, self.data)

    # --- state -------------------------------------------------------------------------
    def joint_pos(self) -> np.ndarray:
        """Agent position ``(2,)`` (m), world x and y (the slide joints' positions)."""
        return self.data.qpos[self._qpos_adr].copy()

    def joint_vel(self) -> np.ndarray:
        """Agent velocity ``(2,)`` (m/s), world x and y."""
        return self.data.qvel[self._dof_adr].copy()

    def targets(self) -> np.ndarray:
        """Current servo position targets ``(2,)`` (m)."""
        return self.data.ctrl[self._act_id].copy()

    def joint_limit_margin(self) -> np.ndarray:
        """Distance of each coordinate to its nearest limit ``(2,)`` (m); < 0 beyond it."""
        q = self.joint_pos()
        return np.minimum(q - self.pos_min, self.pos_max - q)

    def wall_contacts(self) -> int:
        """Active contacts of the agent with any wall (as of the last physics step)."""
        geoms = self.data.contact.geom[: self.data.ncon]
        return int(np.count_nonzero(geoms == self._agent_geom))

    # --- writes ------------------------------------------------------------------------
    def set_joint_state(self, q: np.ndarray, qd: np.ndarray) -> None:
        """Teleport the agent to ``q`` (2,) m with velocity ``qd`` (2,) m/s."""
        self.data.qpos[self._qpos_adr] = q
        self.data.qvel[self._dof_adr] = qd
        mujoco.mj_forward(self.model, self.data)

    def set_targets(self, q_target: np.ndarray) -> np.ndarray:
        """Set position targets ``(2,)`` (m), clipped to the actuator ranges; returns them."""
        target = np.clip(q_target, self.ctrl_min, self.ctrl_max)
        self.data.ctrl[self._act_id] = target
        return target

    def set_goal_marker(self, xy: np.ndarray) -> None:
        """Move the visual-only goal marker to ``xy`` (2,) in the world frame (m)."""
        self.data.mocap_pos[self._goal_mocap, :2] = xy

    def step(self, n: int = 1) -> None:
        """Advance ``n`` physics steps (positions and velocities current afterwards)."""
        mujoco.mj_step(self.model, self.data, nstep=n)

    def refresh(self) -> None:
        """Recompute derived quantities (body poses, contacts) for the current state: for
        rendering, never needed by the control loop."""
        mujoco.mj_forward(self.model, self.data)
