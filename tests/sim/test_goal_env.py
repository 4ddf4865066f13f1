"""The shared goal-env base (``sim.goal_env``): config overrides, rate check, action and
reset-option checks, the same messages from every task that uses it."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from sim.goal_env import GoalEnv, PhysicsGoalEnv, goal_distance, make_config
from sim.tasks.maze import MazeConfig


def test_make_config_replaces_fields_and_names_unknown_ones() -> None:
    base = MazeConfig(init_noise=0.0)
    cfg = make_config(base, {"episode_steps": 7}, MazeConfig)
    assert (cfg.init_noise, cfg.episode_steps) == (0.0, 7)
    assert make_config(None, {}, MazeConfig) == MazeConfig()
    with pytest.raises(TypeError, match=r"MazeConfig has no field\(s\) \['bogus', 'zz'\]; fields are \["):
        make_config(None, {"zz": 1, "bogus": 2}, MazeConfig)


@pytest.mark.parametrize("task", ["reach", "reach_obstacles", "push", "widowx_reach", "maze", "maze_large"])
def test_physics_tasks_share_the_rate_action_and_option_checks(task: str) -> None:
    env = sim.make(task, control_hz=50.0)
    assert isinstance(env, PhysicsGoalEnv)
    assert env.substeps * env.task_spec.control_hz == env.physics_hz == env.task_spec.physics_hz
    assert env.metadata["render_fps"] == 50.0
    name = type(env.config).__name__
    with pytest.raises(ValueError, match=rf"{name}\.control_hz=30\.0 does not divide the physics rate"):
        sim.make(task, control_hz=30.0)
    env.reset(seed=0)
    n = env.action_space.shape[0]
    with pytest.raises(ValueError, match=rf"{task}: action must have shape \({n},\), got \({n + 1},\)"):
        env.step(np.zeros(n + 1))
    with pytest.raises(ValueError, match=f"{task}: action is not finite"):
        env.step(np.full(n, np.nan))
    with pytest.raises(ValueError, match=rf"{task} reset: unknown option\(s\) \['zz'\]"):
        env.reset(seed=0, options={"zz": 1})


def test_goal_distance_is_the_norm_over_the_last_axis() -> None:
    a = np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(goal_distance(a, np.zeros(2)), [5.0, 0.0])
    assert goal_distance(a, np.zeros(2)).dtype == np.float64


def test_render_is_none_without_rgb_array_and_close_is_idempotent() -> None:
    env = sim.make("maze")
    assert isinstance(env, GoalEnv)
    assert env.render() is None
    env.close()
    env.close()
