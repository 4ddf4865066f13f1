"""Reach over obstacles: the layout blocks the straight way, the via-point expert goes over."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from sim.experts.reach_expert import ReachExpert
from sim.experts.reach_obstacles_expert import ReachObstaclesExpert
from sim.robots.arm7 import constants as c
from sim.tasks.reach import COST_COLLISION, COST_JOINT_LIMIT, COST_SPEED
from sim.tasks.reach_obstacles import (
    ARM7_LAYOUT,
    N_SLOTS,
    OBSTACLE_CENTERS,
    OBSTACLE_HALF_SIZES,
    ReachObstaclesConfig,
    ReachObstaclesEnv,
)

EPISODES = 50


def run(env: ReachObstaclesEnv, act, seeds: range) -> tuple[list[bool], list[float], dict[str, float]]:
    """Roll ``act(state)`` out from each seed: success flags, collision-step counts, and
    the fraction of all steps with each cost."""
    success, collisions = [], []
    costs = dict.fromkeys(env.task_spec.cost_kinds, 0.0)
    steps = 0
    for seed in seeds:
        env.reset(seed=seed)
        truncated, hits = False, 0.0
        while not truncated:
            _, _, _, truncated, info = env.step(act(env.state()))
            hits += info["cost"][COST_COLLISION]
            steps += 1
            for kind, value in info["cost"].items():
                costs[kind] += value
        success.append(bool(info["is_success"]))
        collisions.append(hits)
    return success, collisions, {kind: total / steps for kind, total in costs.items()}


@pytest.fixture(scope="module")
def env() -> ReachObstaclesEnv:
    return sim.make("reach_obstacles")


def test_expert_goes_over_without_touching(env: ReachObstaclesEnv) -> None:
    success, collisions, costs = run(env, ReachObstaclesExpert(env).act, range(EPISODES))
    assert np.mean(success) >= 0.9
    assert np.mean([hits > 0 for hits in collisions]) <= 0.05
    assert costs[COST_SPEED] == 0.0
    assert costs[COST_JOINT_LIMIT] == 0.0


def test_straight_line_reach_expert_hits_the_obstacles(env: ReachObstaclesEnv) -> None:
    """The plain reach expert, which heads straight at the goal, collides in most episodes:
    the boxes are in the way, not decoration."""
    success, collisions, _ = run(env, ReachExpert(env).act, range(20))
    assert np.mean([hits > 0 for hits in collisions]) > 0.5
    assert np.mean(success) < 0.5


def test_wall_crosses_the_straight_segment_and_layouts_vary(env: ReachObstaclesEnv) -> None:
    counts = set()
    for seed in range(30):
        env.reset(seed=seed)
        state = env.state()
        centers = state[OBSTACLE_CENTERS.name].reshape(N_SLOTS, 3)
        halves = state[OBSTACLE_HALF_SIZES.name].reshape(N_SLOTS, 3)
        present = np.any(halves > 0, axis=1)
        assert present[0]  # the wall is always there
        counts.add(int(present.sum()))
        np.testing.assert_array_equal(centers[~present], 0.0)
        np.testing.assert_allclose(centers[present, 2], halves[present, 2])  # on the table
        t = np.linspace(0.0, 1.0, 201)[:, None]
        segment = state["ee_pos"] + t * (state["goal"] - state["ee_pos"])
        inside = np.all(np.abs(segment - centers[0]) < halves[0], axis=1)
        assert inside.any(), f"seed {seed}: the straight segment misses the wall"
        low, high = env.config.workspace_low, env.config.workspace_high
        assert np.all((state["goal"] >= low) & (state["goal"] <= high))
    assert counts == {1, 2, 3}


def test_obstacles_are_observed_and_touching_them_is_a_collision(env: ReachObstaclesEnv) -> None:
    centers, halves = np.zeros((N_SLOTS, 3)), np.zeros((N_SLOTS, 3))
    options = {"joint_pos": np.asarray(c.READY_LOW), OBSTACLE_HALF_SIZES.name: halves}
    _, info = env.reset(seed=0, options=options)
    assert info["cost"][COST_COLLISION] == 0.0  # zero half-sizes: no box at all
    ee = env.state()["ee_pos"]
    centers[1], halves[1] = (ee[0], ee[1], 0.1), (0.05, 0.05, 0.1)  # a block around the hand
    options = {**options, OBSTACLE_CENTERS.name: centers, OBSTACLE_HALF_SIZES.name: halves}
    obs, info = env.reset(seed=0, options=options)
    spec = env.task_spec
    assert spec.obs_size == 2 * c.N_JOINTS + 3 + 2 * 3 * N_SLOTS
    start = sum(f.size for f in spec.observation[:-2])
    np.testing.assert_allclose(obs["observation"][start : start + 9], centers.reshape(-1))
    np.testing.assert_allclose(obs["observation"][start + 9 :], halves.reshape(-1))
    assert info["cost"][COST_COLLISION] == 1.0
    assert env.physics.contacts().arm_table > 0


def test_same_seed_same_layout() -> None:
    a, b = sim.make("reach_obstacles"), sim.make("reach_obstacles")
    for seed in (3, 4):
        a.reset(seed=seed)
        b.reset(seed=seed)
        for key, value in a.state().items():
            np.testing.assert_array_equal(value, b.state()[key], err_msg=key)


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="max_obstacles"):
        ReachObstaclesConfig(max_obstacles=4)
    with pytest.raises(ValueError, match="wall_half_width"):
        ReachObstaclesConfig(wall_half_width=(0.2, 0.1))
    with pytest.raises(TypeError, match="n_boxes"):
        sim.make("reach_obstacles", n_boxes=2)
    env = sim.make("reach_obstacles", min_obstacles=1, max_obstacles=1)
    with pytest.raises(ValueError, match="obstacle_centres"):
        env.reset(seed=0, options={"obstacle_centres": np.zeros((N_SLOTS, 3))})
    env.reset(seed=0)
    assert np.count_nonzero(env.state()[OBSTACLE_HALF_SIZES.name]) == 3


def test_arm7_layout_is_the_default_and_each_field_overrides_it() -> None:
    env = sim.make("reach_obstacles")
    for name, value in ARM7_LAYOUT.items():
        assert getattr(env.config, name) == value, name
    assert env.task_spec.workspace_low == ARM7_LAYOUT["workspace_low"]
    box = {"workspace_low": (0.6, -0.1, 0.08), "workspace_high": (0.65, 0.1, 0.1)}
    env = sim.make("reach_obstacles", wall_margin=0.05, **box)
    assert env.config.wall_margin == 0.05 and env.config.wall_clearance == ARM7_LAYOUT["wall_clearance"]
    assert env.task_spec.workspace_low == box["workspace_low"]
    env.reset(seed=0)
    state = env.state()
    assert np.all((state["goal"] >= box["workspace_low"]) & (state["goal"] <= box["workspace_high"]))
