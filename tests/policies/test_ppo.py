"""PPO from rsl_rl: the adapter's VecEnv contract (shapes, dtypes, dones and time-outs on
truncation, same-step auto-reset, numpy and torch envs alike), the mirror of rsl_rl's actor,
the training state beside the checkpoint, and a small CPU run through the console scripts:
spine-train -> spine-export -> spine-run -> spine-replay, with the ONNX graph checked against
rsl_rl's own actor module rebuilt from the saved state."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

pytest.importorskip("rsl_rl", reason="PPO needs the scale extra (rsl-rl-lib)")

import sim
from policies.family import TrainContext
from policies.ppo import STATE_FILE, PPOConfig, PPOPolicy, runner_config
from policies.ppo_rsl import SpineVecEnv, step_targets
from policies.registry import make_policy
from sim.vector import VectorEnv

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BIN = Path(sys.executable).parent
SHORT = {"episode_steps": 5}  # reach episodes of 5 control steps
TINY = dict(hidden=32, layers=2, num_envs=4, env_threads=1, steps_per_env=6, num_mini_batches=2)


class TorchVectorEnv:
    """``VectorEnv`` returning torch tensors and taking torch targets (a GPU backend's API)."""

    def __init__(self, env: VectorEnv) -> None:
        self.env, self.num_envs, self.task_spec = env, env.num_envs, env.task_spec
        self.commands: list[Any] = []

    def reset(self, seed: int | None = None) -> dict[str, torch.Tensor]:
        return {k: torch.as_tensor(v) for k, v in self.env.reset(seed).items()}

    def step(self, targets: torch.Tensor) -> tuple:
        self.commands.append(targets)
        obs, reward, terminated, truncated, info = self.env.step(targets.numpy().astype(np.float64))
        t = torch.as_tensor
        info = {k: t(info[k]) for k in ("is_success", "distance")}
        return {k: t(v) for k, v in obs.items()}, t(reward), t(terminated), t(truncated), info

    def close(self) -> None:
        self.env.close()


def tiny_policy(seed: int = 0, **overrides: object) -> PPOPolicy:
    torch.manual_seed(seed)
    spec = sim.make("reach", **SHORT).task_spec
    policy = make_policy("ppo", spec, PPOConfig(**{**TINY, **overrides}))
    policy.setup_training(TrainContext("reach", dict(SHORT), None, 0, 3, seed))
    return policy


def test_adapter_keeps_rsl_rl_vec_env_contract_over_truncation_and_auto_reset() -> None:
    from rsl_rl.env import VecEnv

    env = SpineVecEnv(VectorEnv("reach", 3, **SHORT), seed=7)
    spec = env.spec
    try:
        assert isinstance(env, VecEnv) and env.num_envs == 3 and env.num_actions == spec.n_joints == 7
        obs = env.get_observations()
        assert obs["observation"].shape == (3, spec.obs_size) and obs["goal"].shape == (3, spec.goal.size)
        assert obs["observation"].dtype == obs["goal"].dtype == torch.float32
        goals, rewards = obs["goal"].clone(), []
        for t in range(1, 6):
            obs, reward, dones, extras = env.step(torch.zeros(3, 7))
            assert reward.shape == dones.shape == extras["time_outs"].shape == (3,)
            assert reward.dtype == torch.float32 and dones.dtype == torch.long
            assert extras["time_outs"].dtype == torch.bool
            rewards.append(reward)
            if t < 5:  # mid-episode: nothing done, the goal held, the length counted
                assert not dones.any() and not extras["time_outs"].any() and "log" not in extras
                assert torch.equal(obs["goal"], goals) and torch.equal(
                    env.episode_length_buf, torch.full((3,), t)
                )
        assert dones.all() and extras["time_outs"].all()  # truncation: done and a time-out
        assert not torch.equal(obs["goal"], goals)  # same-step auto-reset: new episodes' goals
        assert torch.equal(env.episode_length_buf, torch.zeros(3, dtype=torch.long))
        returns = torch.stack(rewards).sum(0)
        assert torch.allclose(extras["log"]["/episode/return"], returns)
        assert torch.all(returns < 0)  # reach's reward is -distance
        assert env.episode_stats()["train_return"] == pytest.approx(float(returns.mean()), abs=1e-5)
    finally:
        env.close()


def test_actions_are_bounded_steps_around_the_measured_joints() -> None:
    spec = sim.make("reach").task_spec
    max_delta = torch.tensor(spec.action.max_delta)
    obs = torch.randn(64, spec.obs_size)
    targets = step_targets(obs, 1e3 * torch.randn(64, 7), 0, max_delta)
    q = obs[:, :7]  # reach's joint positions come first
    assert torch.all((targets - q).abs() <= max_delta + 1e-6)
    assert torch.equal(step_targets(obs, torch.zeros(64, 7), 0, max_delta), q)


def test_numpy_and_torch_batched_envs_give_the_same_transitions() -> None:
    numpy_env = SpineVecEnv(VectorEnv("reach", 2, **SHORT), seed=3)
    torch_env = SpineVecEnv(TorchVectorEnv(VectorEnv("reach", 2, **SHORT)), seed=3)
    gen = torch.Generator().manual_seed(0)
    try:
        for _ in range(7):  # across an auto-reset
            u = torch.randn(2, 7, generator=gen)
            a, b = numpy_env.step(u), torch_env.step(u)
            for key in ("observation", "goal"):
                assert torch.equal(a[0][key], b[0][key])
            assert torch.equal(a[1], b[1]) and torch.equal(a[2], b[2])
        assert all(isinstance(c, torch.Tensor) for c in torch_env.env.commands)  # targets stay tensors
    finally:
        numpy_env.close()
        torch_env.close()


def test_action_penalty_shapes_the_reward_not_the_logged_return() -> None:
    plain = SpineVecEnv(VectorEnv("reach", 2, **SHORT), seed=1)
    shaped = SpineVecEnv(VectorEnv("reach", 2, **SHORT), seed=1, action_l2=0.5)
    a = torch.tensor([[3.0] * 7, [0.5] * 7])  # the first row is clamped to 1
    try:
        for _ in range(5):  # one episode
            _, r_plain, _, logged = plain.step(a)
            _, r_shaped, _, extras = shaped.step(a)
            assert torch.allclose(r_plain - r_shaped, torch.tensor([0.5, 0.125]))
        assert torch.equal(extras["log"]["/episode/return"], logged["log"]["/episode/return"])  # the env's
    finally:
        plain.close()
        shaped.close()


def test_mirror_is_rsl_rl_actor_through_the_action_map() -> None:
    policy = tiny_policy()
    try:
        policy.update(1)
        actor, env = policy._runner.alg.get_policy(), policy._env
        assert bool(policy.obs_norm.fitted) and int(actor.obs_normalizer.count) > 0
        obs = env.get_observations()
        with torch.no_grad():
            rsl = step_targets(obs["observation"], actor(obs), env.q_start, env.max_delta)
            mine = policy(obs["observation"], obs["goal"])
        assert torch.allclose(mine, rsl, atol=1e-6)
    finally:
        policy.close()


@pytest.mark.slow
def test_trains_on_the_warp_backend() -> None:
    """One iteration over MuJoCo Warp worlds (torch tensors; Warp's CPU device here)."""
    pytest.importorskip("mujoco_warp", reason="backend=warp needs mujoco-warp")
    policy = tiny_policy(backend="warp")
    try:
        metrics = policy.update(1)
        assert metrics["env_steps"] == 4 * 6 and np.isfinite(metrics["value_loss"])
        env, actor = policy._env, policy._runner.alg.get_policy()
        assert env._torch_env and bool(policy.obs_norm.fitted)
        obs = env.get_observations()
        with torch.no_grad():
            rsl = step_targets(obs["observation"], actor(obs), env.q_start, env.max_delta)
            assert torch.allclose(policy(obs["observation"], obs["goal"]), rsl, atol=1e-6)
    finally:
        policy.close()


def test_training_state_round_trip_restores_rsl_rl(tmp_path: Path) -> None:
    first = tiny_policy(seed=0)
    second = tiny_policy(seed=1)
    try:
        first.update(1)
        first.save_state(tmp_path)
        second.load_state(tmp_path)
        a, b = first._runner.alg, second._runner.alg
        for mine, theirs in ((a.get_policy(), b.get_policy()), (a.critic, b.critic)):
            sa, sb = mine.state_dict(), theirs.state_dict()
            assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
        assert b.learning_rate == a.learning_rate == b.optimizer.param_groups[0]["lr"]
        assert all(
            torch.equal(x, y)
            for x, y in zip(first.state_dict().values(), second.state_dict().values(), strict=True)
        )
    finally:
        first.close()
        second.close()


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="activation"):
        PPOConfig(activation="swish")
    with pytest.raises(ValueError, match="num_mini_batches"):
        PPOConfig(num_envs=3, steps_per_env=5, num_mini_batches=4)
    assert runner_config(PPOConfig())["actor"]["obs_normalization"] is True


