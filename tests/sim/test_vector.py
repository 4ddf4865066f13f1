"""VectorEnv: bit-identical to the single envs, auto-reset, split stepping, batched collection."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import sim
from sim.collect import collect, load_dataset
from sim.randomization import RandomizationConfig, Randomized
from sim.vector import VectorEnv
from sim.vector_collect import BatchedReachExpert, collect_batched

SHORT = {"episode_steps": 4}  # several auto-resets in a few steps


def _single_rollout(envs: list[gym.Env], seed: int, actions: np.ndarray) -> list[tuple]:
    """What a vector env must return, from single envs stepped one by one."""
    obs0 = [env.reset(seed=seed + i)[0] for i, env in enumerate(envs)]
    out = [obs0]
    for action in actions:
        row = []
        for env, a in zip(envs, action, strict=True):
            obs, reward, terminated, truncated, info = env.step(a)
            final = obs
            if terminated or truncated:
                obs = env.reset()[0]
            row.append((obs, reward, terminated, truncated, info, final, env.get_wrapper_attr("state")()))
        out.append(row)
    return out


def _assert_same(venv: VectorEnv, singles: list[gym.Env], seed: int, actions: np.ndarray) -> None:
    expected = _single_rollout(singles, seed, actions)
    obs = venv.reset(seed=seed)
    for i, single_obs in enumerate(expected[0]):
        for key, value in single_obs.items():
            np.testing.assert_array_equal(obs[key][i], value)
    for action, rows in zip(actions, expected[1:], strict=True):
        obs, reward, terminated, truncated, info = venv.step(action)
        state = venv.state()
        for i, (s_obs, s_reward, s_term, s_trunc, s_info, s_final, s_state) in enumerate(rows):
            for key in s_obs:
                np.testing.assert_array_equal(obs[key][i], s_obs[key])
                np.testing.assert_array_equal(info["final_obs"][key][i], s_final[key])
            assert reward[i] == s_reward and terminated[i] == s_term and truncated[i] == s_trunc
            assert info["_final_obs"][i] == (s_term or s_trunc)
            for kind, cost in s_info["cost"].items():
                assert info["cost"][kind][i] == cost
            for key, value in s_info.items():
                if not isinstance(value, dict):
                    np.testing.assert_array_equal(info[key][i], value)
            for key, value in s_state.items():
                np.testing.assert_array_equal(state[key][i], value)


def _actions(venv: VectorEnv, steps: int, seed: int = 0) -> np.ndarray:
    venv.action_space.seed(seed)
    return np.stack([venv.action_space.sample() for _ in range(steps)])


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_reach_bit_identical_to_single_envs(threads: int) -> None:
    with VectorEnv("reach", 5, threads=threads, **SHORT) as venv:
        assert venv.threaded == (threads > 1)
        singles = [sim.make("reach", **SHORT) for _ in range(5)]
        _assert_same(venv, singles, seed=11, actions=_actions(venv, 10))
        assert all(split.enabled for split in venv._splits)  # the guess always held


@pytest.mark.parametrize("task", sim.names())
def test_every_task_bit_identical_at_two_threads(task: str) -> None:
    with VectorEnv(task, 2, threads=2, episode_steps=3) as venv:
        singles = [sim.make(task, episode_steps=3) for _ in range(2)]
        _assert_same(venv, singles, seed=3, actions=_actions(venv, 5, seed=1))


def test_shapes_seeds_and_bad_actions() -> None:
    with VectorEnv("reach", 3, threads=2) as venv:
        spec = venv.task_spec
        obs = venv.reset(seed=0)
        assert obs["observation"].shape == (3, spec.obs_size)
        assert obs["observation"].dtype == np.float32
        assert len({tuple(g) for g in obs["desired_goal"]}) == 3  # env i is seeded seed + i
        assert venv.physics_steps_per_step == round(spec.physics_hz / spec.control_hz)
        obs, reward, terminated, truncated, info = venv.step(venv.state()["joint_pos"])
        assert reward.shape == terminated.shape == truncated.shape == (3,)
        assert info["cost"]["collision"].shape == (3,)
        assert not info["_final_obs"].any()
        with pytest.raises(ValueError, match="actions must have shape"):
            venv.step(np.zeros((2, spec.n_joints)))
        bad = venv.state()["joint_pos"]
        bad[1, 0] = np.nan
        with pytest.raises(ValueError, match="not finite"):
            venv.step(bad)
        physics = venv.envs[0].unwrapped.physics
    assert "step" not in vars(physics)  # close() gave the physics its own step back


class _Shift(gym.ActionWrapper):
    """A wrapper the split cannot foresee: it moves every target a little."""

    def action(self, action: np.ndarray) -> np.ndarray:
        return np.asarray(action) + 0.01


def test_unforeseen_action_transform_falls_back_exactly() -> None:
    venv = VectorEnv.from_envs([_Shift(sim.make("reach", **SHORT)) for _ in range(3)], threads=2)
    singles = [_Shift(sim.make("reach", **SHORT)) for _ in range(3)]
    with venv:
        _assert_same(venv, singles, seed=5, actions=_actions(venv, 6))
        assert not any(split.enabled for split in venv._splits)  # detected and switched off


def test_randomized_envs_with_latency_stay_split_and_identical() -> None:
    cfg = RandomizationConfig(
        mass_scale=(0.7, 1.3), kp_scale=(0.8, 1.2), obs_noise_std=0.01, action_latency=(1, 2)
    )
    with VectorEnv("reach", 3, threads=2, randomization=cfg, **SHORT) as venv:
        singles = [Randomized(sim.make("reach", **SHORT), cfg, seed=i) for i in range(3)]
        _assert_same(venv, singles, seed=2, actions=_actions(venv, 9))
        assert all(split.enabled for split in venv._splits)


def test_batched_reach_expert_matches_single_expert() -> None:
    expert_cls = sim.expert_class("reach")
    with VectorEnv("reach", 4) as venv:
        venv.reset(seed=9)
        for _ in range(3):
            batched = BatchedReachExpert(venv).act(venv.state())
            single = [expert_cls(env).act(env.state()) for env in venv.envs]
            np.testing.assert_allclose(batched, np.stack(single), rtol=0, atol=1e-12)
            venv.step(batched)


def test_collect_batched_one_env_is_collect(tmp_path: Path) -> None:
    kw = {"episode_steps": 20}
    ref = load_dataset(collect("reach", 2, seed=4, out_dir=tmp_path / "a", task_kwargs=kw, action_noise=0.02))
    path = collect_batched(
        "reach", 2, seed=4, out_dir=tmp_path / "b", task_kwargs=kw, action_noise=0.02, num_envs=1, threads=1
    )
    data = load_dataset(path)
    assert set(data) == set(ref)
    for key, value in ref.items():
        assert data[key].dtype == value.dtype and data[key].shape == value.shape, key
        np.testing.assert_allclose(data[key], value, rtol=0, atol=1e-6, err_msg=key)


def test_collect_batched_episodes_are_contiguous(tmp_path: Path) -> None:
    data = load_dataset(
        collect_batched(
            "reach", 7, seed=0, out_dir=tmp_path, task_kwargs={"episode_steps": 6}, num_envs=3, threads=2
        )
    )
    assert len(data["reward"]) == 7 * 6
    np.testing.assert_array_equal(data["episode"], np.repeat(np.arange(7), 6))
    np.testing.assert_array_equal(data["step"], np.tile(np.arange(6), 7))
    np.testing.assert_array_equal(data["done"], data["step"] == 5)
    inner = ~data["done"]  # within an episode the next observation is the next row's
    np.testing.assert_array_equal(data["next_observation"][inner], data["observation"][1:][inner[:-1]])
    assert len({tuple(g) for g in data["desired_goal"]}) == 7  # every episode has its own goal
