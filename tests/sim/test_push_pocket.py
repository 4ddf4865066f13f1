"""Push with ``pocket_depth``: walls on the block's near face trap a straight push; the expert
goes around them both ways."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import sim
from sim.experts.push_expert import PushExpert
from sim.tasks.push import MODE_FAR, MODE_NEAR, OBJECT_POS, OBSTACLE_CENTER, POCKET_WALL_HALF, pocket_walls


def test_pocket_walls_stand_out_of_the_face_toward_the_start() -> None:
    block, half = np.array([0.5, 0.01, 0.0125]), np.array([0.05, 0.02, 0.0125])
    walls = pocket_walls(block, half, np.array([0.5, 0.2]), depth=0.04)
    for (center, wall), end in zip(walls, (-1, 1), strict=True):
        assert center[0] == pytest.approx(block[0] + end * (half[0] + POCKET_WALL_HALF))
        assert center[1] - wall[1] == pytest.approx(block[1] + half[1])  # flush with the face
        assert center[1] + wall[1] == pytest.approx(block[1] + half[1] + 0.04)
    (center, _), _ = pocket_walls(block, half, np.array([0.5, -0.2]), depth=0.04)
    assert center[1] < block[1] - half[1]  # the other side when the start is there


def test_pocket_depth_is_checked() -> None:
    with pytest.raises(ValueError, match="pocket_depth"):
        sim.make("push", pocket_depth=-0.01)


def run_episode(env: Any, expert: PushExpert, seed: int, mode: int) -> tuple[dict, int, np.ndarray]:
    """Final info, steps with an arm collision and the puck's final xy relative to the block (m)."""
    env.reset(seed=seed, options={"mode": mode})
    truncated, collided = False, 0
    while not truncated:
        _, _, _, truncated, info = env.step(expert.act(env.state()))
        collided += info["cost"]["collision"] > 0
    state = env.state()
    return info, collided, (state[OBJECT_POS.name] - state[OBSTACLE_CENTER.name])[:2]


def test_expert_goes_around_the_walls_and_a_straight_push_is_trapped() -> None:
    env = sim.make("push", late_fork=True, pocket_depth=0.04, side_y=(0.21, 0.25))
    assert env.unwrapped.physics.n_obstacles == 3
    expert = PushExpert(env)
    for mode in (MODE_NEAR, MODE_FAR):
        info, collided, _ = run_episode(env, expert, seed=3, mode=mode)
        assert info["is_success"] and collided == 0

    def straight(state: dict) -> list[np.ndarray]:  # the mean of the two ways: through the block
        goal, block = np.asarray(state["goal"])[:2], np.asarray(state[OBSTACLE_CENTER.name])[:2]
        return [2 * block - goal, block + 0.01 * (goal - block), goal]

    expert.puck_path = straight
    info, _, rel = run_episode(env, expert, seed=3, mode=MODE_NEAR)
    half = env.unwrapped.state()["obstacle_half_size"]
    assert not info["is_success"]
    assert abs(rel[0]) < half[0]  # between the walls ...
    assert half[1] < abs(rel[1]) < half[1] + 0.04 + 0.04  # ... against the face, in the pocket
    env.close()
