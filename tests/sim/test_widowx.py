"""WidowX 200: the model matches the published kinematics; sim replay of a log recorded from the
model reproduces it; system identification recovers known dynamics; logs become datasets."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import sim
from deploy.logs.mapped import read_mapped
from deploy.logs.mapping import load_mapping
from deploy.logs.resample import resample
from deploy.offline.log_dataset import log_to_dataset
from deploy.offline.sim_replay import ParamModel, SimParams, replay_windows, window_starts
from deploy.offline.sysid import SysIdConfig, identify
from sim.collect import load_dataset
from sim.randomization import RandomizationConfig, Randomized
from sim.robots.widowx200 import constants as c
from sim.robots.widowx200.physics import WidowXPhysics

ROOT = Path(__file__).parents[2]
GOLDEN = ROOT / "tests" / "artifacts" / "widowx_golden.bag"
MAPPING = ROOT / "configs" / "replay" / "widowx200.yaml"
TRUE = SimParams(
    **json.loads((ROOT / "tests" / "artifacts" / "widowx_golden.json").read_text())["true_params"]
)


def test_model_has_the_published_joints_limits_and_masses() -> None:
    p = WidowXPhysics()
    m = p.model
    assert [m.joint(j).name for j in range(m.njnt)] == list(c.JOINT_NAMES)
    np.testing.assert_allclose(p.pos_min, c.JOINT_POS_MIN, atol=1e-7)
    np.testing.assert_allclose(p.pos_max, c.JOINT_POS_MAX, atol=1e-7)
    np.testing.assert_allclose(p.pos_min[1:4], np.radians([-80, -108, -100]), atol=1e-7)
    np.testing.assert_allclose(m.dof_damping, 0.1)
    np.testing.assert_allclose(m.dof_frictionloss, 0.1)
    np.testing.assert_allclose(np.abs(m.actuator_forcerange[:, 1]), c.JOINT_EFFORT_MAX)
    masses = {m.body(b).name: m.body_mass[b] for b in range(1, m.nbody)}
    assert masses["upper_arm_link"] == pytest.approx(0.298) and masses["gripper_link"] == pytest.approx(0.073)


def test_forward_kinematics_follow_the_published_offsets() -> None:
    p = WidowXPhysics()
    np.testing.assert_allclose(p.ee_pos(), [0.05 + 0.2 + 0.065 + 0.043, 0, 0.072 + 0.03865 + 0.2], atol=1e-9)
    p.set_joint_state(np.array([math.pi / 2, 0, 0, 0, 0]), np.zeros(5))  # waist turns the arm to +y
    np.testing.assert_allclose(p.ee_pos(), [0, 0.358, 0.31065], atol=1e-9)
    p.set_joint_state(np.array([0, 0, math.pi / 2, 0, 0]), np.zeros(5))  # elbow +90 deg points down
    np.testing.assert_allclose(p.ee_pos(), [0.05, 0, 0.31065 - 0.308], atol=1e-9)


def test_position_servos_hold_a_pose_against_gravity() -> None:
    p = WidowXPhysics()
    q = np.array([0.5, -1.1, 0.6, 1.3, 0.2])
    p.set_joint_state(q, np.zeros(5))
    p.set_targets(q)
    p.step(1000)
    np.testing.assert_allclose(p.joint_pos(), q, atol=0.01)
    assert np.all(np.abs(p.joint_vel()) < 1e-3)


def _golden_ticks(rate: float = 50.0):
    spec = sim.make("widowx_reach").task_spec
    mapping = load_mapping(MAPPING)
    log = read_mapped(GOLDEN, mapping, spec.joint_names, spec.joint_pos_min, spec.joint_pos_max)
    return resample(log, rate, mapping.resample.max_gap_s)


def test_sim_replay_of_a_log_recorded_from_the_model_reproduces_it() -> None:
    ticks = _golden_ticks()
    physics = WidowXPhysics()
    starts, left_out = window_starts(ticks, 25, 25, limits=(physics.pos_min, physics.pos_max))
    assert len(starts) >= 8 and left_out == {"uncommanded_motion": 0, "beyond_joint_limits": 0}
    params = ParamModel(physics.model)
    params.apply(TRUE)
    err_true = replay_windows(physics, ticks, starts, 25)
    params.apply(SimParams())
    err_nominal = replay_windows(physics, ticks, starts, 25)
    rms_true = np.sqrt(np.mean(err_true**2, axis=(0, 1)))
    # the waist replays its logged (float32) commands: the same dynamics give the same motion
    assert rms_true[0] < 2e-3
    # the other joints were never commanded in the log: their servo targets are taken to be
    # where they stood at the window start, so their sag under gravity is a few mrad off
    assert np.all(rms_true[1:] < 0.01)
    assert np.sqrt(np.mean(err_nominal[..., 0] ** 2)) > 10 * rms_true[0]


def test_sysid_recovers_the_gain_and_shrinks_the_gap(tmp_path: Path) -> None:
    cfg = SysIdConfig(rate_hz=50.0, horizon_s=0.5, stride_s=0.5, max_windows=10, maxfev=30)
    report = identify(GOLDEN, load_mapping(MAPPING), tmp_path, cfg)
    held = report["held_out_rms_rad"]
    assert held["fitted"] < 0.2 * held["nominal"]
    assert report["fitted"]["kp_scale"] == pytest.approx(TRUE.kp_scale, rel=0.3)
    assert report["fitted"]["damping_scale"] > 1.0  # the true damping is 3x the MJCF's
    assert (tmp_path / "sim_gap.png").stat().st_size > 10_000
    text = (tmp_path / "randomization.yaml").read_text()
    from ruamel.yaml import YAML

    data = {k: v for k, v in YAML(typ="safe").load(text).items() if k != "defaults"}
    cfg_r = RandomizationConfig.from_dict(data)
    lo, hi = cfg_r.kp_scale
    assert lo < report["fitted"]["kp_scale"] < hi


def test_shipped_widowx_randomization_config_wraps_the_task() -> None:
    from ruamel.yaml import YAML

    data = YAML(typ="safe").load((ROOT / "configs" / "randomization" / "widowx200.yaml").read_text())
    cfg = RandomizationConfig.from_dict({k: v for k, v in data.items() if k != "defaults"})
    env = Randomized(sim.make("widowx_reach"), cfg, seed=0)
    env.reset(seed=0)
    gain = env.physics.model.actuator_gainprm[0, 0]
    assert cfg.kp_scale[0] * 20 <= gain <= cfg.kp_scale[1] * 20  # waist servo kp 20 in the MJCF
    obs, *_ = env.step(env.physics.joint_pos())
    assert np.all(np.isfinite(obs["observation"]))


def test_log_to_dataset_with_hindsight_goals(tmp_path: Path) -> None:
    path = log_to_dataset(GOLDEN, load_mapping(MAPPING), tmp_path)
    data = load_dataset(path)
    spec = sim.make("widowx_reach").task_spec
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["mode"] == "log" and meta["episodes"] == data["episode"].max() + 1 == 2
    assert data["observation"].shape[1] == spec.obs_size and data["action"].shape[1] == 5
    last = np.flatnonzero(data["done"])
    np.testing.assert_allclose(data["desired_goal"][last], data["next_achieved_goal"][last], atol=1e-6)
    assert np.all(data["reward"][last] == 0)  # the hindsight goal is reached at the episode's end
    assert meta["gaps_s"] and meta["stamps"]["/wx200/joint_states"]["duplicated"] == 1
    waist = data["action"][:, 0]
    assert np.ptp(waist) > 1.0  # the logged chirp commands, not the measured positions
    np.testing.assert_allclose(data["action"][:, 1:], data["observation"][:, 1:5], atol=1e-6)  # held
