"""Dataset collection: the file round-trips, holds no objects and describes itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sim.collect import DATASET_KEYS, collect, cost_key, load_dataset
from sim.spec import TaskSpec

EPISODES, STEPS = 3, 15


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data")
    return collect("reach", EPISODES, seed=5, out_dir=out, task_kwargs={"episode_steps": STEPS})


def test_round_trip_shapes_and_dtypes(dataset: Path) -> None:
    data = load_dataset(dataset)
    meta = json.loads(dataset.with_suffix(".json").read_text())
    spec = TaskSpec.from_dict(meta["task"])
    n = EPISODES * STEPS
    assert meta["transitions"] == n
    assert meta["seed"] == 5
    assert meta["episodes"] == EPISODES
    assert 0.0 <= meta["expert_success_rate"] <= 1.0
    assert meta["mode"] == "goal"
    assert meta["elapsed_s"] > 0
    assert spec.episode_steps == STEPS
    assert data["observation"].shape == (n, spec.obs_size)
    assert data["next_observation"].shape == (n, spec.obs_size)
    assert data["action"].shape == (n, spec.n_joints)
    assert data["desired_goal"].shape == (n, spec.goal.size)
    for key, (dtype, _) in DATASET_KEYS.items():
        assert data[key].dtype == dtype, key
    for kind in spec.cost_kinds:
        assert data[cost_key(kind)].shape == (n,)
    assert all(arr.dtype != object for arr in data.values())


def test_transitions_chain_within_episodes(dataset: Path) -> None:
    data = load_dataset(dataset)
    np.testing.assert_array_equal(data["episode"], np.repeat(np.arange(EPISODES), STEPS))
    np.testing.assert_array_equal(data["step"], np.tile(np.arange(STEPS), EPISODES))
    np.testing.assert_array_equal(data["done"], data["step"] == STEPS - 1)
    inner = ~data["done"]
    np.testing.assert_array_equal(data["next_observation"][inner], data["observation"][1:][inner[:-1]])
    distance = np.linalg.norm(data["next_achieved_goal"] - data["desired_goal"], axis=1)
    np.testing.assert_allclose(data["reward"], -distance, atol=1e-5)
    np.testing.assert_array_equal(data["action"], data["expert_action"])  # no noise asked


def test_same_seed_same_data_and_noise_changes_actions(dataset: Path, tmp_path: Path) -> None:
    kwargs = {"task_kwargs": {"episode_steps": STEPS}}
    again = load_dataset(collect("reach", EPISODES, seed=5, out_dir=tmp_path / "a", **kwargs))
    for key, value in load_dataset(dataset).items():
        np.testing.assert_array_equal(value, again[key], err_msg=key)
    noisy = load_dataset(collect("reach", 1, seed=5, out_dir=tmp_path / "b", action_noise=0.02, **kwargs))
    assert not np.allclose(noisy["action"], noisy["expert_action"])


def test_missing_array_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.npz"
    np.savez_compressed(path, observation=np.zeros((2, 17), np.float32))
    with pytest.raises(KeyError, match=r"broken\.npz.*achieved_goal"):
        load_dataset(path)


def test_unknown_task_has_no_expert(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="no_such_task"):
        collect("no_such_task", 1, seed=0, out_dir=tmp_path)


def test_navigate_mode_needs_a_wandering_expert(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"navigate.*wander.*reach"):
        collect("reach", 1, seed=0, out_dir=tmp_path, mode="navigate")
    with pytest.raises(ValueError, match="mode='roam'"):
        collect("reach", 1, seed=0, out_dir=tmp_path, mode="roam")


def test_collect_with_randomization_records_it_and_changes_the_data(tmp_path: Path) -> None:
    from sim.randomization import RandomizationConfig

    nominal = load_dataset(collect("reach", episodes=2, seed=0, out_dir=tmp_path / "a"))
    cfg = RandomizationConfig(kp_scale=(0.5, 0.6), action_latency=(1, 1))
    path = collect("reach", episodes=2, seed=0, out_dir=tmp_path / "b", randomization=cfg)
    randomized = load_dataset(path)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["randomization"]["kp_scale"] == [0.5, 0.6]
    assert not np.array_equal(nominal["next_observation"], randomized["next_observation"])
    np.testing.assert_array_equal(nominal["observation"][0], randomized["observation"][0])
