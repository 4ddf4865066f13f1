"""HIQL: two rates at inference, contract fields, subgoal targets, training, checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import sim
from policies.checkpoint import load_checkpoint, make_contract, save_checkpoint
from policies.dataset import TrajectoryDataset
from policies.family import TrainContext
from policies.hiql import HIQLConfig, HIQLPolicy
from sim.collect import collect, load_dataset
from sim.execution import HierarchicalPolicy

EPISODE_STEPS = 60
TINY = HIQLConfig(hidden=64, layers=2, rep_dim=4, lr=1e-3, subgoal_steps=5, high_level_every=3)


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


def make(nav: dict[str, np.ndarray], config: HIQLConfig = TINY, steps: int = 0) -> HIQLPolicy:
    torch.manual_seed(0)
    policy = HIQLPolicy(sim.make("maze", episode_steps=EPISODE_STEPS).task_spec, config)
    policy.setup_training(TrainContext("maze", {}, nav, 64, max(steps, 1), seed=0))
    for step in range(1, steps + 1):
        policy.update(step)
    return policy.eval()


def test_high_level_runs_every_k_steps_and_holds_its_subgoal(nav: dict[str, np.ndarray]) -> None:
    """HIQL acts through the executor that ships (``sim.execution.HierarchicalPolicy``)."""
    family = make(nav, steps=5)
    calls: list[torch.Tensor] = []
    high_level = family.high_level

    def counting(observation: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        calls.append(high_level(observation, goal))
        return calls[-1]

    family.high_level = counting  # type: ignore[method-assign]
    policy = HeldSubgoal(family, calls)
    env = sim.make("maze")
    obs, _ = env.reset(seed=1)
    policy.reset()
    held = []
    for step in range(10):
        obs, *_ = env.step(policy.act(obs))
        held.append(policy._subgoal)
        assert len(calls) == step // TINY.high_level_every + 1  # steps 0, 3, 6, 9
    assert len(calls) == 4
    assert all(held[i] is calls[i // 3] for i in range(10))  # held between high-level calls
    policy.reset()
    assert policy._subgoal is None
    policy.act(obs)
    assert len(calls) == 5  # reset() makes the next act() plan again


class HeldSubgoal:
    """``family.act``/``reset`` and, as ``_subgoal``, the recorded high-level call whose output
    the executor holds for the low level (None when it holds none)."""

    def __init__(self, family: HIQLPolicy, calls: list[torch.Tensor]) -> None:
        self.family, self.calls = family, calls

    def reset(self) -> None:
        self.family.reset()

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.family.act(obs)

    @property
    def _subgoal(self) -> torch.Tensor | None:
        agent = self.family.agent()
        assert isinstance(agent, HierarchicalPolicy)
        if agent.held is None:
            return None
        return next(c for c in self.calls if np.array_equal(c.numpy(), agent.held))


def test_contract_has_the_low_level_graph_and_both_rates(nav: dict[str, np.ndarray]) -> None:
    policy = make(nav)
    contract = make_contract(policy, {})
    assert [t.name for t in contract.inputs] == ["observation", "subgoal_rep"]
    assert contract.inputs[1].shape == (1, TINY.rep_dim)
    assert [t.name for t in contract.outputs] == ["joint_target"]
    assert contract.policy_hz == 25.0
    assert contract.high_level_hz == pytest.approx(25.0 / TINY.high_level_every)
    rep = policy.high_level(torch.zeros(2, policy.spec.obs_size), torch.zeros(2, 2))
    torch.testing.assert_close(rep.norm(dim=-1), torch.full((2,), TINY.rep_dim**0.5))


def test_subgoals_are_the_states_k_steps_ahead(nav: dict[str, np.ndarray]) -> None:
    policy = make(nav, HIQLConfig(hidden=16, layers=1, subgoal_steps=1))
    batch = policy.sample_batch(TrajectoryDataset(nav, seed=0), 256)
    # the maze's achieved goal is joint_pos, the first two observation features
    torch.testing.assert_close(batch["low_subgoal"], batch["next_observation"][:, :2])
    torch.testing.assert_close(batch["high_subgoal_obs"][:, :2], batch["high_subgoal"])
    data = TrajectoryDataset(nav, seed=0)
    far = make(nav, HIQLConfig(hidden=16, layers=1, subgoal_steps=EPISODE_STEPS * 2)).sample_batch(data, 256)
    # k past every episode's end: the high level aims at the goal itself, the low at the last state
    torch.testing.assert_close(far["high_subgoal"], far["high_goal"])


def test_losses_decrease_on_navigate_data(nav: dict[str, np.ndarray]) -> None:
    policy = make(nav).train()
    probe = policy.sample_batch(TrajectoryDataset(nav, seed=1), 512)
    with torch.no_grad():
        _, before = policy.loss(probe)
    for step in range(1, 101):
        policy.update(step)
    with torch.no_grad():
        _, after = policy.loss(probe)
    assert after["value_loss"] < 0.6 * before["value_loss"]
    assert after["low_mse"] < 0.7 * before["low_mse"]
    assert after["high_mse"] < 0.7 * before["high_mse"]


def test_checkpoint_round_trip_gives_identical_actions(nav: dict[str, np.ndarray], tmp_path: Path) -> None:
    policy = make(nav, steps=20)
    save_checkpoint(tmp_path / "ckpt", policy, {"note": "test"}, 20, {})
    loaded, meta = load_checkpoint(tmp_path / "ckpt")
    assert meta["contract"]["high_level_hz"] == pytest.approx(25.0 / TINY.high_level_every)
    env = sim.make("maze")
    obs, _ = env.reset(seed=2)
    policy.reset()
    loaded.reset()
    for _ in range(7):  # across two high-level calls
        a, b = policy.act(obs), loaded.act(obs)
        assert np.array_equal(a, b)
        obs, *_ = env.step(a)


def test_trainer_runs_hiql_end_to_end(nav_path: Path, tmp_path: Path) -> None:
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
    result = train(cfg, "maze", "hiql", {"episode_steps": EPISODE_STEPS}, TINY)
    assert result["steps"] == 6 and 0.0 <= result["success_rate"] <= 1.0
    assert "high_loss" in (tmp_path / "metrics.csv").read_text().splitlines()[0]
    loaded, _ = load_checkpoint(tmp_path / "checkpoint")
    assert loaded.config == TINY


def test_hydra_config_rejects_typos_by_name() -> None:
    from hydra import compose, initialize_config_dir

    import policies.train_app  # noqa: F401  (registers the schemas)

    config_dir = str(Path(__file__).resolve().parents[2] / "configs")
    with initialize_config_dir(version_base=None, config_dir=config_dir):
        cfg = compose(
            "train", overrides=["task=maze", "policy=hiql", "dataset=x", "policy.high_level_every=5"]
        )
        assert HIQLConfig(**cfg.policy).high_level_every == 5
        with pytest.raises(Exception, match="subgoal_step"):
            compose("train", overrides=["task=maze", "policy=hiql", "dataset=x", "policy.subgoal_step=5"])
    with pytest.raises(ValueError, match="high_level_every"):
        HIQLConfig(high_level_every=0)


def test_actor_depth_is_its_own_and_old_checkpoints_keep_theirs(
    nav: dict[str, np.ndarray], tmp_path: Path
) -> None:
    """The exported policies have ``actor_layers`` hidden layers, the value ``layers``; a
    checkpoint written before ``actor_layers`` existed loads with the depth it was trained at."""
    import json

    policy = make(nav, HIQLConfig(hidden=16, layers=3, actor_layers=1, rep_dim=4))
    linear = [m for m in policy.low_actor if isinstance(m, torch.nn.Linear)]
    assert len(linear) == 2 and len([m for m in policy.high_actor if isinstance(m, torch.nn.Linear)]) == 2
    old = make(nav, HIQLConfig(hidden=16, layers=2, actor_layers=2, rep_dim=4))
    ckpt = save_checkpoint(tmp_path / "old", old, {}, 0, {})
    meta = json.loads((ckpt / "checkpoint.json").read_text())
    del meta["policy_config"]["actor_layers"]  # as written before the field existed
    (ckpt / "checkpoint.json").write_text(json.dumps(meta))
    loaded, _ = load_checkpoint(ckpt)
    assert loaded.config.actor_layers == 2
    with pytest.raises(ValueError, match="actor_layers"):
        HIQLConfig(actor_layers=0)
