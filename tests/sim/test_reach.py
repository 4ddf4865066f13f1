"""Reach-specific behaviour: config overrides, costs, vectorised reward, unsafe commands."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from sim.robots.arm7 import constants as c
from sim.tasks.reach import COST_COLLISION, COST_JOINT_LIMIT, ReachConfig, ReachEnv


def test_overrides_reach_the_config_and_spec() -> None:
    env = sim.make("reach", episode_steps=50, max_delta=0.1, control_hz=50.0)
    assert env.config.episode_steps == 50
    assert env.task_spec.episode_steps == 50
    assert env.task_spec.action.max_delta == (0.1,) * c.N_JOINTS
    assert env.substeps == 10
    assert env.task_spec.physics_hz == 500.0
    base = ReachConfig(init_noise=0.0)
    assert ReachEnv(base, success_threshold=0.05).config.init_noise == 0.0


def test_wrong_config_field_names_it() -> None:
    with pytest.raises(TypeError, match="episode_stepz"):
        sim.make("reach", episode_stepz=10)
    with pytest.raises(ValueError, match="control_hz"):
        sim.make("reach", control_hz=30.0)  # 500 Hz is not a multiple of it
    with pytest.raises(ValueError, match="episode_steps"):
        ReachConfig(episode_steps=0)


def test_reset_options_and_goal_sampling() -> None:
    env = sim.make("reach", init_noise=0.0)
    goal = np.array([0.4, 0.1, 0.2])
    obs, info = env.reset(seed=0, options={"goal": goal})
    np.testing.assert_allclose(env.state()["goal"], goal)
    np.testing.assert_allclose(env.state()["joint_pos"], c.HOME)
    assert info["distance"] == pytest.approx(np.linalg.norm(obs["achieved_goal"] - goal), 1e-5)
    with pytest.raises(ValueError, match="goalz"):
        env.reset(options={"goalz": goal})
    low, high = np.array(c.WORKSPACE_LOW), np.array(c.WORKSPACE_HIGH)
    for seed in range(20):
        env.reset(seed=seed)
        assert np.all((env.state()["goal"] >= low) & (env.state()["goal"] <= high))


def test_compute_reward_is_vectorised() -> None:
    env = sim.make("reach")
    achieved = np.zeros((4, 5, 3))
    desired = np.ones((4, 5, 3))
    np.testing.assert_allclose(env.compute_reward(achieved, desired, {}), -np.sqrt(3.0))


def test_driving_into_the_table_costs_a_collision() -> None:
    env = sim.make("reach", episode_steps=40)
    env.reset(seed=0)
    into_table = np.array([0.0, c.JOINT_POS_MAX[1], 0.0, -1.0, 0.0, 1.571, 0.785])
    costs = []
    for _ in range(30):
        _, _, _, _, info = env.step(into_table)
        costs.append(info["cost"][COST_COLLISION])
        if info["cost"][COST_COLLISION]:
            assert info["contacts"] > 0
    assert max(costs) == 1.0
    assert costs[0] == 0.0  # it starts free and gets there by moving
    assert env.physics.contacts().arm_table > 0


def test_targets_beyond_limits_are_clipped_not_rejected() -> None:
    env = sim.make("reach")
    env.reset(seed=0)
    env.step(np.full(c.N_JOINTS, 100.0))
    np.testing.assert_allclose(env.physics.targets(), c.JOINT_POS_MAX)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.full(c.N_JOINTS, np.nan))


def test_joint_limit_cost_near_a_limit() -> None:
    env = sim.make("reach")
    q = np.asarray(c.HOME).copy()
    q[0] = c.JOINT_POS_MAX[0] - 0.01
    _, info = env.reset(seed=0, options={"joint_pos": q})
    assert info["cost"][COST_JOINT_LIMIT] == 1.0
    assert info["joint_limit_margin"] == pytest.approx(0.01)
    _, info = env.reset(seed=0)
    assert info["cost"][COST_JOINT_LIMIT] == 0.0


@pytest.mark.filterwarnings("ignore:.*Box observation space maximum value is infinity")
def test_gymnasium_env_checker_passes() -> None:
    from gymnasium.utils.env_checker import check_env

    check_env(sim.make("reach"), skip_render_check=True)
