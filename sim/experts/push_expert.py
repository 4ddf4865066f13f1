"""Scripted push expert: steer the puck around the block on the episode's side, by contact.

The puck follows a path of three points: beside the block's near end, beside its far end
(both on the side the episode's ``mode`` picks) and the goal, by pure pursuit. The fingers,
held 1 cm over the table and lined up across the push direction, stay behind the puck and
push it toward the pursuit point. When they are not behind it they go around it at arm's
length, or, from above or in front of it, lift over it and come down behind it. Stateless:
everything is recomputed from the state each step, so one expert serves many episodes.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from sim.registry import register_expert
from sim.robots.arm7 import constants as c
from sim.robots.arm7.ik import IkGains, hand_down, pose_ik_step
from sim.tasks.push import (
    GOAL_FIELD,
    MODE_NEAR,
    OBJECT_POS,
    OBSTACLE_CENTER,
    OBSTACLE_HALF_SIZE,
    POCKET_WALL_HALF,
    TASK_NAME,
    PushEnv,
)
from sim.tasks.reach import EE_POS

CONTACT = c.OBJECT_RADIUS + c.FINGER_HALF_THICKNESS  # puck center to ee, fingers touching (m)
PUSH_Z = c.FINGERTIP_BELOW_EE + 0.01  # ee height while pushing: fingertips 1 cm up (m)
HOVER_Z = 2 * c.OBJECT_HALF_HEIGHT + c.FINGERTIP_BELOW_EE + 0.05  # clears puck and block (m)
ALIGNED = 0.35  # push while the ee is within this angle of right behind the puck (rad)
ORBIT_MAX = 2.0  # beyond this angle from behind, lift over the puck instead of going around
ORBIT_STEP = 0.4  # largest angle gone around the puck per step (rad)


def detour(
    goal: np.ndarray,
    block: np.ndarray,
    half: np.ndarray,
    side: int,
    clearance: float,
    late_fork: bool = False,
    pocket: float = 0.0,
) -> list[np.ndarray]:
    """The puck's path ``[before, after, goal]``, each ``(2,)`` (m), past the block on ``side``;
    with ``late_fork``, ``[fork, before, after, goal]``: ``fork`` lies on the block's axis
    level with ``before``, the same point for both sides.

    Args:
        goal: puck target (>= 2,) m.
        block: block center (>= 2,) m; half: block half-sizes (>= 2,) m.
        side: ``MODE_NEAR`` passes on the robot's side of the block, else the far side.
        clearance: gap between the puck's edge and the block (m).
        late_fork: go straight at the block to ``fork`` first (``PushConfig.late_fork``).
        pocket: depth of the pocket walls on the block's near face (``PushConfig.pocket_depth``,
            m; 0: none): ``fork`` and ``before`` stand off their tips, the path clears them.
    """
    along = goal[:2] - block[:2]
    along /= np.linalg.norm(along)
    across = np.array([along[1], -along[0]])
    if (across @ block[:2] > 0) == (side == MODE_NEAR):  # point away from / toward the base
        across = -across
    reach_across = abs(across[0]) * half[0] + abs(across[1]) * half[1]
    reach_along = abs(along[0]) * half[0] + abs(along[1]) * half[1]
    if pocket > 0:  # the walls: just outside the block's ends in x, ``pocket`` m out along y
        reach_across += abs(across[0]) * 2 * POCKET_WALL_HALF
    # the near face, or the walls' tips and a second clearance: a puck pushed past the fork
    # into the pocket's mouth cannot be pulled back out
    reach_near = reach_along + abs(along[1]) * pocket + (clearance if pocket > 0 else 0.0)
    beside = block[:2] + across * (reach_across + c.OBJECT_RADIUS + clearance)
    before = beside - along * (reach_near + c.OBJECT_RADIUS + clearance)
    after = beside + along * (reach_along + CONTACT + 2 * clearance)  # the fingers clear it too
    path = [before, after, np.asarray(goal[:2], dtype=np.float64)]
    if late_fork:
        path.insert(0, block[:2] - along * (reach_near + c.OBJECT_RADIUS + clearance))
    return path


def before_fork(puck: np.ndarray, path: list[np.ndarray]) -> bool:
    """Whether ``path`` is led by a fork (``detour(late_fork=True)``) the puck ``(2,)`` (m) is
    not yet level with, along the detour's ``before -> after`` direction."""
    return len(path) == 4 and bool((puck - path[0]) @ (path[2] - path[1]) < 0)


def aim_point(puck: np.ndarray, path: list[np.ndarray], lookahead: float) -> np.ndarray:
    """Pure pursuit: the point ``(2,)`` (m) ``lookahead`` m further along ``path`` (before,
    after, goal) than the puck's projection on it; until the puck is level with ``before``
    it heads for ``before`` itself. A path led by a ``fork`` (``detour(late_fork=True)``):
    until the puck is level with the fork, the point ``lookahead`` m along puck -> fork ->
    before -> ...; then as without it."""
    if before_fork(puck, path):
        return _pursue(puck, path, lookahead)
    path = path[-3:]
    before, after = path[0], path[1]
    along = (after - before) / np.linalg.norm(after - before)
    if (puck - before) @ along < 0:
        here, rest = puck, path
    else:
        seg = 0 if (puck - after) @ along < 0 else 1
        a, b = path[seg], path[seg + 1]
        t = np.clip((puck - a) @ (b - a) / max(float((b - a) @ (b - a)), 1e-12), 0.0, 1.0)
        here, rest = a + t * (b - a), path[seg + 1 :]
    return _pursue(here, rest, lookahead)


