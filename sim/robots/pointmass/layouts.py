"""Maze layouts: a grid of square cells, ``#`` a wall block, ``.`` free floor.

Cell ``(row, col)`` has its center at ``x = (col - (cols - 1) / 2) * cell_size``,
``y = ((rows - 1) / 2 - row) * cell_size`` (m): the maze is centered on the world origin and
row 0 of the string is its far (+y) side, so the strings read like a map seen from above.
The outer ring is always wall. No MuJoCo here: planners and tests use the grid alone.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from functools import cached_property

import numpy as np

Cell = tuple[int, int]  # (row, col)

# 8 x 8 cells, 24 free: one long loop with dead ends (OGBench "medium"-sized, our own map).
MEDIUM = """
########
#..#...#
#.##.#.#
#....#.#
###.##.#
#...#..#
#.#...##
########
"""

# 9 x 12 cells, 46 free: several loops and dead ends (OGBench "large"-sized, our own map).
LARGE = """
############
#....#.....#
#.##.#.##..#
#.#....#.#.#
#.#.##.#.#.#
#...#..#...#
###.#.####.#
#.....#....#
############
"""

LAYOUTS: dict[str, str] = {"medium": MEDIUM, "large": LARGE}
"""Layout name -> map string; ``MazeConfig.layout`` picks one by name."""

_NEIGHBOURS: tuple[Cell, ...] = ((-1, 0), (1, 0), (0, -1), (0, 1))


@dataclass(frozen=True, eq=False)
class MazeLayout:
    """A parsed maze: wall grid, free cells, cell <-> world conversions, shortest paths.

    Attributes:
        name: layout name, e.g. ``"medium"``.
        walls: ``(rows, cols)`` bool, True where a wall block stands.
        cell_size: side of a cell (m).
    """

    name: str
    walls: np.ndarray
    cell_size: float

    @classmethod
    def parse(cls, name: str, text: str, cell_size: float) -> MazeLayout:
        """Parse a map string (``#`` wall, ``.`` free); raises ``ValueError`` on a bad map."""
        rows = [line.strip() for line in text.strip().splitlines()]
        if len({len(r) for r in rows}) != 1 or set("".join(rows)) - {"#", "."}:
            raise ValueError(f"maze layout {name!r}: rows must have equal length and use only '#', '.'")
        walls = np.array([[ch == "#" for ch in r] for r in rows], dtype=bool)
        if not (walls[0].all() and walls[-1].all() and walls[:, 0].all() and walls[:, -1].all()):
            raise ValueError(f"maze layout {name!r}: the outer ring must be wall")
        walls.setflags(write=False)
        layout = cls(name, walls, float(cell_size))
        if not layout.free_cells:
            raise ValueError(f"maze layout {name!r} has no free cell")
        reached = layout._distances(layout.free_cells[0])
        if len(reached) != len(layout.free_cells):
            raise ValueError(f"maze layout {name!r}: free cells are not all connected")
        return layout

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of the grid, outer walls included."""
        return self.walls.shape[0], self.walls.shape[1]

    @cached_property
    def free_cells(self) -> tuple[Cell, ...]:
        """Free cells in row-major order."""
        return tuple((int(r), int(c)) for r, c in zip(*np.nonzero(~self.walls), strict=True))

    @cached_property
    def wall_cells(self) -> tuple[Cell, ...]:
        """Wall cells in row-major order."""
        return tuple((int(r), int(c)) for r, c in zip(*np.nonzero(self.walls), strict=True))

    def is_free(self, cell: Cell) -> bool:
        r, c = cell
        rows, cols = self.shape
        return 0 <= r < rows and 0 <= c < cols and not self.walls[r, c]

    def cell_center(self, cell: Cell) -> np.ndarray:
        """World position ``(2,)`` (m) of the center of ``cell``."""
        rows, cols = self.shape
        r, c = cell
        return np.array([(c - (cols - 1) / 2), ((rows - 1) / 2 - r)]) * self.cell_size

    def cell_of(self, xy: np.ndarray) -> Cell:
        """The cell that contains world point ``xy`` ``(2,)`` (m), clamped to the grid."""
        rows, cols = self.shape
        c = round(float(xy[0]) / self.cell_size + (cols - 1) / 2)
        r = round((rows - 1) / 2 - float(xy[1]) / self.cell_size)
        return min(max(r, 0), rows - 1), min(max(c, 0), cols - 1)

    def inner_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper corner ``(2,)`` (m) of the area inside the outer walls."""
        half = np.array(self.shape[::-1], dtype=float) / 2 - 1.0  # (cols, rows) / 2 - wall
        return -half * self.cell_size, half * self.cell_size

    def _distances(self, start: Cell) -> dict[Cell, int]:
        """BFS steps from ``start`` to every free cell reachable from it."""
        dist = {start: 0}
        queue = deque([start])
        while queue:
            cell = queue.popleft()
            for dr, dc in _NEIGHBOURS:
                nxt = (cell[0] + dr, cell[1] + dc)
                if nxt not in dist and self.is_free(nxt):
                    dist[nxt] = dist[cell] + 1
                    queue.append(nxt)
        return dist

    def shortest_path(self, start: Cell, goal: Cell) -> list[Cell]:
        """Cells from ``start`` to ``goal`` inclusive, 4-connected through free cells (BFS).

        Raises:
            ValueError: ``start`` or ``goal`` is not a free cell.
        """
        for name, cell in (("start", start), ("goal", goal)):
            if not self.is_free(cell):
                raise ValueError(f"maze {self.name!r}: {name} cell {cell} is not free")
        dist = self._distances(goal)
        path = [start]
        while path[-1] != goal:  # walk downhill on the distance-to-goal field
            r, c = path[-1]
            path.append(min(((r + dr, c + dc) for dr, dc in _NEIGHBOURS), key=lambda n: dist.get(n, 1 << 30)))
        return path


def load_layout(name: str, cell_size: float) -> MazeLayout:
    """The built-in layout ``name``; ``ValueError`` lists the known names."""
    if name not in LAYOUTS:
        raise ValueError(f"unknown maze layout {name!r}; known: {sorted(LAYOUTS)}")
    return MazeLayout.parse(name, LAYOUTS[name], cell_size)
