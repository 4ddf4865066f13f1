"""Domain randomization: seeded sampling, ranges, restore/resample, latency, nominal identity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import sim
from sim.observation import build_observation
from sim.randomization import RandomizationConfig, Randomized, register_randomization_schema

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
WIDE = RandomizationConfig(
    mass_scale=(0.5, 1.5),
    friction_scale=(0.6, 1.4),
    kp_scale=(0.7, 1.3),
    damping_scale=(0.5, 2.0),
    action_latency=(0, 3),
)


def _rollout(env, seed: int, actions: list[np.ndarray]) -> list[tuple]:
    obs, _ = env.reset(seed=seed)
    out = [(obs, 0.0, {})]
    for action in actions:
        obs, reward, _, _, info = env.step(action)
        out.append((obs, reward, info))
    return out


def _assert_rollouts_equal(a: list[tuple], b: list[tuple]) -> None:
    for (obs_a, rew_a, info_a), (obs_b, rew_b, info_b) in zip(a, b, strict=True):
        for key in obs_a:
            np.testing.assert_array_equal(obs_a[key], obs_b[key])
        assert rew_a == rew_b and info_a == info_b


def _actions(env, n: int) -> list[np.ndarray]:
    env.action_space.seed(0)
    return [env.action_space.sample() for _ in range(n)]


def test_sampling_is_seeded() -> None:
    def sample(wrapper_seed: int, reset_seed: int) -> tuple:
        env = Randomized(sim.make("reach"), WIDE, seed=wrapper_seed)
        env.reset(seed=reset_seed)
        return env.parameters(), env.latency, {k: v.copy() for k, v in env.scales.items()}

    first, again, other = sample(1, 5), sample(1, 5), sample(2, 5)
    assert first[:2] == again[:2]
    assert first[0] != other[0]
    assert first[0] != sample(1, 6)[0]  # the reset seed matters too


def test_parameters_in_range_restored_and_resampled() -> None:
    nominal = sim.make("reach").physics.model
    env = Randomized(sim.make("reach"), WIDE, seed=0)
    model = env.physics.model
    previous = None
    for episode in range(4):
        env.reset(seed=None if episode else 3)
        s = env.scales
        for key, (lo, hi) in (
            ("body", WIDE.mass_scale),
            ("geom", WIDE.friction_scale),
            ("actuator", WIDE.kp_scale),
            ("dof", WIDE.damping_scale),
        ):
            values = s[key][1:] if key == "body" else s[key]
            assert np.all((lo <= values) & (values <= hi)), key
        assert s["body"][0] == 1.0
        assert env.latency in range(WIDE.action_latency[0], WIDE.action_latency[1] + 1)  # control steps
        # Always nominal * factor: never compounded over episodes.
        np.testing.assert_array_equal(model.body_mass, nominal.body_mass * s["body"])
        np.testing.assert_array_equal(model.body_inertia, nominal.body_inertia * s["body"][:, None])
        np.testing.assert_array_equal(model.geom_friction, nominal.geom_friction * s["geom"][:, None])
        np.testing.assert_array_equal(model.dof_damping, nominal.dof_damping * s["dof"])
        kp = nominal.actuator_gainprm[:, 0] * s["actuator"]
        np.testing.assert_array_equal(model.actuator_gainprm[:, 0], kp)
        np.testing.assert_array_equal(model.actuator_biasprm[:, 1], -kp)  # servos stay centred
        np.testing.assert_array_equal(model.actuator_biasprm[:, 2], nominal.actuator_biasprm[:, 2])  # kv
        hand = model.body("hand").id
        assert env.parameters()["body_mass"]["hand"] == nominal.body_mass[hand] * s["body"][hand]
        if previous is not None:
            assert not np.array_equal(previous, s["body"])  # resampled at every reset
        previous = s["body"].copy()


def test_frictionloss_scaled_from_nominal_each_episode() -> None:
    """Dry joint friction (the WidowX has some; arm7 none) is nominal * factor, per dof."""
    nominal = sim.make("widowx_reach").physics.model.dof_frictionloss.copy()
    assert np.all(nominal > 0)
    config = RandomizationConfig(frictionloss_scale=(0.05, 0.1))
    env = Randomized(sim.make("widowx_reach"), config, seed=0)
    for seed in (1, 2):
        env.reset(seed=seed)
        loss = env.scales["dof_frictionloss"]
        assert np.all((0.05 <= loss) & (loss <= 0.1))
        np.testing.assert_array_equal(env.physics.model.dof_frictionloss, nominal * loss)
        assert env.parameters()["dof_frictionloss"] == dict(
            zip(env.parameters()["dof_damping"], (nominal * loss).tolist(), strict=True)
        )


@pytest.mark.parametrize("k", [1, 3])
def test_latency_delays_actions_by_exactly_k_steps(k: int) -> None:
    env = Randomized(sim.make("reach"), RandomizationConfig(action_latency=(k, k)), seed=0)
    actions = _actions(env, 12)
    delayed = _rollout(env, 7, actions)
    assert env.latency == k
    bare = sim.make("reach")
    bare.reset(seed=7)
    hold = bare.state()["joint_pos"]  # the hold action: targets at the reset pose
    expected = _rollout(bare, 7, [hold] * k + actions[:-k])
    _assert_rollouts_equal(delayed, expected)


def test_zero_width_ranges_reproduce_nominal_env_exactly() -> None:
    bare = sim.make("reach")
    actions = _actions(bare, 30)
    expected = _rollout(bare, 4, actions)
    for cfg in (RandomizationConfig(), RandomizationConfig(obs_noise_std_fields={"joint_vel": 0.0})):
        env = Randomized(sim.make("reach"), cfg, seed=9)
        _assert_rollouts_equal(_rollout(env, 4, actions), expected)
        _rollout(env, 5, actions)  # a second episode, then the first again
        _assert_rollouts_equal(_rollout(env, 4, actions), expected)
        for name in ("body_mass", "body_inertia", "geom_friction", "dof_damping", "body_subtreemass"):
            np.testing.assert_array_equal(getattr(env.physics.model, name), getattr(bare.physics.model, name))


@pytest.mark.parametrize("task", sim.names())
def test_every_task_nominal_exact_and_randomized_finite(task: str) -> None:
    bare = sim.make(task, episode_steps=8)
    actions = _actions(bare, 8)
    expected = _rollout(bare, 1, actions)
    _assert_rollouts_equal(
        _rollout(Randomized(sim.make(task, episode_steps=8), RandomizationConfig()), 1, actions), expected
    )
    wide = Randomized(sim.make(task, episode_steps=8), WIDE, seed=0)
    for obs, reward, _ in _rollout(wide, 1, actions):
        assert all(np.isfinite(v).all() for v in obs.values()) and np.isfinite(reward)


def test_randomized_dynamics_differ_from_nominal() -> None:
    bare = sim.make("reach")
    actions = _actions(bare, 10)
    expected = _rollout(bare, 4, actions)
    soft = Randomized(sim.make("reach"), RandomizationConfig(kp_scale=(0.5, 0.5)), seed=0)
    got = _rollout(soft, 4, actions)
    np.testing.assert_array_equal(got[0][0]["observation"], expected[0][0]["observation"])
    assert not np.allclose(got[-1][0]["observation"], expected[-1][0]["observation"], atol=1e-3)


def test_observation_noise_is_in_obs_and_state() -> None:
    cfg = RandomizationConfig(obs_noise_std=0.05, obs_noise_std_fields={"joint_pos": 0.0})
    env = Randomized(sim.make("reach"), cfg, seed=0)
    obs, _ = env.reset(seed=1)
    spec = env.task_spec
    truth = env.unwrapped.state()
    noisy = env.state()
    np.testing.assert_array_equal(obs["observation"], build_observation(noisy, spec.observation))
    np.testing.assert_array_equal(noisy["joint_pos"], truth["joint_pos"])  # per-field override: 0
    noise = noisy["joint_vel"] - truth["joint_vel"]
    assert 0.0 < np.abs(noise).max() < 0.5
    np.testing.assert_array_equal(noisy["goal"], truth["goal"])  # the goal is not a sensor
    np.testing.assert_array_equal(obs["achieved_goal"], truth["ee_pos"].astype(np.float32))
    assert env.observation_space.contains(obs)
    obs2, *_ = env.step(truth["joint_pos"])
    assert not np.array_equal(env.state()["joint_vel"] - env.unwrapped.state()["joint_vel"], noise)
    reward = env.compute_reward(obs2["achieved_goal"], obs2["desired_goal"], {})
    assert np.isfinite(reward)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="mass_scale"):
        RandomizationConfig(mass_scale=(1.2, 0.8))
    with pytest.raises(ValueError, match="action_latency"):
        RandomizationConfig(action_latency=(0, 1.5))
    with pytest.raises(ValueError, match="mas_scale"):
        RandomizationConfig.from_dict({"mas_scale": [1, 2]})
    with pytest.raises(ValueError, match="joint_vell"):
        Randomized(sim.make("reach"), RandomizationConfig(obs_noise_std_fields={"joint_vell": 0.1}))
    cfg = RandomizationConfig.from_dict({"mass_scale": [0.9, 1.1], "action_latency": [0, 2]})
    assert cfg.mass_scale == (0.9, 1.1) and cfg.action_latency == (0, 2)
    assert RandomizationConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("name", ["none", "default", "widowx200"])
def test_hydra_configs_compose(name: str) -> None:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    register_randomization_schema()
    with initialize_config_dir(config_dir=str(CONFIGS), version_base=None):
        node = compose(config_name=f"randomization/{name}").randomization
        cfg = RandomizationConfig.from_dict(OmegaConf.to_container(node, resolve=True))
        with pytest.raises(Exception, match="mass_scal"):
            compose(config_name=f"randomization/{name}", overrides=["randomization.mass_scal=[1,2]"])
    if name == "none":
        assert cfg == RandomizationConfig()
    elif name == "default":
        assert cfg.mass_scale[0] < 1.0 < cfg.mass_scale[1]
    else:  # fitted to the real WidowX log: gain below nominal, friction far below
        assert cfg.kp_scale[1] < 1.0 and cfg.frictionloss_scale[1] < 0.2
    Randomized(sim.make("widowx_reach" if name == "widowx200" else "reach"), cfg).reset(seed=0)
