"""GCIVL and the shared value learning: expectile loss, hindsight rewards, training, checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import sim
from policies.dataset import GoalMix, TrajectoryDataset
from policies.family import TrainContext
from policies.gcivl import GCIVLConfig, GCIVLPolicy
from policies.value import expectile_loss, relabel
from sim.collect import collect, load_dataset

EPISODE_STEPS = 60
TINY = GCIVLConfig(hidden=64, layers=2, lr=1e-3)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def nav_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Goal-free maze data: 4 short wandering episodes."""
    out = tmp_path_factory.mktemp("nav")
    kwargs = {"episode_steps": EPISODE_STEPS}
    return collect("maze", 4, seed=0, out_dir=out, task_kwargs=kwargs, action_noise=0.1, mode="navigate")


@pytest.fixture(scope="module")
def nav(nav_path: Path) -> dict[str, np.ndarray]:
    return load_dataset(nav_path)


def make(config: GCIVLConfig = TINY) -> GCIVLPolicy:
    torch.manual_seed(0)
    return GCIVLPolicy(sim.make("maze", episode_steps=EPISODE_STEPS).task_spec, config)


def test_expectile_loss_weighs_positive_errors_by_the_expectile() -> None:
    diff = torch.tensor([1.0, -1.0, 2.0, -2.0])
    adv = diff.clone()
    loss = expectile_loss(adv, diff, 0.9)
    torch.testing.assert_close(loss, torch.tensor([0.9, 0.1, 3.6, 0.4]))
    assert loss[0] / loss[1] == pytest.approx(9.0)  # under-estimates cost 9x more
    torch.testing.assert_close(expectile_loss(adv, diff, 0.5), 0.5 * diff**2)  # symmetric at 0.5


def test_relabelled_rewards_and_masks_are_zero_exactly_at_the_goal(nav: dict[str, np.ndarray]) -> None:
    data = TrajectoryDataset(nav, seed=0)
    idx = data.sample_indices(512)
    goal, reward, mask = relabel(data, idx, GoalMix(current=1.0, future=0.0))
    assert np.array_equal(goal, idx)  # the transition's own next state is the goal
    assert torch.all(reward == 0) and torch.all(mask == 0)
    torch.testing.assert_close(
        data.gather("next_achieved_goal", goal), data.gather("next_achieved_goal", idx)
    )
    goal, reward, mask = relabel(data, idx, GoalMix(current=0.3, future=0.4, discount=0.9))
    reached = torch.as_tensor(goal == idx)
    assert 0 < int(reached.sum()) < len(idx)
    assert torch.equal(reward, torch.where(reached, 0.0, -1.0))
    assert torch.equal(mask, torch.where(reached, 0.0, 1.0))
    goal, reward, _ = relabel(data, idx, GoalMix(current=0.0, future=1.0, discount=None))
    assert np.all((idx <= goal) & (goal <= data.episode_end[idx]))  # later in the same episode
    assert torch.equal(reward == 0, torch.as_tensor(goal == idx))


def test_losses_decrease_on_navigate_data(nav: dict[str, np.ndarray]) -> None:
    policy = make()
    policy.setup_training(TrainContext("maze", {}, nav, 64, 100, seed=0))
    probe = policy.sample_batch(TrajectoryDataset(nav, seed=1), 512)
    with torch.no_grad():
        _, before = policy.loss(probe)
    for step in range(1, 101):
        policy.update(step)
    with torch.no_grad():
        _, after = policy.loss(probe)
    assert after["value_loss"] < 0.6 * before["value_loss"]
    assert after["actor_mse"] < 0.7 * before["actor_mse"]
    assert after["v_mean"] < -0.5 < before["v_mean"]  # -1 per step until the goal


def test_act_is_a_bounded_step_from_the_joint_positions(nav: dict[str, np.ndarray]) -> None:
    policy = make()
    policy.setup_training(TrainContext("maze", {}, nav, 64, 1, seed=0))
    env = sim.make("maze")
    obs, _ = env.reset(seed=3)
    action = policy.act(obs)
    assert action.shape == (2,) and action.dtype == np.float64
    assert np.all(np.abs(action - obs["observation"][:2]) <= env.task_spec.action.max_delta[0] + 1e-6)


def test_checkpoint_round_trip_gives_identical_actions(nav: dict[str, np.ndarray], tmp_path: Path) -> None:
    from policies.checkpoint import load_checkpoint, save_checkpoint

    policy = make()
    policy.setup_training(TrainContext("maze", {}, nav, 64, 20, seed=0))
    for step in range(1, 21):
        policy.update(step)
    policy.eval()
    save_checkpoint(tmp_path / "ckpt", policy, {"note": "test"}, 20, {})
    loaded, meta = load_checkpoint(tmp_path / "ckpt")
    assert meta["family"] == "gcivl" and meta["policy_config"]["hidden"] == TINY.hidden
    env = sim.make("maze")
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        assert np.array_equal(policy.act(obs), loaded.act(obs))


def test_trainer_runs_gcivl_end_to_end(nav_path: Path, tmp_path: Path) -> None:
    from policies.trainer import TrainConfig, train

    cfg = TrainConfig(
        dataset=str(nav_path),
        out=str(tmp_path),
        steps=6,
        batch_size=32,
        log_every=3,
        eval_every=6,
        eval_episodes=1,
        torch_threads=1,
    )
    result = train(cfg, "maze", "gcivl", {"episode_steps": EPISODE_STEPS}, TINY)
    assert result["steps"] == 6 and 0.0 <= result["success_rate"] <= 1.0
    assert "value_loss" in (tmp_path / "metrics.csv").read_text().splitlines()[0]
    assert (tmp_path / "checkpoint" / "model.safetensors").is_file()


def test_hydra_config_documents_fields_and_rejects_typos() -> None:
    from hydra import compose, initialize_config_dir

    import policies.train_app  # noqa: F401  (registers the schemas)

    config_dir = str(Path(__file__).resolve().parents[2] / "configs")
    with initialize_config_dir(version_base=None, config_dir=config_dir):
        cfg = compose(
            "train", overrides=["task=maze", "policy=gcivl", "dataset=x.npz", "policy.expectile=0.8"]
        )
        assert cfg.policy.expectile == 0.8
        GCIVLConfig(**cfg.policy)
        with pytest.raises(Exception, match="temprature"):
            compose("train", overrides=["task=maze", "policy=gcivl", "dataset=x", "policy.temprature=1"])


def test_gcbc_relabel_trains_on_hindsight_goals(nav: dict[str, np.ndarray]) -> None:
    """The baseline GCIVL is compared with: GCBC with goals relabelled like GCIVL's actor goals."""
    from policies.gcbc import GCBCConfig, GCBCPolicy

    spec = sim.make("maze").task_spec
    plain, relabelled = (
        GCBCPolicy(spec, GCBCConfig(hidden=16, layers=1)),
        GCBCPolicy(spec, GCBCConfig(relabel=True)),
    )
    for policy in (plain, relabelled):
        policy.setup_training(TrainContext("maze", {}, nav, 256, 1, seed=0))
    reached = {tuple(g) for g in nav["next_achieved_goal"].tolist()}
    goals = relabelled._sample()["desired_goal"].tolist()
    assert all(tuple(g) in reached for g in goals)  # states the data reached, not its targets
    targets = {tuple(g) for g in nav["desired_goal"].tolist()}
    assert all(tuple(g) in targets for g in plain._sample()["desired_goal"].tolist())
    torch.testing.assert_close(relabelled.goal_norm.mean, torch.as_tensor(nav["next_achieved_goal"].mean(0)))