def test_without_rsl_rl_the_family_loads_and_training_names_the_extra() -> None:
    code = """
import sys
sys.modules["rsl_rl"] = None  # as if rsl-rl-lib were not installed
import sim
from policies.family import TrainContext
from policies.registry import make_policy, policy_names
assert "ppo" in policy_names()
policy = make_policy("ppo", sim.make("reach").task_spec)  # loading and exporting need no rsl_rl
try:
    policy.setup_training(TrainContext("reach", {}, None, 0, 1, 0))
except ImportError as e:
    print(e)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "[scale]" in out.stdout and "rsl_rl" in out.stdout


def sh(*args: str) -> subprocess.CompletedProcess:
    out = subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"{args[0]} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}"
    return out


def rsl_rl_actor(checkpoint: Path, spec: Any, config: PPOConfig) -> torch.nn.Module:
    """rsl_rl's own ``MLPModel`` actor, rebuilt from the saved training state."""
    from rsl_rl.models import MLPModel
    from safetensors.torch import load_file
    from tensordict import TensorDict

    cfg = runner_config(config)["actor"]
    kwargs = {k: v for k, v in cfg.items() if k != "class_name"}
    obs = TensorDict(
        {"observation": torch.zeros(1, spec.obs_size), "goal": torch.zeros(1, spec.goal.size)}, [1]
    )
    actor = MLPModel(obs, {"actor": ["observation", "goal"]}, "actor", spec.n_joints, **kwargs)
    saved = load_file(str(checkpoint / STATE_FILE))
    actor.load_state_dict({k[len("actor/") :]: v for k, v in saved.items() if k.startswith("actor/")})
    return actor.eval()


