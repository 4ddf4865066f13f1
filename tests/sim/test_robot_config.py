"""A robot is configuration: robot YAMLs (configs/robot/, or anywhere) -> MuJoCo model, task
spec and expert, for Spine's arms, two real Menagerie arms and a URDF; clear refusals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import sim
from sim.robot_config import RobotConfigError, known_robots, load_robot_config
from sim.robots.configured import configured_robot
from tests.robots import REPO, ROBOTS, URDF_ROBOT

URDF_YAML = Path(URDF_ROBOT).read_text()


def _write(tmp_path: Path, text: str, name: str = "arm.yaml") -> Path:
    (tmp_path / "arm4.urdf").write_text((Path(URDF_ROBOT).parent / "arm4.urdf").read_text())
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(("task", "robot"), [("reach", "arm7"), ("widowx_reach", "widowx200")])
def test_spines_own_arms_are_robot_configs_like_the_others(task: str, robot: str) -> None:
    builtin, configured = sim.make(task).task_spec, sim.make("reach", robot=robot).task_spec
    assert configured.robot == builtin.robot and configured.joint_names == builtin.joint_names
    assert configured.observation == builtin.observation and configured.goal == builtin.goal
    for field in ("joint_pos_min", "joint_pos_max", "joint_vel_max", "workspace_low", "workspace_high"):
        np.testing.assert_allclose(
            getattr(configured, field), getattr(builtin, field), atol=1e-4, err_msg=field
        )


def test_arm7_from_its_config_moves_like_the_builtin_one() -> None:
    """Same physics: the expert's rollout on reach and on reach robot=arm7 agrees."""
    a, b = sim.make("reach"), sim.make("reach", robot="arm7")
    ea, eb = sim.expert_class("reach")(a), sim.expert_class("reach")(b)
    a.reset(seed=3), b.reset(seed=3)
    for _ in range(40):
        a.step(ea.act(a.state())), b.step(eb.act(b.state()))
    np.testing.assert_allclose(a.state()["joint_pos"], b.state()["joint_pos"], atol=1e-9)


@pytest.mark.parametrize("robot", ROBOTS)
def test_expert_reaches_on_every_configured_arm(robot: str) -> None:
    env = sim.make("reach", robot=robot)
    expert = sim.expert_class("reach")(env)
    successes = 0
    for seed in range(20):
        env.reset(seed=seed)
        for _ in range(env.task_spec.episode_steps):
            *_, info = env.step(expert.act(env.state()))
        successes += info["is_success"]
    assert successes / 20 >= 0.9, f"{robot}: expert success {successes / 20:.0%}"


@pytest.mark.parametrize("robot", ROBOTS)
def test_spec_follows_the_model(robot: str) -> None:
    model, c = configured_robot(robot)
    spec = sim.make("reach", robot=robot).task_spec
    assert spec.joint_names == c.JOINT_NAMES and spec.n_joints == c.N_JOINTS == model.nu
    assert spec.observation[0].size == spec.observation[1].size == c.N_JOINTS
    for j, lo, hi in zip(c.JOINT_NAMES, spec.joint_pos_min, spec.joint_pos_max, strict=True):
        np.testing.assert_allclose(model.joint(j).range, (lo, hi))
    assert spec.joint_vel_max == load_robot_config(robot).velocity_limits


def test_urdf_chain_is_found_from_the_end_effector_and_servos_added() -> None:
    _, c = configured_robot(URDF_ROBOT)
    assert c.JOINT_NAMES == ("pan", "lift", "elbow", "wrist")
    assert c.ACTUATOR_NAMES == tuple(f"{j}_servo" for j in c.JOINT_NAMES)


def test_shipped_robots_are_listed() -> None:
    assert {"arm7", "widowx200", "panda", "ur5e"} <= set(known_robots())
    with pytest.raises(RobotConfigError, match=r"unknown robot 'ur3'.*shipped: \[.*panda"):
        load_robot_config("ur3")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (("ee: tool", "ee: tol"), r"ee 'tol' is neither a site nor a body"),
        (("joints: []", "joints: [pan, lift, elbow, wirst]"), r"joints: 'wirst' is not a joint"),
        (
            ("actuators: {kp: 300.0, kv: 30.0}", ""),
            r"joint 'pan' has no actuator in the model: add actuators",
        ),
        (("home: [0.0, 0.5, 1.2, 0.8]", "home: ready"), r"home 'ready' is not a keyframe"),
        (
            ("home: [0.0, 0.5, 1.2, 0.8]", "home: [0.0, 0.5, 1.2, 9.0]"),
            r"home .* is outside the joint limits",
        ),
        (
            ("velocity_limits: [2.0, 2.0, 2.5, 3.0]", "velocity_limits: [2.0, 2.0, 2.5]"),
            r"velocity_limits has 3",
        ),
        (("model: arm4.urdf", "model: arm5.urdf"), r"model 'arm5.urdf': no such file"),
        (("name: arm4", "name: arm4\nspeed: 3"), r"unknown key\(s\) \['speed'\]"),
        (("workspace_high: [0.4, 0.2, 0.4]", ""), r"missing key\(s\) \['workspace_high'\]"),
    ],
)
def test_a_bad_robot_config_is_refused_naming_file_and_key(
    tmp_path: Path, edit: tuple[str, str], match: str
) -> None:
    assert edit[0] in URDF_YAML
    path = _write(tmp_path, URDF_YAML.replace(*edit))
    with pytest.raises(RobotConfigError, match=match) as e:
        sim.make("reach", robot=str(path))
    assert str(path) in str(e.value)


def test_tasks_with_their_own_scene_refuse_another_arm() -> None:
    with pytest.raises(ValueError, match="works with task=reach"):
        sim.make("push", robot="panda")


@pytest.mark.slow
def test_spine_collect_takes_robot_from_the_command_line(tmp_path: Path) -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "sim.collect_app",
            "robot=arm7",
            "task=reach",
            "episodes=2",
            f"out={tmp_path}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    import json

    meta = json.loads((tmp_path / "reach.json").read_text())
    assert meta["task_kwargs"]["robot"] == "arm7" and meta["expert_success_rate"] >= 0.5
