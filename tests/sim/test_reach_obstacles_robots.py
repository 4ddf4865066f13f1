"""reach_obstacles on every configured arm (tests/robots.py: the Panda, the UR5e, a URDF), with
no Python per arm: the task contract, a layout derived from the robot's workspace and geometry,
the via-point expert, the critic's adversaries, ``spine-collect robot=<arm>``, and clear
refusals where no sensible layout exists (docs/robots.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import sim
from policies.critic_data import ADVERSARIES, CriticDataConfig, collect_critic_data
from sim.experts.reach_expert import ReachExpert
from sim.experts.reach_obstacles_expert import ReachObstaclesExpert
from sim.tasks.reach import COST_COLLISION, COST_JOINT_LIMIT, COST_SPEED
from sim.tasks.reach_obstacles import N_SLOTS, OBSTACLE_CENTERS, OBSTACLE_HALF_SIZES
from tests.robots import ROBOTS, URDF_ROBOT
from tests.sim import test_task_contract as contract

TASK = "reach_obstacles"
EPISODES = 20  # expert episodes per arm (measured on 100 seeds: docs/robots.md)


def make(robot: str, **kwargs: object) -> object:
    return sim.make(TASK, robot=robot, **kwargs)


@pytest.mark.parametrize("robot", ROBOTS)
def test_task_contract(robot: str) -> None:
    contract.test_observation_matches_spec(TASK, robot)
    contract.test_deterministic_under_seed(TASK, robot)
    contract.test_random_actions_no_nan_costs_every_step(TASK, robot)
    contract.test_task_implements_the_backend_protocol(TASK, robot)
    spec = make(robot, episode_steps=5).task_spec
    assert spec.robot != "arm7" and spec.obs_size == 2 * spec.n_joints + 3 + 2 * 3 * N_SLOTS


@pytest.mark.parametrize("robot", ROBOTS)
def test_layout_comes_from_the_robots_workspace(robot: str) -> None:
    env = make(robot)
    low, high = np.asarray(env.robot.WORKSPACE_LOW), np.asarray(env.robot.WORKSPACE_HIGH)
    goal_low, goal_high = np.asarray(env.config.workspace_low), np.asarray(env.config.workspace_high)
    assert np.all(low <= goal_low) and np.all(goal_high <= high)  # the goals: inside the workspace
    assert goal_low[0] > low[0] + 0.5 * (high[0] - low[0])  # in its far part
    counts = set()
    for seed in range(15):
        _, info = env.reset(seed=seed)
        assert info["cost"][COST_COLLISION] == 0.0 and info["cost"][COST_JOINT_LIMIT] == 0.0
        state = env.state()
        centers = state[OBSTACLE_CENTERS.name].reshape(N_SLOTS, 3)
        halves = state[OBSTACLE_HALF_SIZES.name].reshape(N_SLOTS, 3)
        present = np.any(halves > 0, axis=1)
        assert present[0]
        counts.add(int(present.sum()))
        np.testing.assert_allclose(centers[present, 2], halves[present, 2])  # on the ground
        t = np.linspace(0.0, 1.0, 201)[:, None]
        segment = state["ee_pos"] + t * (state["goal"] - state["ee_pos"])
        assert np.all(np.abs(segment - centers[0]) < halves[0], axis=1).any(), f"seed {seed}: wall missed"
        assert np.all((state["goal"] >= goal_low) & (state["goal"] <= goal_high))
        assert low[0] - 0.05 < state["ee_pos"][0] < goal_low[0]  # starts low at the near side
        assert state["ee_pos"][2] < goal_high[2] + 0.05
    assert counts == {1, 2, 3}


@pytest.mark.parametrize("robot", ROBOTS)
def test_expert_goes_over_and_the_straight_line_collides(robot: str) -> None:
    env = make(robot)
    expert, straight = ReachObstaclesExpert(env), ReachExpert(env)
    successes, touched, other_costs = 0, 0, 0.0
    for seed in range(EPISODES):
        env.reset(seed=1000 + seed)
        hits = 0.0
        for _ in range(env.task_spec.episode_steps):
            *_, info = env.step(expert.act(env.state()))
            hits += info["cost"][COST_COLLISION]
            other_costs += info["cost"][COST_JOINT_LIMIT] + info["cost"][COST_SPEED]
        successes += info["is_success"]
        touched += hits > 0
    assert successes >= 0.9 * EPISODES, f"{robot}: expert success {successes}/{EPISODES}"
    assert touched <= 0.1 * EPISODES, f"{robot}: the expert touched a box in {touched}/{EPISODES}"
    assert other_costs == 0.0
    hit = 0
    for seed in range(5):  # reach's expert heads straight at the goal: through the wall
        env.reset(seed=1000 + seed)
        collided = False
        for _ in range(40):
            *_, info = env.step(straight.act(env.state()))
            collided |= info["cost"][COST_COLLISION] > 0
        hit += collided
    assert hit >= 4


@pytest.mark.parametrize("robot", ROBOTS)
def test_touching_a_box_is_a_collision(robot: str) -> None:
    env = make(robot)
    centers, halves = np.zeros((N_SLOTS, 3)), np.zeros((N_SLOTS, 3))
    _, info = env.reset(seed=0, options={OBSTACLE_HALF_SIZES.name: halves})
    assert info["cost"][COST_COLLISION] == 0.0  # zero half-sizes: no box at all
    ee = env.state()["ee_pos"]
    centers[2], halves[2] = (ee[0], ee[1], ee[2] / 2), (0.05, 0.05, ee[2] / 2 + 0.02)  # up to the hand
    obs, info = env.reset(seed=0, options={OBSTACLE_CENTERS.name: centers, OBSTACLE_HALF_SIZES.name: halves})
    assert info["cost"][COST_COLLISION] == 1.0 and env.physics.contacts().arm_table > 0
    start = sum(f.size for f in env.task_spec.observation[:-2])
    np.testing.assert_allclose(obs["observation"][start : start + 9], centers.reshape(-1), atol=1e-6)


@pytest.mark.parametrize("robot", ROBOTS)
def test_critic_data_with_adversaries(robot: str) -> None:
    data = collect_critic_data(
        TASK, CriticDataConfig(episodes=12, episode_steps=30, seed=0), {"robot": robot}
    )
    spec = make(robot, episode_steps=5).task_spec
    assert data.obs.shape == (360, spec.obs_size) and data.act.shape == (360, spec.n_joints)
    adversarial = data.behavior > 0
    assert set(np.unique(data.behavior[adversarial])) <= set(range(1, len(ADVERSARIES) + 1))
    assert data.cost.max() == 1.0
    assert data.cost[adversarial].mean() > data.cost[~adversarial].mean()  # the adversaries violate


@pytest.mark.parametrize("robot", ROBOTS)
def test_spine_collect_on_the_arm(robot: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sim.collect_app import main

    pick = f"robot={robot}" if "/" not in robot else f"task.robot={robot}"  # a YAML anywhere: by path
    argv = ["spine-collect", pick, f"task={TASK}", "episodes=2", "task.episode_steps=20", f"out={tmp_path}"]
    monkeypatch.setattr(sys, "argv", argv)
    main()
    meta = json.loads((tmp_path / f"{TASK}.json").read_text())
    assert meta["episodes"] == 2 and meta["task"]["robot"] != "arm7"
    with np.load(tmp_path / f"{TASK}.npz") as z:
        assert z["action"].shape == (40, len(meta["task"]["joint_names"]))


def test_arms_without_a_sensible_layout_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"widowx200.*no collision geometry"):
        sim.make(TASK, robot="widowx200")  # its MJCF's geoms collide with nothing
    urdf = Path(URDF_ROBOT)
    (tmp_path / "arm4.urdf").write_text(urdf.with_name("arm4.urdf").read_text())
    shallow = tmp_path / "shallow.yaml"  # the URDF arm with a workspace 10 cm deep
    shallow.write_text(urdf.read_text().replace("workspace_low: [0.2,", "workspace_low: [0.3,"))
    with pytest.raises(ValueError, match=r"shallow\.yaml.*no wall fits.*workspace_low/high deeper"):
        sim.make(TASK, robot=str(shallow))
