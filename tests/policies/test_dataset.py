import numpy as np
import pytest

from policies.dataset import GoalMix, TrajectoryDataset


def toy(lengths: list[int]) -> dict[str, np.ndarray]:
    episode = np.concatenate([np.full(n, e) for e, n in enumerate(lengths)])
    n = len(episode)
    return {"episode": episode, "done": np.zeros(n, bool), "action": np.arange(n, dtype=float)[:, None]}


def test_goals_stay_in_their_episode_and_follow_the_mix() -> None:
    ds = TrajectoryDataset(toy([5, 7, 3]), seed=0)
    idx = ds.sample_indices(4000)
    future = ds.sample_goals(idx, GoalMix(current=0.0, future=1.0, discount=None))
    assert np.all(future >= idx) and np.all(future <= ds.episode_end[idx])
    assert np.all(ds.episode_start[future] == ds.episode_start[idx])
    current = ds.sample_goals(idx, GoalMix(current=1.0, future=0.0))
    np.testing.assert_array_equal(current, idx)
    mixed = ds.sample_goals(idx, GoalMix(current=0.3, future=0.3, discount=0.9))
    assert 0.25 < np.mean(mixed == idx) < 0.45  # current goals, plus future ones that hit idx


def test_chunks_are_clipped_and_masked_at_the_episode_end() -> None:
    ds = TrajectoryDataset(toy([5, 7]), seed=0)
    chunk, valid = ds.chunk_indices(np.array([3, 5]), chunk_length=4)
    np.testing.assert_array_equal(chunk, [[3, 4, 4, 4], [5, 6, 7, 8]])
    np.testing.assert_array_equal(valid, [[True, True, False, False], [True] * 4])
    assert ds.gather("action", chunk).shape == (2, 4, 1)
    np.testing.assert_array_equal(ds.future_index(np.array([0, 10]), 3), [3, 11])


def test_bad_mix_is_rejected() -> None:
    with pytest.raises(ValueError, match="GoalMix"):
        GoalMix(current=0.8, future=0.5)
