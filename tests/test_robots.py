"""Bring your own arm: on the Panda, the UR5e (Menagerie) and a URDF, the documented commands
with a robot YAML and no new Python: collect -> train (GCBC) and the safety critic -> export
(critic inside) -> spine-run through the Controller (the robot taken from the bundle) ->
spine-replay of its own log (docs/robots.md)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sim.robot_config import load_robot_config
from tests.robots import REPO, ROBOTS, URDF_ROBOT
from tests.ros_nodes.domains import fresh_domain

BIN = Path(sys.executable).parent


def sh(*args: str) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=600, env=dict(os.environ)
    )
    assert out.returncode == 0, f"{args[0]} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}"
    return out


@pytest.mark.slow
@pytest.mark.parametrize("robot", ROBOTS)
def test_train_export_run_replay_on_a_configured_arm(robot: str, tmp_path: Path) -> None:
    d = tmp_path
    # a shipped config by name through the robot group; a YAML anywhere through task.robot
    pick = f"robot={robot}" if "/" not in robot else f"task.robot={robot}"
    sh("spine-collect", pick, "task=reach", "episodes=12", f"out={d}/data")
    data = json.loads((d / "data/reach.json").read_text())
    assert data["expert_success_rate"] >= 0.9
    sh(
        "spine-train", pick, "task=reach", "policy=gcbc", f"dataset={d}/data/reach.npz", f"out={d}/train",
        "steps=200", "eval_every=200", "eval_episodes=2", "policy.hidden=64", "torch_threads=1",
    )  # fmt: skip
    sh("spine-train-critic", pick, "task=reach", "data.episodes=8", "critic.steps=100", f"out={d}/critic")
    critic = f"{d}/critic/checkpoint"
    sh("spine-export", f"{d}/train/checkpoint", "--out", f"{d}/bundle", "--samples", "64", "--critic", critic)
    assert (d / "bundle/critic.onnx").is_file()
    contract = json.loads((d / "bundle/contract.json").read_text())
    config = load_robot_config(robot)
    assert contract["task"]["robot"] == config.name and len(contract["task"]["joint_names"]) == len(
        config.velocity_limits
    )
    run = sh("spine-run", f"{d}/bundle", "--episodes", "2", "--log", f"{d}/run")  # robot from the bundle
    summary = json.loads((d / "run/summary.json").read_text())
    assert summary["episodes"] == 2 and "success" in run.stdout
    assert summary["critic"]["evaluations"] > 0  # the bundle's critic judged the commands
    sh("spine-replay", f"{d}/run/log", "--bundle", f"{d}/bundle", "--out", f"{d}/replay")
    replay = json.loads((d / "replay/report.json").read_text())
    assert replay["command_error_rad"]["max"] < 1e-9
    # its own log -> a dataset for the same arm (the mapping names the robot config)
    joints = contract["task"]["joint_names"]
    mapping = {
        "robot": robot,
        "joint_states": {"topic": "/joint_states"},
        "command": {"topic": "/spine/command", "kind": "array", "value_field": "data", "joints": joints},
    }
    (d / "mapping.yaml").write_text(json.dumps(mapping))  # JSON is YAML
    sh("spine-log-dataset", f"{d}/run/log", "--mapping", f"{d}/mapping.yaml", "--out", f"{d}/logdata")
    meta = json.loads(next((d / "logdata").glob("*.json")).read_text())
    arrays = np.load(next((d / "logdata").glob("*.npz")))
    assert meta["transitions"] > 100 and arrays["action"].shape == (meta["transitions"], len(joints))
    assert arrays["observation"].shape[1] == sum(f["size"] for f in contract["task"]["observation"])
    # and the same log through system identification and offline evaluation on that arm
    log_map = (f"{d}/run/log", "--mapping", f"{d}/mapping.yaml")
    sh("spine-log-sim", *log_map, "--out", f"{d}/sysid", "--maxfev", "20")
    sysid = json.loads((d / "sysid/sysid.json").read_text())
    assert sysid["joint_names"] == joints and sysid["windows"]["moving"] > 0
    sh("spine-replay", *log_map, "--bundle", f"{d}/bundle", "--out", f"{d}/eval")
    if robot == URDF_ROBOT:  # the ROS 2 stack on this arm (one arm, ~30 s): robot, bundle by parameter
        params = (REPO / "configs/ros/stack.yaml").read_text()
        params = re.sub(r"robot: configs/ros/arm7_reach.yaml.*", f"robot: {robot}", params)
        params = re.sub(r"bundle: runs/demo/bundle.*", f"bundle: {d}/bundle", params)
        (d / "stack.yaml").write_text(params.replace("episodes: 10", "episodes: 2"))
        domain = str(fresh_domain())
        sh("spine-stack", "--params-file", f"{d}/stack.yaml", "--out", f"{d}/stack", "--domain-id", domain)
        ran = json.loads((d / "stack/sim_summary.json").read_text())
        assert ran["episodes"] == 2 and ran["bad_commands"] == 0
        sh("spine-replay", f"{d}/stack/bag", "--bundle", f"{d}/bundle", "--out", f"{d}/stack_replay")
