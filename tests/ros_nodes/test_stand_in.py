"""The sim robot node's stand-in runs every registered task through the task's own reset:
the episodes are those ``spine-run --seed`` runs, reached without teleporting."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import sim
from ros_nodes.stand_in import DmcTask, MazeTask, ServoTask, make_stand_in, timed


@pytest.mark.parametrize("task", sim.registry.names())
def test_every_registered_task_has_a_stand_in(task: str) -> None:
    stand_in = make_stand_in(task)
    stand_in.reset(3)
    state = stand_in.state()
    spec = stand_in.spec
    assert all(f.name in state for f in spec.observation) and state[spec.goal.name].size == spec.goal.size
    stand_in.apply(
        np.asarray(state["joint_pos"]) if isinstance(stand_in, ServoTask) else np.zeros(spec.n_joints)
    )
    stand_in.step(2)
    distance, success = stand_in.score()
    assert np.isfinite(distance) and isinstance(success, bool)


@pytest.mark.parametrize("task", ["reach", "push", "maze"])
def test_episodes_are_the_tasks_own_resets(task: str) -> None:
    """The next episode starts where the task's reset with that seed starts, and the scene
    placed around the robot is that reset's (goal, puck, ...)."""
    stand_in = make_stand_in(task)
    stand_in.reset(0)
    reference = sim.make(task).unwrapped
    reference.reset(seed=7)
    start = stand_in.start_of(7)
    assert np.array_equal(start, reference.state()["joint_pos"])
    stand_in.physics.set_joint_state(start, np.zeros_like(start))  # as if homed exactly
    stand_in.place(7)
    for name, value in reference.state().items():
        assert np.allclose(stand_in.state()[name], value), name


def test_maze_homing_follows_free_cells() -> None:
    stand_in = make_stand_in("maze")
    assert isinstance(stand_in, MazeTask)
    stand_in.reset(1)
    path = stand_in.path_to(stand_in.start_of(2), home_s=1.5, speed=0.5)
    layout = stand_in.env.layout
    points = [stand_in.physics.joint_pos(), *(q for q, _ in path)]
    for a, b in itertools.pairwise(points):  # each segment within one row or column of cells
        for s in np.linspace(0.0, 1.0, 21):
            assert layout.is_free(layout.cell_of(a + s * (b - a)))
    assert sum(t for _, t in path) >= 1.5


def test_timed_paths_respect_the_speed_and_the_shortest_time() -> None:
    path = timed([np.zeros(2), np.array([1.0, 0.0]), np.array([1.0, 2.0])], (2.0, 2.0), 0.5, 0.5)
    assert [t for _, t in path] == [1.0, 2.0]  # 1 m and 2 m at 1 m/s
    slow = timed([np.zeros(1), np.ones(1)], (2.0,), 4.0, 0.5)
    assert slow[0][1] == 4.0  # stretched to the shortest homing time


def test_dm_control_resets_itself() -> None:
    stand_in = make_stand_in("dmc")
    assert isinstance(stand_in, DmcTask) and stand_in.start_of(1) is None
    stand_in.reset(1)
    stand_in.place(2)
    reference = sim.make("dmc").unwrapped
    reference.reset(seed=2)
    assert np.array_equal(stand_in.state()["target_pos"], reference.state()["target_pos"])
