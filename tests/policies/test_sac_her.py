"""SAC + HER: relabelling, the episode replay over auto-resets, temperature tuning, bounded
actions, the trainer end to end, and deterministic actions through a checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import sim
from policies.checkpoint import load_checkpoint, save_checkpoint
from policies.family import TrainContext
from policies.normalizer import NotFitted
from policies.registry import make_policy
from policies.replay_buffer import EpisodeBuffer
from policies.sac_her import SACHERConfig, SACHERPolicy
from sim.vector import VectorEnv

TINY = dict(hidden=32, layers=1, num_envs=2, env_threads=2, warmup_steps=20, buffer_episodes=50)
SHORT = {"episode_steps": 10}  # reach episodes of 10 control steps


def tiny_policy(seed: int = 0, **overrides: object) -> SACHERPolicy:
    torch.manual_seed(seed)
    spec = sim.make("reach", **SHORT).task_spec
    policy = make_policy("sac_her", spec, SACHERConfig(**{**TINY, **overrides}))
    policy.setup_training(TrainContext("reach", dict(SHORT), None, 16, 10, seed))
    return policy


def filled_buffer(lengths: list[int], goal_size: int = 2) -> EpisodeBuffer:
    """Episodes whose achieved goal after step t of episode e is (e, t): traceable goals."""
    buf = EpisodeBuffer(8, max(lengths), num_envs=1, obs_size=1, goal_size=goal_size, action_size=1)
    for e, length in enumerate(lengths):
        for t in range(length):
            obs = {"observation": np.array([[t]], np.float32), "desired_goal": np.full((1, goal_size), -1.0)}
            nxt = {
                "observation": np.array([[t + 1]], np.float32),
                "achieved_goal": np.array([[e, t]], np.float32),
            }
            buf.add(obs, np.zeros((1, 1)), nxt, np.array([False]), np.array([t == length - 1]))
    return buf


def test_her_goals_come_from_the_same_episodes_future_with_recomputed_rewards() -> None:
    buf = filled_buffer([5, 3, 7])
    assert buf.episodes == 3 and buf.transitions == 15
    reward = lambda ag, g: -(np.linalg.norm(ag - g, axis=-1) > 0.5).astype(np.float64)  # noqa: E731
    b = buf.sample(2000, np.random.default_rng(0), reward, future_p=1.0)
    ep, t = b["goal"][:, 0].astype(int), b["goal"][:, 1].astype(int)
    assert np.array_equal(ep, b["episode"])  # same episode
    assert np.all(t >= b["step"]) and np.all(t < buf.lengths[b["episode"]])  # at or after the step
    assert np.array_equal(b["observation"][:, 0], b["step"])  # the transition itself is intact
    assert np.array_equal(b["reward"], np.where(t == b["step"], 0.0, -1.0))  # reached only at t' = t
    assert len({(e, s) for e, s in zip(b["episode"], b["step"], strict=True)}) == 15  # all sampled
    last = b["step"] == buf.lengths[b["episode"]] - 1
    assert np.all(b["reward"][last] == 0.0)  # the only future of the last step is itself
    plain = buf.sample(200, np.random.default_rng(1), reward, future_p=0.0)
    assert np.all(plain["goal"] == -1.0) and np.all(plain["reward"] == -1.0) and not plain["relabelled"].any()


def test_buffer_keeps_whole_episodes_across_vector_auto_resets() -> None:
    with VectorEnv("reach", 2, threads=2, **{"episode_steps": 4}) as env:
        obs = env.reset(seed=3)
        buf = EpisodeBuffer(10, 4, 2, env.task_spec.obs_size, 3, 7)
        first_obs, finals, resets = obs["observation"].copy(), [], []
        for _ in range(9):
            action = np.zeros((2, 7), np.float32)
            nxt, _, terminated, truncated, info = env.step(obs["observation"][:, :7] + 0.05)
            buf.add(obs, action, info["final_obs"], terminated, truncated)
            if truncated.any():
                finals.append(info["final_obs"]["observation"].copy())
                resets.append(nxt["observation"].copy())
            obs = nxt
    assert buf.episodes == 4 and list(buf.lengths[:4]) == [4, 4, 4, 4]
    assert np.array_equal(buf.cursor, [1, 1])  # the third episodes have one staged step
    d = buf.data
    for slot in range(4):  # within an episode, each step starts where the last one ended
        assert np.array_equal(d["observation"][slot, 1:4], d["next_observation"][slot, 0:3])
    # slots fill in env order per step: env 0, env 1 (first episodes), then the second ones
    assert np.array_equal(d["observation"][:2, 0], first_obs)
    assert np.array_equal(d["next_observation"][0, 3], finals[0][0])  # the final obs, not the reset one
    assert not np.array_equal(finals[0][0], resets[0][0])
    assert np.array_equal(d["observation"][2, 0], resets[0][0])  # a new episode starts at the reset


def test_temperature_moves_toward_the_target_entropy() -> None:
    for target, direction in ((5.0, 1.0), (-5.0, -1.0)):  # per dim: far above / below any tanh-Gaussian's
        policy = tiny_policy(target_entropy=target)
        policy.update(1)
        before = float(policy.log_alpha.detach())
        for step in range(2, 12):
            policy.update(step)
        assert direction * (float(policy.log_alpha.detach()) - before) > 0


def test_actions_stay_within_max_delta_of_the_measured_joints() -> None:
    policy = tiny_policy()
    with torch.no_grad():
        for p in policy.actor.net.parameters():
            p.mul_(50.0)  # saturate the tanh
    rng = np.random.default_rng(0)
    max_delta = np.asarray(policy.spec.action.max_delta)
    for _ in range(20):
        obs = {
            "observation": rng.normal(0, 3, policy.spec.obs_size).astype(np.float32),
            "desired_goal": rng.normal(0, 3, 3).astype(np.float32),
        }
        action = policy.act(obs)
        assert np.all(np.abs(action - obs["observation"][:7]) <= max_delta + 1e-6)
    policy.update(1)  # the exploration steps the envs took are bounded too
    steps = policy._buffer.data["action"][: policy._buffer.episodes]
    assert np.abs(steps).max() <= 1.0


def test_trainer_runs_updates_end_to_end(tmp_path: Path) -> None:
    from policies.trainer import TrainConfig, train

    cfg = TrainConfig(
        dataset="", out=str(tmp_path), steps=30, batch_size=16, log_every=10, eval_every=30,
        eval_episodes=2, eval_task={"success_threshold": 0.02}, torch_threads=1,
    )  # fmt: skip
    result = train(cfg, "reach", "sac_her", dict(SHORT), SACHERConfig(**TINY))
    assert 0.0 <= result["success_rate"] <= 1.0 and result["steps"] == 30
    header, *rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert "critic_loss" in header and "alpha" in header and len(rows) >= 3
    meta = json.loads((tmp_path / "checkpoint" / "checkpoint.json").read_text())
    assert meta["family"] == "sac_her" and meta["contract"]["task"]["success_threshold"] == 0.02


def test_resume_restores_the_replay_and_skips_the_second_warm_up(tmp_path: Path) -> None:
    """A run resumed from its checkpoint samples from the saved replay and keeps its counters;
    a corrupt replay file is refused naming the file."""
    from policies.sac_her import REPLAY_FILE
    from policies.trainer import TrainConfig, resume, train

    cfg = TrainConfig(
        dataset="", out=str(tmp_path), steps=30, batch_size=16, log_every=10, eval_every=30,
        eval_episodes=1, torch_threads=1,
    )  # fmt: skip
    train(cfg, "reach", "sac_her", dict(SHORT), SACHERConfig(**TINY))
    saved = json.loads((tmp_path / "checkpoint" / "replay.json").read_text())
    assert saved["env_steps"] >= TINY["warmup_steps"] and saved["transitions"] > 0

    fresh = tiny_policy(seed=5)
    assert fresh._buffer.transitions == 0 and fresh._env_steps == 0
    assert resume(fresh, tmp_path / "checkpoint") == 30
    assert fresh._buffer.transitions == saved["transitions"] and fresh._env_steps == saved["env_steps"]
    before = fresh._env_steps
    fresh.update(31)  # no warm-up again: only this update's own env steps
    assert fresh._env_steps - before == SACHERConfig().env_steps_per_update  # 2 vector steps of 2 envs
    fresh.close()

    (tmp_path / "checkpoint" / REPLAY_FILE).write_bytes(b"not safetensors")
    broken = tiny_policy()
    with pytest.raises(ValueError, match=f"{REPLAY_FILE}: not a readable replay file"):
        resume(broken, tmp_path / "checkpoint")
    broken.close()


def test_checkpoint_round_trip_gives_identical_deterministic_actions(tmp_path: Path) -> None:
    policy = tiny_policy()
    for step in range(1, 6):
        policy.update(step)
    policy.eval()
    assert bool(policy.obs_norm.fitted) and float(policy.obs_norm.count) >= 20  # running statistics
    save_checkpoint(tmp_path, policy, {}, 5, {})
    loaded, meta = load_checkpoint(tmp_path)
    assert meta["family"] == "sac_her"
    rng = np.random.default_rng(1)
    for _ in range(5):
        obs = {
            "observation": rng.normal(0, 1, policy.spec.obs_size).astype(np.float32),
            "desired_goal": rng.normal(0, 0.3, 3).astype(np.float32),
        }
        a = policy.act(obs)
        assert np.array_equal(a, policy.act(obs))  # the mean action, no sampling
        assert np.array_equal(a, loaded.act(obs))
    for key, value in policy.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key


def test_export_bundle_holds_the_running_normalizers(tmp_path: Path) -> None:
    from deploy.export.app import export_bundle

    policy = tiny_policy()
    policy.update(1)
    save_checkpoint(tmp_path / "ckpt", policy, {}, 1, {})
    report = export_bundle(tmp_path / "ckpt", tmp_path / "bundle", samples=16)
    assert report["family"] == "sac_her" and report["parity"]["max_abs_error"] <= 1e-4
    untrained = make_policy("sac_her", policy.spec, policy.config)
    save_checkpoint(tmp_path / "raw", untrained, {}, 0, {})
    with pytest.raises(NotFitted, match="obs_norm"):
        export_bundle(tmp_path / "raw", tmp_path / "raw_bundle", samples=4)


def test_same_seed_same_training() -> None:
    a, b = tiny_policy(seed=4), tiny_policy(seed=4)
    for step in range(1, 6):
        a.update(step), b.update(step)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key


def test_unknown_reward_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="reward"):
        SACHERConfig(reward="shaped")
