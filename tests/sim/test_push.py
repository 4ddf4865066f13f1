"""Push: the expert is bimodal (near or far side of the block), and averaging modes fails."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pytest

import sim
from sim.experts.push_expert import PushExpert
from sim.robots.arm7 import constants as c
from sim.robots.arm7.ik import hand_down, pose_ik_step
from sim.tasks.push import (
    MODE_FAR,
    MODE_NEAR,
    OBJECT_POS,
    OBSTACLE_CENTER,
    OBSTACLE_HALF_SIZE,
    PushConfig,
    PushEnv,
)
from sim.tasks.reach import COST_COLLISION, COST_JOINT_LIMIT, COST_SPEED

EPISODES = 30
Act = Callable[[Mapping[str, np.ndarray]], np.ndarray]


def rollout(env: PushEnv, act: Act, seed: int, options: dict | None = None) -> dict[str, object]:
    """One episode: final info, steps with each cost, steps with the puck on the block,
    and the side of the block (x - block x, m) where the puck crossed its line."""
    env.reset(seed=seed, options=options)
    block = env.state()[OBSTACLE_CENTER.name]
    start_side = np.sign(env.state()[OBJECT_POS.name][1] - block[1])
    costs = dict.fromkeys(env.task_spec.cost_kinds, 0.0)
    crossed_at, on_block, puck_touched_free = None, 0, 0
    truncated = False
    while not truncated:
        _, _, _, truncated, info = env.step(act(env.state()))
        for kind, value in info["cost"].items():
            costs[kind] += value
        on_block += info["object_block_contacts"] > 0
        puck_touched_free += info["object_contacts"] > 0 and info["cost"][COST_COLLISION] == 0
        puck = env.state()[OBJECT_POS.name]
        if crossed_at is None and np.sign(puck[1] - block[1]) != start_side:
            crossed_at = float(puck[0] - block[0])
    return {
        "info": info,
        "costs": costs,
        "on_block": on_block,
        "crossed_at": crossed_at,
        "touched": puck_touched_free,
    }


@pytest.fixture(scope="module")
def env() -> PushEnv:
    return sim.make("push")


@pytest.fixture(scope="module")
def expert_runs(env: PushEnv) -> list[dict[str, object]]:
    expert = PushExpert(env)
    return [rollout(env, expert.act, seed) for seed in range(EPISODES)]


def test_expert_succeeds_in_both_modes_without_collisions(expert_runs: list[dict]) -> None:
    modes = np.array([run["info"]["mode"] for run in expert_runs])
    success = np.array([run["info"]["is_success"] for run in expert_runs])
    assert success.mean() >= 0.9
    for mode in (MODE_NEAR, MODE_FAR):
        assert 0.3 <= np.mean(modes == mode) <= 0.7  # both used, roughly equally
        assert success[modes == mode].mean() >= 0.8
    collided = [run["costs"][COST_COLLISION] > 0 for run in expert_runs]
    assert np.mean(collided) <= 0.05
    assert all(run["costs"][COST_SPEED] == 0 and run["costs"][COST_JOINT_LIMIT] == 0 for run in expert_runs)
    assert all(run["touched"] > 0 for run in expert_runs)  # pushing by contact, not a collision


def test_modes_pass_on_their_own_side(expert_runs: list[dict]) -> None:
    """The mode is the side of the block the puck goes by: near (x smaller) or far."""
    for run in expert_runs:
        if run["info"]["is_success"]:
            side = np.sign(run["crossed_at"])
            assert side == (-1.0 if run["info"]["mode"] == MODE_NEAR else 1.0)
            assert abs(run["crossed_at"]) > 0.05  # clear of the block's middle


def test_forced_modes_both_succeed(env: PushEnv) -> None:
    expert = PushExpert(env)
    for mode in (MODE_NEAR, MODE_FAR):
        run = rollout(env, expert.act, seed=100, options={"mode": mode})
        assert run["info"]["mode"] == mode
        assert run["info"]["is_success"]
        assert (run["crossed_at"] > 0) == (mode == MODE_FAR)


class MeanPathExpert(PushExpert):
    """Steers the puck along the mean of the two modes' paths: straight at the block."""

    def puck_path(self, state: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        near = PushExpert.puck_path(self._with_mode(MODE_NEAR), state)
        far = PushExpert.puck_path(self._with_mode(MODE_FAR), state)
        return [(a + b) / 2 for a, b in zip(near, far, strict=True)]

    def _with_mode(self, mode: int) -> PushExpert:
        return PushExpert(self.env, mode=mode)


def test_averaging_the_two_modes_fails(env: PushEnv) -> None:
    mean_path = MeanPathExpert(env)
    runs = [rollout(env, mean_path.act, seed) for seed in range(4)]
    assert not any(run["info"]["is_success"] for run in runs)
    assert all(run["on_block"] > 0 for run in runs)  # the puck runs into the block
    near, far = PushExpert(env, mode=MODE_NEAR), PushExpert(env, mode=MODE_FAR)
    runs = [rollout(env, lambda s: 0.5 * (near.act(s) + far.act(s)), seed) for seed in range(2)]
    assert not any(run["info"]["is_success"] for run in runs)


def test_arm_on_the_block_is_a_collision(env: PushEnv) -> None:
    env.reset(seed=0)
    top = env.state()[OBSTACLE_CENTER.name] + [0.0, 0.0, env.state()[OBSTACLE_HALF_SIZE.name][2]]
    physics = env.physics
    for _ in range(200):  # teleport the hand down onto the block's top
        q = pose_ik_step(physics, top, hand_down(0.0), max_delta=0.1)
        physics.set_joint_state(q, np.zeros(c.N_JOINTS))
    _, _, _, _, info = env.step(physics.joint_pos())
    assert info["cost"][COST_COLLISION] == 1.0


def test_reset_options_config_and_state(env: PushEnv) -> None:
    start = [0.5, -0.2, c.OBJECT_HALF_HEIGHT]
    obs, info = env.reset(seed=1, options={"mode": MODE_FAR, OBJECT_POS.name: start})
    state = env.state()
    assert info["mode"] == MODE_FAR
    np.testing.assert_allclose(state[OBJECT_POS.name], start)
    np.testing.assert_allclose(obs["achieved_goal"], state[OBJECT_POS.name], atol=1e-6)
    assert np.linalg.norm(state["object_quat"]) == pytest.approx(1.0)
    block = state[OBSTACLE_CENTER.name]
    midpoint = (state[OBJECT_POS.name] + state["goal"])[:2] / 2
    assert np.all(np.abs(block[:2] - midpoint) <= env.config.block_jitter + 1e-9)
    assert state[OBSTACLE_HALF_SIZE.name][2] * 2 == pytest.approx(env.config.block_height)
    with pytest.raises(ValueError, match="mode"):
        env.reset(options={"mode": 2})
    with pytest.raises(ValueError, match="objekt"):
        env.reset(options={"objekt": 1})
    with pytest.raises(ValueError, match="side_y"):
        PushConfig(side_y=(0.3, 0.2))
    modes = {sim.make("push").reset(seed=s)[1]["mode"] for s in range(12)}
    assert modes == {MODE_NEAR, MODE_FAR}
