"""Scripted maze expert: BFS over free cells, then bounded steps toward the farthest visible
waypoint (cell center) of the path that keeps a clearance from the walls.

``act(state)`` drives to ``state["goal"]``; ``wander(state, rng, first)`` drives to random
free cells one after another, for goal-free "navigate" datasets (see ``sim.collect``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from sim.registry import register_expert
from sim.robots.pointmass import constants as c
from sim.robots.pointmass.layouts import Cell, MazeLayout
from sim.robots.pointmass.model import wall_boxes
from sim.tasks.maze import GOAL_FIELD, JOINT_POS


class ClearanceMap:
    """Distance from points to the nearest wall block (m), tabulated on a square grid.

    Built once per expert from the layout's wall boxes; ``clear`` checks straight segments.
    """

    def __init__(self, layout: MazeLayout, resolution: float = 0.02, spacing: float = 0.04) -> None:
        """
        Args:
            layout: the maze.
            resolution: grid step of the table (m).
            spacing: largest distance between the points ``clear`` samples on a segment (m);
                the clearance between two samples can be up to ``spacing / 2`` lower.
        """
        rows, cols = layout.shape
        self.resolution = resolution
        self.spacing = spacing
        self.origin = -np.array([cols, rows], dtype=float) * layout.cell_size / 2
        nx, ny = (np.array([cols, rows]) * layout.cell_size / resolution).astype(int) + 1
        xs = self.origin[0] + resolution * np.arange(nx)
        ys = self.origin[1] + resolution * np.arange(ny)
        px, py = np.meshgrid(xs, ys, indexing="ij")  # (nx, ny) each
        table = np.full((nx, ny), np.inf)
        for center, half in wall_boxes(layout):
            dx = np.maximum(np.abs(px - center[0]) - half[0], 0.0)
            dy = np.maximum(np.abs(py - center[1]) - half[1], 0.0)
            table = np.minimum(table, np.hypot(dx, dy))
        self.table = table
        self._last = np.array(table.shape) - 1

    def at(self, points: np.ndarray) -> np.ndarray:
        """Clearance (m) at ``points`` ``(..., 2)`` (m), nearest grid node (clamped to the grid)."""
        index = np.rint((np.asarray(points) - self.origin) * (1.0 / self.resolution)).astype(np.intp)
        index = np.minimum(np.maximum(index, 0), self._last)
        return self.table[index[..., 0], index[..., 1]]

    def clear(self, start: np.ndarray, ends: np.ndarray, need: float) -> np.ndarray:
        """Whether each segment ``start (2,) -> ends[i] (2,)`` (m) keeps a clearance of at least
        ``need`` (m) at points spaced at most ``spacing`` apart; ``(len(ends),)`` bool."""
        lengths = np.sqrt(((ends - start) ** 2).sum(axis=1))
        counts = (lengths / self.spacing).astype(np.intp) + 2
        offsets = np.concatenate(([0], np.cumsum(counts)[:-1]))
        seg = np.repeat(np.arange(len(ends)), counts)
        t = (np.arange(counts.sum()) - offsets[seg]) / (counts[seg] - 1)
        points = start + t[:, None] * (ends[seg] - start)
        return np.minimum.reduceat(self.at(points), offsets) >= need


@register_expert("maze")
@register_expert("maze_large")
class MazeExpert:
    """Plans a cell path with BFS and follows it with target steps of at most ``max_step``."""

    def __init__(self, env: Any, max_step: float = 0.15, margin: float = 0.12, lookahead: int = 4) -> None:
        """
        Args:
            env: a maze env (or a wrapper of one); the expert reads its layout and config.
            max_step: largest target lead over the measured position per control step (m);
                at most ``config.max_delta``. 0.15 m drives the agent at about 1 m/s.
            margin: clearance kept between the agent's surface and the walls (m) when
                choosing a waypoint to head for.
            lookahead: path cells ahead considered as waypoints.
        """
        inner = env.unwrapped
        self.layout: MazeLayout = inner.layout
        self.max_step = min(max_step, inner.config.max_delta)
        self.reach_radius = inner.config.success_threshold
        self.clearance = c.AGENT_RADIUS + margin
        self.lookahead = lookahead
        self._map = ClearanceMap(self.layout)
        self._free = np.array(self.layout.free_cells)
        self._centers = np.array([self.layout.cell_center(cell) for cell in self.layout.free_cells])
        self._center_of = dict(zip(self.layout.free_cells, self._centers, strict=True))
        self._paths: dict[tuple[Cell, Cell], list[Cell]] = {}
        self.target: np.ndarray | None = None  # wander's current temporary target (m)

    def act(self, state: Mapping[str, np.ndarray]) -> np.ndarray:
        """Absolute x/y targets ``(2,)`` (m) toward ``state["goal"]`` (2,) from named raw state."""
        return self.drive(np.asarray(state[JOINT_POS.name], float), np.asarray(state[GOAL_FIELD.name], float))

    def wander(
        self, state: Mapping[str, np.ndarray], rng: np.random.Generator, first: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Goal-free driving: ``(targets (2,) m, temporary goal (2,) m)``.

        Heads for the center of a random free cell (drawn from ``rng``) and draws another one
        once within ``success_threshold`` of it; ``first`` starts over (a new episode).
        """
        pos = np.asarray(state[JOINT_POS.name], float)
        if first or self.target is None or math.dist(pos, self.target) < self.reach_radius:
            here = self._nearest_free(pos)
            choices = [i for i, cell in enumerate(self.layout.free_cells) if cell != here]
            self.target = self._centers[choices[int(rng.integers(len(choices)))]].copy()
        return self.drive(pos, self.target), self.target.copy()

    def drive(self, pos: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Targets ``(2,)`` (m): ``pos`` (2,) m plus a step of at most ``max_step`` toward the
        farthest waypoint among the next ``lookahead`` ones that is reachable in a straight
        line without coming closer to a wall than ``clearance`` (or than the agent is now);
        the current cell's center if none is."""
        path = self._path(self._nearest_free(pos), self._nearest_free(goal))
        ahead = path[1 : 1 + self.lookahead]
        waypoints = [self._center_of[cell] for cell in ahead]
        if len(path) <= 1 + self.lookahead:  # the goal itself, not its cell center, comes last
            waypoints = [*waypoints[:-1], goal]
        need = min(self.clearance, float(self._map.at(pos)) - 1e-3)
        visible = self._map.clear(pos, np.array(waypoints), need)
        n_visible = len(visible) if visible.all() else int(np.argmin(visible))
        aim = waypoints[n_visible - 1] if n_visible else self._center_of[path[0]]
        offset = aim - pos
        dist = math.hypot(offset[0], offset[1])
        if dist > self.max_step:
            offset *= self.max_step / dist
        return pos + offset

    def _nearest_free(self, xy: np.ndarray) -> Cell:
        cell = self.layout.cell_of(xy)
        if self.layout.is_free(cell):
            return cell
        index = int(np.argmin(np.linalg.norm(self._centers - xy, axis=1)))
        return int(self._free[index, 0]), int(self._free[index, 1])

    def _path(self, start: Cell, goal: Cell) -> list[Cell]:
        key = (start, goal)
        if key not in self._paths:
            self._paths[key] = self.layout.shortest_path(start, goal)
        return self._paths[key]
