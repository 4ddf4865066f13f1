"""SAC on dm_control (task=dmc): normalized commands (``max_delta * tanh``, no joint position
to step from), the reward dm_control reports for a task without a goal, the export twin, and
the resume of the recorded returns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import sim
from policies.family import TrainContext
from policies.registry import make_policy
from policies.replay_buffer import RewardEpisodeBuffer
from policies.sac_her import NormalizedMLPTwin, SACHERConfig, SACHERPolicy

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = dict(hidden=32, layers=1, num_envs=2, env_threads=1, warmup_steps=40, buffer_episodes=10)


def tiny(domain: str = "reacher", task: str = "easy", **overrides: object) -> SACHERPolicy:
    torch.manual_seed(0)
    kwargs = {"domain": domain, "task": task, "episode_steps": 10}
    policy = make_policy(
        "sac_her", sim.make("dmc", **kwargs).task_spec, SACHERConfig(**{**TINY, **overrides})
    )
    policy.setup_training(TrainContext("dmc", kwargs, None, 16, 5, 0))
    return policy


def test_commands_are_max_delta_times_tanh_and_the_graph_outputs_action() -> None:
    policy = tiny()
    try:
        spec = policy.spec
        assert policy.actor.q_start is None and spec.action.kind == "normalized"
        for step in range(1, 4):
            policy.update(step)
        obs = torch.randn(64, spec.obs_size) * 10.0
        goal = torch.randn(64, spec.goal.size)
        with torch.no_grad():
            cmd = policy(obs, goal)
            mu, _ = policy.actor.mean_std(policy.actor.features(obs, goal))
        bound = torch.tensor(spec.action.max_delta)
        torch.testing.assert_close(cmd, bound * torch.tanh(mu))
        assert bool((cmd.abs() <= bound).all())
        (inputs, outputs) = policy.io_spec()
        assert [t.name for t in inputs] == ["observation", "goal"] and outputs[0].name == "action"
        twin = policy.graphs()[0].export().module
        assert isinstance(twin, NormalizedMLPTwin)
        with torch.no_grad():
            torch.testing.assert_close(twin(obs, goal), cmd, atol=1e-5, rtol=1e-5)
    finally:
        policy.close()


def test_a_task_without_a_goal_learns_from_the_reward_dm_control_reports(tmp_path: Path) -> None:
    policy = tiny("cartpole", "swingup")
    try:
        assert policy.spec.goal.size == 0
        metrics = {}
        for step in range(1, 6):
            metrics = policy.update(step)
        buf = policy._buffer
        assert isinstance(buf, RewardEpisodeBuffer)
        stored = buf.data["reward"][buf.lengths > 0]
        assert stored.max() > 0.0  # cartpole's swingup reward is positive almost everywhere
        batch = buf.sample(32, np.random.default_rng(0), lambda a, g: 1 / 0, 0.8)  # reward_fn unused
        np.testing.assert_array_equal(batch["reward"], buf.data["reward"][batch["episode"], batch["step"], 0])
        assert metrics["train_return"] > 0.0
        policy.save_state(tmp_path)
        returns = list(policy._returns)
        policy.load_state(tmp_path)
        assert policy._returns == returns
    finally:
        policy.close()


def test_a_sparse_reward_needs_a_goal() -> None:
    spec = sim.make("dmc", domain="cartpole", task="swingup").task_spec
    with pytest.raises(ValueError, match="needs a goal"):
        make_policy("sac_her", spec, SACHERConfig(reward="sparse"))


def test_joint_position_families_refuse_dmc_naming_sac_her() -> None:
    import sim
    from policies.registry import PolicyTaskError, make_policy

    spec = sim.make("dmc").task_spec
    for family in ("gcbc", "gcivl", "hiql", "diffusion"):
        with pytest.raises(PolicyTaskError, match="takes 'normalized' actions: use policy=sac_her"):
            make_policy(family, spec)