@pytest.mark.slow
def test_two_processes_train_one_policy(tmp_path: Path) -> None:
    """Under torchrun rsl_rl's PPO syncs over Spine's (gloo) process group: each rank's envs,
    one set of weights."""
    sh(
        "torchrun", "--standalone", "--nproc_per_node=2", "-m", "policies.train_app", "task=reach",
        "policy=ppo", "dataset=", f"out={tmp_path}", "steps=2", "log_every=1", "eval_every=2",
        "eval_episodes=1", "policy.num_envs=4", "policy.steps_per_env=6", "policy.num_mini_batches=2",
        "policy.hidden=32", "policy.env_threads=1",
    )  # fmt: skip
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["ranks"] == 2 and summary["max_parameter_difference_between_ranks"] == 0.0
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    steps = [float(r.split(",")[rows[0].split(",").index("env_steps")]) for r in rows[1:3]]
    assert steps == [2 * 4 * 6, 2 * 2 * 4 * 6]  # both ranks' samples


@pytest.mark.slow
def test_small_cpu_run_exports_runs_and_replays(tmp_path: Path) -> None:
    import onnxruntime as ort

    d = tmp_path
    sh(
        "spine-train", "task=reach", "policy=ppo", "dataset=", f"out={d}/train", "steps=5", "log_every=1",
        "eval_every=5", "eval_episodes=2", "policy.num_envs=16", "policy.steps_per_env=24",
        "policy.hidden=64", "policy.layers=2",
    )  # fmt: skip
    ckpt = d / "train/checkpoint"
    assert sorted(p.suffix for p in ckpt.iterdir()) == [".json"] * 3 + [".safetensors"] * 3  # no pickles
    assert not list(d.rglob("*.pt"))
    header = (d / "train/metrics.csv").read_text().splitlines()[0]
    assert {"surrogate_loss", "value_loss", "train_return", "samples_per_s"} <= set(header.split(","))
    assert (d / "train/learning_curves.png").stat().st_size > 5_000

    sh("spine-export", str(ckpt), "--out", f"{d}/bundle", "--samples", "64")
    export = json.loads((d / "bundle/report.json").read_text())
    assert export["family"] == "ppo" and export["parity"]["max_abs_error"] <= 1e-4

    meta = json.loads((ckpt / "checkpoint.json").read_text())
    spec = sim.make("reach").task_spec
    actor = rsl_rl_actor(ckpt, spec, PPOConfig(**meta["policy_config"]))
    session = ort.InferenceSession(str(d / "bundle/policy.onnx"), providers=["CPUExecutionProvider"])
    q_start = 0  # reach: joint positions first
    max_delta = torch.tensor(spec.action.max_delta)
    with VectorEnv("reach", 8) as env:  # observations and goals from the task itself
        o = env.reset(seed=5)
        for _ in range(3):
            o = env.step(o["observation"][:, :7].astype(np.float64) + 0.03)[0]
    worst = 0.0
    for obs, goal in zip(o["observation"], o["desired_goal"], strict=True):
        onnx = session.run(None, {"observation": obs[None], "goal": goal[None]})[0]
        from tensordict import TensorDict

        td = TensorDict({"observation": torch.as_tensor(obs[None]), "goal": torch.as_tensor(goal[None])}, [1])
        with torch.no_grad():
            ref = step_targets(td["observation"], actor(td), q_start, max_delta).numpy()
        worst = max(worst, float(np.abs(onnx - ref).max()))
    assert worst <= 1e-5, f"ONNX vs rsl_rl's actor: {worst}"

    sh("spine-run", f"{d}/bundle", "--episodes", "2", "--log", f"{d}/run")
    run = json.loads((d / "run/summary.json").read_text())
    assert run["episodes"] == 2
    sh("spine-replay", f"{d}/run/log", "--bundle", f"{d}/bundle", "--out", f"{d}/replay")
    replay = json.loads((d / "replay/report.json").read_text())
    assert replay["command_error_rad"]["max"] < 1e-9

    # the ROS 2 nodes over Cyclone DDS run the same bundle unchanged (bundle by parameter)
    from tests.ros_nodes.domains import fresh_domain

    root = Path(__file__).resolve().parents[2]
    params = (root / "configs/ros/stack.yaml").read_text()
    params = params.replace("bundle: runs/demo/bundle", f"bundle: {d}/bundle")
    params = params.replace("robot: configs/", f"robot: {root}/configs/")
    (d / "stack.yaml").write_text(params.replace("episodes: 10", "episodes: 1"))
    domain = str(fresh_domain())
    sh("spine-stack", "--params-file", f"{d}/stack.yaml", "--out", f"{d}/stack", "--domain-id", domain)
    stack = json.loads((d / "stack/sim_summary.json").read_text())
    assert stack["episodes"] == 1 and stack["bad_commands"] == 0
