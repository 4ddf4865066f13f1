"""Write the MJCF of a point mass in a maze layout (walls, agent, servos, goal marker, camera)."""

from __future__ import annotations

import numpy as np

from sim.robots.pointmass import constants as c
from sim.robots.pointmass.layouts import MazeLayout


def wall_boxes(layout: MazeLayout) -> list[tuple[np.ndarray, np.ndarray]]:
    """Wall blocks merged along rows: ``(center (2,), half extents (2,))`` in m per box.

    Merging runs of wall cells keeps the geom count (and the collision broadphase) small.
    """
    boxes = []
    rows, cols = layout.shape
    half = layout.cell_size / 2
    for r in range(rows):
        c0 = 0
        while c0 < cols:
            if not layout.walls[r, c0]:
                c0 += 1
                continue
            c1 = c0
            while c1 + 1 < cols and layout.walls[r, c1 + 1]:
                c1 += 1
            center = (layout.cell_center((r, c0)) + layout.cell_center((r, c1))) / 2
            boxes.append((center, np.array([(c1 - c0 + 1) * half, half])))
            c0 = c1 + 1
    return boxes


def joint_range(layout: MazeLayout) -> tuple[np.ndarray, np.ndarray]:
    """Slide-joint limits ``(2,)`` each (m): the inside of the outer walls less the agent radius,
    i.e. where the agent's center can be. Actuator ranges are the same."""
    low, high = layout.inner_bounds()
    return low + c.AGENT_RADIUS, high - c.AGENT_RADIUS


def _v(values: np.ndarray | tuple[float, ...]) -> str:
    return " ".join(f"{float(x):.6g}" for x in values)


def maze_xml(layout: MazeLayout, timestep: float = c.TIMESTEP) -> str:
    """The MJCF text for ``layout``; names come from ``constants``."""
    low, high = joint_range(layout)
    rows, cols = layout.shape
    span = max(rows, cols) * layout.cell_size
    h = c.WALL_HEIGHT / 2
    walls = "\n".join(
        f'    <geom name="{c.WALL_PREFIX}{i}" class="wall" pos="{_v((*center, h))}" size="{_v((*size, h))}"/>'
        for i, (center, size) in enumerate(wall_boxes(layout))
    )
    servo = f'kp="{c.KP}" kv="{c.KV}" forcerange="{-c.FORCE_LIMIT} {c.FORCE_LIMIT}"'
    return f"""<mujoco model="pointmass_{layout.name}">
  <compiler autolimits="true"/>
  <option timestep="{timestep}" gravity="0 0 0" integrator="implicitfast"/>
  <visual>
    <global offwidth="640" offheight="480"/>
    <headlight ambient="0.4 0.4 0.4" diffuse="0.5 0.5 0.5"/>
  </visual>
  <default>
    <geom condim="1" contype="1" conaffinity="1"/>
    <default class="wall">
      <geom type="box" rgba="0.45 0.5 0.6 1"/>
    </default>
  </default>
  <asset>
    <texture name="grid" type="2d" builtin="checker" rgb1="0.85 0.85 0.8" rgb2="0.75 0.75 0.7"
      width="256" height="256"/>
    <material name="grid" texture="grid" texrepeat="{cols} {rows}"/>
  </asset>
  <worldbody>
    <camera name="{c.CAMERA}" pos="0 0 {1.1 * span:.6g}" xyaxes="1 0 0 0 1 0"/>
    <geom name="{c.FLOOR_GEOM}" type="plane" material="grid" contype="0" conaffinity="0"
      size="{_v((cols * layout.cell_size / 2, rows * layout.cell_size / 2, 0.1))}"/>
{walls}
    <body name="{c.GOAL_MOCAP_BODY}" mocap="true" pos="0 0 0.01">
      <site name="goal_marker" type="cylinder" size="{c.AGENT_RADIUS} 0.005" rgba="0.1 0.8 0.2 0.6"/>
    </body>
    <body name="{c.AGENT_BODY}" pos="0 0 {c.AGENT_RADIUS}">
      <joint name="{c.JOINT_NAMES[0]}" type="slide" axis="1 0 0" range="{low[0]:.6g} {high[0]:.6g}"/>
      <joint name="{c.JOINT_NAMES[1]}" type="slide" axis="0 1 0" range="{low[1]:.6g} {high[1]:.6g}"/>
      <geom name="{c.AGENT_GEOM}" type="sphere" size="{c.AGENT_RADIUS}" mass="{c.AGENT_MASS}"
        margin="{c.CONTACT_MARGIN}" gap="{c.CONTACT_MARGIN}" rgba="0.9 0.3 0.2 1"/>
    </body>
  </worldbody>
  <actuator>
    <position name="{c.ACTUATOR_NAMES[0]}" joint="{c.JOINT_NAMES[0]}" {servo}
      ctrlrange="{low[0]:.6g} {high[0]:.6g}"/>
    <position name="{c.ACTUATOR_NAMES[1]}" joint="{c.JOINT_NAMES[1]}" {servo}
      ctrlrange="{low[1]:.6g} {high[1]:.6g}"/>
  </actuator>
</mujoco>
"""
