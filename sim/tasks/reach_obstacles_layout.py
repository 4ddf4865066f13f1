"""Where a configured arm starts and where its boxes may stand, in ``reach_obstacles``.

Derived from the robot config's workspace box and the arm's own geometry, probed in its model
(``ArmProbe``: IK poses and a test slab whose contacts with the arm are counted):

- the hand keeps HOME's orientation, tilted so that its most downward axis points straight
  down (Menagerie's Panda and UR5e already point down at HOME);
- the start: on the workspace's near bottom edge (centered in y), at the depth that leaves the
  most room in front of the arm, at least ``START_LIMIT_MARGIN`` inside the joint limits;
- the wall stands in front of everything the arm has ahead of its end effector there
  (``wall_clearance``), and far enough behind the goal (``wall_goal_clearance``) that the arm,
  with its end effector at a low goal, is over it; its top stays under the arm
  (``wall_max_over_goal``);
- the goal box is the far, low part of the workspace (the back 30 % in x or less, the middle
  two thirds in y, the lowest quarter in z); sizes are arm7's scaled by the workspace depth.

A workspace or an arm where that leaves no sensible wall is refused with ``ValueError`` naming
the robot config and what is missing.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from sim.robots.priority_ik import solve_pose

REFERENCE_DEPTH = 0.35  # workspace depth (m, along x) that arm7's box sizes are made for
VIA_CLEARANCE = 0.06  # the expert's via height over the tallest box (m): kept in the workspace
START_LIMIT_MARGIN = 0.1  # least distance of the start pose to a joint limit (rad): the
# joint_limit cost threshold plus the start noise (0.05 + 0.05 by default)
SLACK = 0.01  # kept between the arm and any box it must not touch (m)


def pointing_down(rotation: np.ndarray) -> np.ndarray:
    """``rotation`` ``(3, 3)`` turned by the least angle that points its most downward axis
    (column) straight down."""
    axis = rotation[:, int(np.argmin(rotation[2]))]
    v, cos = np.cross(axis, [0.0, 0.0, -1.0]), -axis[2]
    sin = float(np.linalg.norm(v))
    if sin < 1e-9:
        return rotation.copy()
    k = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    return (np.eye(3) + k + k @ k * ((1.0 - cos) / sin**2)) @ rotation


class ArmProbe:
    """The arm's kinematics and contacts, probed in its obstacle scene (moves the physics'
    joints and its first box: ``done`` parks the boxes and resets it)."""

    def __init__(self, physics: Any, robot: SimpleNamespace) -> None:
        self.physics = physics
        self.home = np.asarray(robot.HOME, dtype=np.float64)
        physics.set_joint_state(self.home, np.zeros(self.home.size))
        self.rotation = pointing_down(physics.ee_rotation())

    def pose(self, point: np.ndarray) -> tuple[np.ndarray, bool]:
        """Joints that put the end effector at ``point`` with the hand's orientation, and
        whether that pose is good: there (5 mm), away from the limits, touching nothing."""
        p = self.physics
        q, miss = solve_pose(p, point, self.rotation, self.home)
        self.slab(np.zeros(2), np.zeros(2), 0.0)
        inside = float(p.joint_limit_margin().min()) >= START_LIMIT_MARGIN
        return q, miss < 0.005 and inside and p.contacts().total == 0

    def slab(self, low: np.ndarray, high: np.ndarray, top: float) -> bool:
        """Whether the arm, as posed, touches a box over the xy box ``low..high`` from the
        ground to ``top`` (m); ``top <= 0``: no box."""
        p = self.physics
        centers, halves = np.zeros((p.n_obstacles, 3)), np.zeros((p.n_obstacles, 3))
        if top > 0:
            centers[0] = (*((np.asarray(low) + high) / 2), top / 2)
            halves[0] = (*((np.asarray(high) - low) / 2), top / 2)
        p.set_obstacles(centers, halves)
        return p.contacts().total > 0

    def room_ahead(self, point: np.ndarray, y_low: float, y_high: float, top: float) -> float:
        """How far ahead (m, along x) of the end effector at ``point`` the arm reaches, as
        seen by a slab ``y_low..y_high`` wide and ``top`` tall (bisected to 2 mm)."""
        self.pose(point)
        lo, hi = 0.0, 0.3
        while hi - lo > 0.002:
            mid = (lo + hi) / 2
            touch = self.slab(np.array([point[0] + mid, y_low]), np.array([point[0] + 1.0, y_high]), top)
            lo, hi = (mid, hi) if touch else (lo, mid)
        return hi

    def heights_behind(
        self, goal: np.ndarray, wall_from: float, y_low: float, y_high: float, behinds: np.ndarray
    ) -> np.ndarray:
        """How high (m) over ``goal`` the arm, with its end effector there, is over a wall from
        x ``wall_from`` to ``behind`` short of the goal, for each of ``behinds`` (m); bisected to
        2 mm; zeros if the goal is out of reach or the pose touches something."""
        _, ok = self.pose(goal)
        out = np.zeros(len(behinds))
        for i, behind in enumerate(behinds if ok else []):
            low, high = np.array([wall_from, y_low]), np.array([goal[0] - behind, y_high])
            lo, hi = 0.0, 0.5
            while hi - lo > 0.002:
                mid = (lo + hi) / 2
                lo, hi = (lo, mid) if self.slab(low, high, goal[2] + mid) else (mid, hi)
            out[i] = lo
        return out

    def done(self) -> None:
        self.slab(np.zeros(2), np.zeros(2), 0.0)
        self.physics.reset()


def derive_layout(
    probe: ArmProbe, low: np.ndarray, high: np.ndarray, where: str
) -> tuple[np.ndarray, dict[str, Any]]:
    """A configured arm's start pose ``(n,)`` (rad) and its layout fields (``ReachObstaclesConfig``
    names), for the workspace box ``low..high`` (m); raises ``ValueError`` naming ``where``."""
    size, mid_y = high - low, (low[1] + high[1]) / 2
    s = min(1.0, float(size[0]) / REFERENCE_DEPTH)
    thickness, margin = (0.02 * s, 0.035 * s), 0.03 * s
    wall_width = (float(size[1]) / 6, 0.3 * float(size[1]))
    y_low, y_high = low[1] - 0.2, high[1] + 0.2  # where a wall may stand, with room
    starts = []
    for x in low[0] + size[0] * np.linspace(0.0, 0.3, 7):  # the near bottom edge
        point = np.array([x, mid_y, low[2]])
        q, ok = probe.pose(point)
        if ok:
            starts.append((x + probe.room_ahead(point, y_low, y_high, high[2] + 0.5), point, q))
    if not starts:
        probe.done()
        raise ValueError(
            f"reach_obstacles on {where}: no start on the near bottom edge of workspace_low/high "
            f"(x {low[0]:.3f}..{low[0] + 0.3 * size[0]:.3f} m, y {mid_y:.3f}, z {low[2]:.3f}) is reachable "
            f"with the hand down, {START_LIMIT_MARGIN} rad inside the joint limits and touching nothing"
        )
    front, start, start_q = min(starts, key=lambda t: t[0])
    wall_from = front + SLACK  # the nearest a wall's face may be (x, m)
    need = margin + 0.015  # least room for the wall top over the goal: [margin, max over goal]
    top_cap = high[2] - (low[2] + size[2] / 4) - VIA_CLEARANCE  # a via point over it stays inside
    goal_y = (float(low[1] + size[1] / 6), float(high[1] - size[1] / 6))

    def under_arm(x: float, behinds: np.ndarray) -> np.ndarray:  # over walls behind goals at x
        goals = [np.array([x, y, low[2]]) for y in goal_y]
        return np.min([probe.heights_behind(g, wall_from, y_low, y_high, behinds) for g in goals], axis=0)

    behinds = np.arange(0.02, 0.2, 0.01)
    fits = np.flatnonzero(under_arm(high[0], behinds) - SLACK >= need)
    behind = float(behinds[fits[0]]) if len(fits) else None
    goal_from = max(high[0] - 0.3 * size[0], wall_from + 2 * thickness[1] + (behind or 0.0) + 2 * SLACK)
    if behind is not None:
        over = float(min(under_arm(goal_from, [behind])[0], under_arm(high[0], [behind])[0])) - SLACK
    else:
        over = 0.0
    probe.done()
    if behind is None or goal_from > high[0] - 0.02 or min(over, top_cap) < need:
        raise ValueError(
            f"reach_obstacles on {where}: no wall fits between the start and the goal box: the arm "
            f"reaches {front - start[0]:.3f} m ahead of its end effector at the start (x {start[0]:.3f} m), "
            f"the goals would begin at x {goal_from:.3f} m (workspace_high x {high[0]:.3f} m; at least "
            "2 cm of goal box are needed), "
            f"the arm is {over + SLACK:.3f} m over a wall behind a low goal and the workspace top "
            f"leaves {top_cap:.3f} m for a via point; a wall needs {need:.3f} m "
            "(make workspace_low/high deeper in x or taller)"
        )
    over = min(over, top_cap)
    return start_q, {
        "workspace_low": (float(goal_from), goal_y[0], float(low[2])),
        "workspace_high": (float(high[0]), goal_y[1], float(low[2] + size[2] / 4)),
        "wall_half_thickness": thickness,
        "wall_half_width": wall_width,
        "wall_clearance": float(wall_from - start[0]),
        "wall_goal_clearance": float(behind),
        "wall_margin": margin,
        "wall_max_over_goal": float(over),
        "block_low": (float(start[0]), float(low[1])),
        "block_high": (float(goal_from), float(high[1])),
        "block_half_size": (0.02 * s, 0.05 * s),
        "block_height": (float(low[2]), float(low[2] + over)),
        "block_clearance": float(max(0.15 * s, wall_from - start[0], behind) + SLACK),
    }
