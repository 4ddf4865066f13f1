"""Contract tests over every registered task (dm_control's suite_test, in spirit), and reach on
every configured arm (tests/robots.py: the Panda, the UR5e, a URDF)."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from sim.registry import expert_class, expert_tasks
from sim.spec import TaskSpec
from tests.robots import ROBOTS

SHORT = {"episode_steps": 12}  # tiny episodes keep the whole folder fast
# (task, robot): every registered task on its own arm, and reach on every configured arm
TASKS = [pytest.param(t, "", id=t) for t in sim.names()] + [
    pytest.param("reach", p.values[0], marks=p.marks, id=f"reach-{p.id}") for p in ROBOTS
]


def make(task: str, robot: str, **kwargs: object) -> object:
    return sim.make(task, **({"robot": robot} if robot else {}), **kwargs)


def _rollout(env, seed: int, steps: int) -> list[dict[str, np.ndarray]]:
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    out = [obs]
    for _ in range(steps):
        obs, *_ = env.step(env.action_space.sample())
        out.append(obs)
    return out


@pytest.mark.parametrize(("task", "robot"), TASKS)
def test_observation_matches_spec(task: str, robot: str) -> None:
    env = make(task, robot, **SHORT)
    spec = env.task_spec
    assert isinstance(spec, TaskSpec)
    assert spec.name == task
    assert TaskSpec.from_dict(spec.to_dict()) == spec
    assert float(spec.physics_hz / spec.control_hz).is_integer()
    obs, _ = env.reset(seed=0)
    assert obs["observation"].shape == (spec.obs_size,)
    assert obs["observation"].dtype == np.float32
    assert obs["achieved_goal"].shape == (spec.goal.size,)
    assert obs["desired_goal"].shape == (spec.goal.size,)
    assert env.action_space.shape == (spec.n_joints,)
    assert len(spec.action.max_delta) == spec.n_joints
    state = env.state()
    offset = 0
    for field in spec.observation:  # the vector is the state's fields in spec order
        np.testing.assert_array_equal(
            obs["observation"][offset : offset + field.size],
            np.asarray(state[field.name], dtype=np.float32),
        )
        offset += field.size
    np.testing.assert_array_equal(obs["desired_goal"], state[spec.goal.name].astype(np.float32))
    assert all(np.asarray(v).dtype == np.float64 for v in state.values())
    assert env.observation_space.contains(obs)


@pytest.mark.parametrize(("task", "robot"), TASKS)
def test_deterministic_under_seed(task: str, robot: str) -> None:
    first = _rollout(make(task, robot, **SHORT), seed=7, steps=10)
    second = _rollout(make(task, robot, **SHORT), seed=7, steps=10)
    other = _rollout(make(task, robot, **SHORT), seed=8, steps=10)
    for a, b in zip(first, second, strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(first[0]["desired_goal"], other[0]["desired_goal"])
    reused = make(task, robot, **SHORT)
    _rollout(reused, seed=8, steps=10)
    for a, b in zip(first, _rollout(reused, seed=7, steps=10), strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.parametrize(("task", "robot"), TASKS)
def test_random_actions_no_nan_costs_every_step(task: str, robot: str) -> None:
    env = make(task, robot, **SHORT)
    env.reset(seed=3)
    env.action_space.seed(3)
    kinds = set(env.task_spec.cost_kinds)
    truncated, steps = False, 0
    while not truncated:
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        steps += 1
        assert not terminated
        assert all(np.isfinite(v).all() for v in obs.values())
        assert np.isfinite(reward)
        assert set(info["cost"]) == kinds
        assert all(v in (0.0, 1.0) for v in info["cost"].values())
    assert steps == env.task_spec.episode_steps
    reward_again = env.compute_reward(obs["achieved_goal"], obs["desired_goal"], info)
    assert reward_again == pytest.approx(reward, abs=1e-6)


@pytest.mark.parametrize("task", expert_tasks())
def test_expert_succeeds_at_least_90_percent(task: str) -> None:
    """Issue 3's bar for every scripted expert, on seeds no other test uses."""
    env = sim.make(task)
    expert = expert_class(task)(env)
    episodes, successes = 10, 0
    for ep in range(episodes):
        env.reset(seed=50_000 + ep)
        done = False
        while not done:
            _, _, terminated, truncated, info = env.step(expert.act(env.state()))
            done = terminated or truncated
        successes += bool(info["is_success"])
    assert successes >= 0.9 * episodes, f"{task}: expert succeeded in {successes}/{episodes}"


@pytest.mark.parametrize(("task", "robot"), TASKS)
def test_task_implements_the_backend_protocol(task: str, robot: str) -> None:
    from sim.backend import TaskEnv

    assert isinstance(make(task, robot, **SHORT), TaskEnv)
