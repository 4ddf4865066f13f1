"""The dm_control adapter: spec conformance, seeding, and rewards equal to dm_control's own."""

from __future__ import annotations

import math

import numpy as np
import pytest

import sim
from sim.spec import TaskSpec
from sim.tasks.dmc import COST_SPEED, NO_GOAL

SHORT = {"episode_steps": 15}
CASES = [("cartpole", "swingup"), ("walker", "walk"), ("reacher", "easy")]


def _suite_env(domain: str, task: str, seed: int):
    """dm_control's own environment for the same task and seed."""
    from dm_control import suite

    return suite.load(domain, task, task_kwargs={"random": seed, "time_limit": math.inf})


def _flat(observation: dict) -> np.ndarray:
    return np.concatenate([np.asarray(v, np.float64).reshape(-1) for v in observation.values()])


@pytest.mark.parametrize(("domain", "task"), CASES)
def test_spec_matches_dm_control(domain: str, task: str) -> None:
    env = sim.make("dmc", domain=domain, task=task, **SHORT)
    spec = env.task_spec
    ref = _suite_env(domain, task, seed=0)
    assert TaskSpec.from_dict(spec.to_dict()) == spec
    assert spec.action.kind == "normalized" and spec.action.unit == "1"
    assert env.action_space.shape == ref.action_spec().shape == (spec.n_joints,)
    names = list(ref.observation_spec())
    assert [f.name for f in spec.observation] == names
    sizes = [max(1, math.prod(s.shape)) for s in ref.observation_spec().values()]
    assert [f.size for f in spec.observation] == sizes
    assert spec.control_hz == pytest.approx(1.0 / ref.control_timestep())
    assert spec.physics_hz == pytest.approx(1.0 / ref.physics.model.opt.timestep)
    obs, info = env.reset(seed=0)
    assert obs["observation"].shape == (spec.obs_size,)
    assert obs["desired_goal"].shape == (spec.goal.size,)
    assert COST_SPEED in info["cost"]
    if domain == "reacher":  # the one goal domain: finger and target xy (m)
        assert spec.goal.size == 2 and spec.goal.unit == "m"
    else:
        assert spec.goal == NO_GOAL


def test_joint_names_and_limits_come_from_the_actuated_joints() -> None:
    spec = sim.make("dmc", domain="cartpole", task="swingup").task_spec
    assert spec.joint_names == ("slider",)
    assert spec.joint_pos_min[0] < 0 < spec.joint_pos_max[0]
    walker = sim.make("dmc", domain="walker", task="walk").task_spec
    assert walker.joint_names[:3] == ("right_hip", "right_knee", "right_ankle")
    assert all(math.isfinite(x) for x in walker.joint_pos_min)
    assert "joint_limit" in walker.cost_kinds


@pytest.mark.parametrize(("domain", "task"), CASES[:2])
def test_seed_fixes_the_episode(domain: str, task: str) -> None:
    def rollout(env, seed: int) -> np.ndarray:
        obs, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        out = [obs["observation"]]
        for _ in range(8):
            out.append(env.step(env.action_space.sample())[0]["observation"])
        return np.stack(out)

    env = sim.make("dmc", domain=domain, task=task, **SHORT)
    first, other = rollout(env, 7), rollout(env, 8)
    np.testing.assert_array_equal(first, rollout(sim.make("dmc", domain=domain, task=task), 7))
    np.testing.assert_array_equal(first, rollout(env, 7))  # reseeding a used env
    assert not np.array_equal(first[0], other[0])


@pytest.mark.parametrize(("domain", "task"), CASES)
def test_rewards_and_observations_equal_dm_control_step(domain: str, task: str) -> None:
    env = sim.make("dmc", domain=domain, task=task, **SHORT)
    ref = _suite_env(domain, task, seed=5)
    obs, _ = env.reset(seed=5)
    np.testing.assert_array_equal(obs["observation"], _flat(ref.reset().observation).astype(np.float32))
    rng = np.random.default_rng(0)
    for _ in range(SHORT["episode_steps"]):
        action = rng.uniform(-1, 1, env.action_space.shape)
        obs, reward, terminated, _, info = env.step(action)
        ts = ref.step(action)
        assert reward == ts.reward == info["reward"]
        np.testing.assert_array_equal(obs["observation"], _flat(ts.observation).astype(np.float32))
        assert not terminated
        assert env.compute_reward(obs["achieved_goal"], obs["desired_goal"], info) == pytest.approx(reward)


def test_action_repeat_sums_rewards_and_slows_control() -> None:
    env = sim.make("dmc", domain="cartpole", task="swingup", action_repeat=2, **SHORT)
    ref = _suite_env("cartpole", "swingup", seed=1)
    assert env.task_spec.control_hz == pytest.approx(1.0 / (2 * ref.control_timestep()))
    env.reset(seed=1)
    ref.reset()
    action = np.array([0.5])
    _, reward, *_ = env.step(action)
    assert reward == pytest.approx(ref.step(action).reward + ref.step(action).reward)


def test_reacher_goal_reward_is_dm_controls_tolerance() -> None:
    env = sim.make("dmc")  # the default: reacher/easy
    obs, info = env.reset(seed=3)
    radius = env.task_spec.success_threshold
    assert radius == pytest.approx(0.05 + 0.01)  # target + finger radii (easy)
    goal = obs["desired_goal"]
    near, far = goal + np.float32(radius / 2), goal + np.float32(2 * radius)
    rewards = env.compute_reward(np.stack([near, far, goal]), np.stack([goal, goal, goal]), [info] * 3)
    np.testing.assert_array_equal(rewards, [1.0, 0.0, 1.0])  # |near - goal| = 0.71 radius
    state = env.state()
    to_target = state["to_target"]  # dm_control's own observation: target - finger
    np.testing.assert_allclose(state["target_pos"] - state["finger_pos"], to_target, atol=1e-12)
    assert info["distance"] == pytest.approx(np.linalg.norm(to_target))


def test_goalless_compute_reward_returns_the_recorded_rewards() -> None:
    env = sim.make("dmc", domain="cartpole", task="swingup", **SHORT)
    env.reset(seed=0)
    infos = [env.step(np.array([0.3]))[4] for _ in range(3)]
    empty = np.zeros((3, 0), np.float32)
    np.testing.assert_array_equal(env.compute_reward(empty, empty, infos), [i["reward"] for i in infos])
    assert infos[-1]["distance"] == pytest.approx(1.0 - infos[-1]["reward"])


def test_unknown_domain_and_task_name_the_field_and_list_choices() -> None:
    with pytest.raises(ValueError, match=r"DmcConfig\.domain='nope'.*cartpole"):
        sim.make("dmc", domain="nope")
    with pytest.raises(ValueError, match=r"DmcConfig\.task='nope'.*swingup"):
        sim.make("dmc", domain="cartpole", task="nope")
    with pytest.raises(TypeError, match="no field"):
        sim.make("dmc", domian="cartpole")
    with pytest.raises(ValueError, match="action_repeat"):
        sim.make("dmc", action_repeat=0)


@pytest.mark.filterwarnings("ignore:.*Box observation space m")
@pytest.mark.parametrize("kwargs", [{}, {"domain": "cartpole", "task": "swingup"}])
def test_gymnasium_env_checker_passes(kwargs: dict) -> None:
    from gymnasium.utils.env_checker import check_env

    check_env(sim.make("dmc", **SHORT, **kwargs), skip_render_check=True)
