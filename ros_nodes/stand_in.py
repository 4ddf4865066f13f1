"""What the sim robot node simulates: any registered task, through the task's own code.

``make_stand_in(task, **kwargs)`` wraps the task's env:

- ``ServoTask``: tasks on Spine's MuJoCo physics with position servos (reach, reach_obstacles,
  widowx_reach on any configured arm, push, the mazes). One tick is one physics step with the
  newest targets held. Every episode is the task's own reset with seed ``seed + episode`` (the
  episodes ``spine-run --seed seed`` runs), except that nothing teleports: before it, the robot
  moves itself to that reset's start pose (``homing``: a smooth joint move; in a maze along the
  free cells' shortest path), and the reset then places the scene (goal, puck, block, obstacles)
  around the robot where it stands.
- ``DmcTask``: dm_control tasks (normalized motor commands). One tick is one control step of the
  task (``env.step``); an episode starts as dm_control starts one: its reset draws the joints
  anew, a simulator's reset (the normalized safety stage reads no joint position).

Episodes are scored by the task's own ``info`` (``distance``, ``is_success``), as ``spine-run``
scores them.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

import sim
from sim.spec import JOINT_POS, TaskSpec

Path = list[tuple[np.ndarray, float]]  # (waypoint (joint positions), seconds to reach it)
SERVO_PARTS = ("set_targets", "step", "joint_pos", "joint_vel", "pos_min", "pos_max")


class ServoTask:
    """A position-servoed task on Spine's physics (``sim.goal_env.PhysicsGoalEnv``)."""

    def __init__(self, env: Any, make_twin: Any) -> None:
        self.env, self.physics = env, env.physics
        self.spec: TaskSpec = env.task_spec
        self.tick_hz = float(self.spec.physics_hz)
        self._make_twin, self._twin = make_twin, None

    def reset(self, seed: int) -> None:
        """Start episode ``seed`` as the task does (at start-up: the robot is placed)."""
        self.env.reset(seed=seed)

    def apply(self, command: np.ndarray) -> None:
        self.physics.set_targets(command)

    def step(self, n: int) -> None:
        self.physics.step(n)

    def state(self) -> dict[str, np.ndarray]:
        return self.env.state()

    def score(self) -> tuple[float, bool]:
        info = self.env._info()
        return float(info["distance"]), bool(info["is_success"])

    def start_of(self, seed: int) -> np.ndarray:
        """Joint positions the task's reset with ``seed`` starts from (drawn by a twin env)."""
        if self._twin is None:
            self._twin = self._make_twin()
        self._twin.reset(seed=seed)
        return np.asarray(self._twin.state()[JOINT_POS], dtype=np.float64)

    def path_to(self, q: np.ndarray, home_s: float, speed: float) -> Path:
        """Waypoints from the current joint positions to ``q``: one straight joint move taking
        ``home_s`` or longer (every joint under ``speed`` x its velocity limit on average)."""
        return timed([self.physics.joint_pos(), q], self.spec.joint_vel_max, home_s, speed)

    def place(self, seed: int) -> None:
        """Episode ``seed``'s scene around the robot where it stands (the task's reset with the
        joints as measured: goal, puck, obstacles drawn as ``spine-run`` draws them)."""
        self.env.reset(seed=seed, options={JOINT_POS: self.physics.joint_pos()})


class MazeTask(ServoTask):
    """The maze's point mass: homing follows the free cells, never through a wall."""

    def path_to(self, q: np.ndarray, home_s: float, speed: float) -> Path:
        layout, here = self.env.layout, self.physics.joint_pos()
        try:
            cells = layout.shortest_path(layout.cell_of(here), layout.cell_of(q))
        except ValueError:  # a point outside the free cells: go straight (the walls stop it)
            cells = []
        points = [here, *(layout.cell_center(c) for c in cells), np.asarray(q, dtype=np.float64)]
        return timed(points, self.spec.joint_vel_max, home_s, speed)


class DmcTask:
    """A dm_control task: normalized motor commands, one tick per control step."""

    def __init__(self, env: Any) -> None:
        self.env = env
        self.spec: TaskSpec = env.task_spec
        self.tick_hz = float(self.spec.control_hz)
        self.command = np.zeros(self.spec.n_joints)
        self.reward = 0.0

    def reset(self, seed: int) -> None:
        self.env.reset(seed=seed)
        self.command = np.zeros(self.spec.n_joints)
        self.reward = 0.0

    def apply(self, command: np.ndarray) -> None:
        self.command = np.asarray(command, dtype=np.float64)

    def step(self, n: int) -> None:
        for _ in range(n):
            _, self.reward, *_ = self.env.step(self.command)

    def state(self) -> dict[str, np.ndarray]:
        return self.env.state()

    def score(self) -> tuple[float, bool]:
        info = self.env._info(self.reward)
        return float(info["distance"]), bool(info["is_success"])

    def start_of(self, seed: int) -> None:
        return None  # no homing: dm_control's reset places the joints

    def path_to(self, q: np.ndarray, home_s: float, speed: float) -> Path:
        return []

    def place(self, seed: int) -> None:
        self.reset(seed)


StandIn = ServoTask | DmcTask


def timed(points: list[np.ndarray], vel_max: tuple[float, ...], total_s: float, speed: float) -> Path:
    """``points[1:]`` with the seconds to reach each from the one before: each segment at most
    ``speed`` x ``vel_max`` on average per joint, the whole path at least ``total_s``."""
    limit = speed * np.asarray(vel_max, dtype=np.float64)
    pts = [np.asarray(p, dtype=np.float64) for p in points]
    times = [max(float(np.max(np.abs(b - a) / limit)), 1e-3) for a, b in itertools.pairwise(pts)]
    scale = max(1.0, total_s / sum(times)) if times else 1.0
    return [(p, t * scale) for p, t in zip(pts[1:], times, strict=True)]


def make_stand_in(task: str, /, **kwargs: Any) -> StandIn:
    """The stand-in for registered ``task`` (``kwargs``: its config, e.g. ``robot=``); a task
    that is neither position-servoed nor dm_control is refused, naming what it lacks."""
    env = sim.make(task, **kwargs).unwrapped
    if env.task_spec.action.kind == "normalized":
        if not hasattr(env, "dm_env"):
            raise ValueError(f"task {task!r}: normalized commands, but no dm_control environment to step")
        return DmcTask(env)
    physics = getattr(env, "physics", None)
    missing = [a for a in SERVO_PARTS if not hasattr(physics, a)]
    if missing:
        raise ValueError(
            f"task {task!r}: the sim robot node drives position-servoed physics or dm_control; "
            f"its physics lacks {missing}"
        )
    twin = lambda: sim.make(task, **kwargs).unwrapped  # noqa: E731
    return MazeTask(env, twin) if hasattr(env, "layout") else ServoTask(env, twin)