def _pursue(here: np.ndarray, rest: list[np.ndarray], lookahead: float) -> np.ndarray:
    """The point ``(2,)`` (m) ``lookahead`` m along the polyline ``here -> rest[0] -> ...``
    (its last point if it is shorter)."""
    left = lookahead
    for point in rest:
        step = float(np.linalg.norm(point - here))
        if step >= left:
            return here + (point - here) * (left / step)
        here, left = point, left - step
    return rest[-1]


def yaw_across(d: np.ndarray, lane: np.ndarray) -> float:
    """Hand yaw (rad) that lines the fingers up across the push direction ``d`` (2,).

    The two such yaws differ by pi (the hand is symmetric); this picks the one in a half
    turn set by the ``lane`` direction (2,), so the wrist flips only for pushes at right
    angles to the lane, which the path never asks for. For a lane along y the yaw lies in
    [0, pi), inside the wrist's range over the arm's front workspace.
    """
    start = (np.arctan2(lane[1], lane[0]) - np.pi / 2) % np.pi
    return float(start + (np.arctan2(d[1], d[0]) - start) % np.pi)


def wrap(angle: float) -> float:
    """``angle`` (rad) wrapped into [-pi, pi)."""
    return float((angle + np.pi) % (2 * np.pi) - np.pi)


@register_expert(TASK_NAME)
class PushExpert:
    """Pushes the puck around the block on the side of ``env.mode`` (or a fixed ``mode``)."""

    def __init__(
        self,
        env: PushEnv,
        mode: int | None = None,
        clearance: float = 0.03,
        push_step: float = 0.012,
        depth: float = 0.015,
        lookahead: float = 0.06,
    ) -> None:
        """
        Args:
            env: the push env whose physics, config and mode the expert reads.
            mode: side to take, ``MODE_NEAR`` or ``MODE_FAR``; None follows ``env.mode``.
            clearance: gap kept between the puck's edge and the block (m).
            push_step: largest ee displacement per control step while pushing (m).
            depth: how far past the contact point the ee target lies while pushing (m).
            lookahead: pure-pursuit distance along the puck's path (m); it rounds corners.
        """
        self.env = env.unwrapped
        self.mode = mode
        self.clearance = clearance
        self.depth = depth
        self.lookahead = lookahead
        self._physics = self.env.physics
        self._max_delta = self.env.config.max_delta
        self._push_gains = IkGains(max_step=push_step)
        self._move_gains = IkGains()

    def act(self, state: Mapping[str, np.ndarray]) -> np.ndarray:
        """Absolute joint-position targets ``(7,)`` (rad) from named raw state."""
        target, yaw, pushing = self.ee_target(state)
        gains = self._push_gains if pushing else self._move_gains
        return pose_ik_step(self._physics, target, hand_down(yaw), self._max_delta, gains)

    def puck_path(self, state: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """The puck's path ``[before, after, goal]`` (each ``(2,)``, m) on this episode's side,
        led by the fork with ``PushConfig.late_fork``, clear of ``PushConfig.pocket_depth``'s
        walls."""
        side = self.env.mode if self.mode is None else self.mode
        block, half = state[OBSTACLE_CENTER.name], state[OBSTACLE_HALF_SIZE.name]
        goal, cfg = np.asarray(state[GOAL_FIELD.name]), self.env.config
        return detour(goal, block, half, side, self.clearance, cfg.late_fork, cfg.pocket_depth)

    def ee_target(self, state: Mapping[str, np.ndarray]) -> tuple[np.ndarray, float, bool]:
        """End-effector target ``(3,)`` (m), hand yaw (rad) and whether it is pushing."""
        puck = np.asarray(state[OBJECT_POS.name], dtype=np.float64)[:2]
        ee = np.asarray(state[EE_POS.name], dtype=np.float64)
        path = self.puck_path(state)
        goal = path[-1]
        heading = aim_point(puck, path, self.lookahead) - puck
        if np.linalg.norm(heading) < 1e-3:  # on the goal: stay clear of the puck, lifted
            return np.array([*ee[:2], HOVER_Z]), 0.0, False
        d = heading / np.linalg.norm(heading)
        yaw = yaw_across(d, goal - np.asarray(state[OBSTACLE_CENTER.name])[:2])
        rel = ee[:2] - puck
        bearing = np.arctan2(rel[1], rel[0])  # where the ee is, seen from the puck (rad)
        off = wrap(np.arctan2(-d[1], -d[0]) - bearing)  # from there to right behind (rad)
        low = ee[2] < PUSH_Z + 0.015
        if low and abs(off) < ALIGNED and np.linalg.norm(rel) < CONTACT + 0.04:
            dist = float(np.linalg.norm(goal - puck))
            if self.env.config.pocket_depth > 0 and before_fork(puck, path):  # walls to miss:
                dist = min(dist, float(np.linalg.norm(path[0] - puck)))  # stop at the fork
            push_to = puck - d * (CONTACT - min(self.depth, dist))
            return np.array([*push_to, PUSH_Z]), yaw, True
        if low and abs(off) < ORBIT_MAX:  # go around the puck at arm's length, staying low
            angle = bearing + np.clip(off, -ORBIT_STEP, ORBIT_STEP)
            around = puck + (CONTACT + 0.025) * np.array([np.cos(angle), np.sin(angle)])
            return np.array([*around, PUSH_Z]), yaw, False
        pre = puck - d * (CONTACT + 0.03)
        if np.linalg.norm(ee[:2] - pre) > 0.015:  # lift, then move over to behind the puck
            xy = ee[:2] if ee[2] < HOVER_Z - 0.02 and np.linalg.norm(rel) < 0.1 else pre
            return np.array([*xy, HOVER_Z]), yaw, False
        return np.array([*pre, PUSH_Z]), yaw, False
