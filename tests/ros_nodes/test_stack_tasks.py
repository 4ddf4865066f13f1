"""spine-stack on the tasks that are not a position-servoed arm reaching a point: the maze (a
planar goal, a point mass homing through its cells), push (the puck on /spine/observation) and
dm_control's reacher (normalized motor commands behind the normalized safety stage).

Each runs the four nodes over Cyclone DDS on loopback for a few episodes; the checks read the
recorded bag and share no code with the nodes or the filter: every robot command finite and
inside the limits taken straight from the MuJoCo model or dm_control's action spec, the robot
never jumps between joint states (nothing teleports between episodes), the planar goal is a
point with z = 0, the observation topic carries the task's observation, and the bag replays.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from ruamel.yaml import YAML

import sim
from ros_nodes.stack import main as stack_main
from tests.ros_nodes.domains import fresh_domain

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DMC_BUNDLE = Path(__file__).resolve().parent / "data" / "dmc_sac"
RATE_HZ = 1000.0


def sh(*args: str) -> None:
    out = subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"{args[0]} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}"


def tiny_bundle(task: str, d: Path) -> Path:
    """A policy trained for seconds: the stack's plumbing, not its success, is under test."""
    sh("spine-collect", f"task={task}", "episodes=6", f"out={d}/data")
    sh(
        "spine-train", f"task={task}", "policy=gcbc", f"dataset={d}/data/{task}.npz", f"out={d}/train",
        "steps=100", "eval_every=100", "eval_episodes=1", "policy.hidden=32", "torch_threads=1",
    )  # fmt: skip
    sh("spine-export", f"{d}/train/checkpoint", "--out", f"{d}/bundle", "--samples", "32")
    return d / "bundle"


def run_stack(task: str, bundle: Path, out: Path, episodes: int, episode_s: float) -> dict[str, Any]:
    params = out / "params.yaml"
    out.mkdir(parents=True)
    params.write_text(
        (REPO / "configs/ros/stack.yaml").read_text().replace("rate_hz: 1000.0", f"rate_hz: {RATE_HZ}")
    )
    rc = stack_main(
        [
            "--params-file", str(params), "--out", str(out / "stack"), "--domain-id", str(fresh_domain()),
            "--task", task, "--bundle", str(bundle),
            "-p", f"episodes:={episodes}", "-p", f"episode_s:={episode_s}", "-p", "seed:=5",
        ]
    )  # fmt: skip
    logs = "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in (out / "stack").glob("*.log"))
    assert rc == 0, logs
    summary = json.loads((out / "stack/sim_summary.json").read_text())
    assert summary["episodes"] == episodes and summary["task"] == task, summary
    return summary


def read_bag(bag: Path) -> dict[str, list[tuple[int, Any]]]:
    """Every message of the bag by topic: (log time ns, message)."""
    found: dict[str, list[tuple[int, Any]]] = {}
    with AnyReader([bag]) as reader:
        for conn, t, raw in reader.messages():
            found.setdefault(conn.topic, []).append((t, reader.deserialize(raw, conn.msgtype)))
    return found


def joint_ranges(task: str) -> tuple[np.ndarray, np.ndarray]:
    """The task's joint ranges, read from its MuJoCo model (not from any Spine spec)."""
    env = sim.make(task).unwrapped
    model = env.physics.model
    names = env.task_spec.joint_names
    rows = np.array([model.joint(n).id for n in names])
    return model.jnt_range[rows, 0], model.jnt_range[rows, 1]


def check_no_jumps(bag: dict[str, Any], vel_max: float) -> None:
    """Between consecutive joint states the robot moves no faster than ``vel_max`` (over the
    stamps' interval plus 20 ms of slack): nothing teleports between episodes."""
    states = [msg for _, msg in bag["/joint_states"]]
    stamps = np.array([msg.header.stamp.sec * 1e9 + msg.header.stamp.nanosec for msg in states])
    q = np.array([msg.position for msg in states])
    step = np.abs(np.diff(q, axis=0)).max(axis=1)
    allowed = vel_max * (np.diff(stamps) * 1e-9 + 0.02)
    assert np.all(step <= allowed), f"jump of {step.max():.3f} between joint states"


def replay(bag: Path, bundle: Path, out: Path) -> dict[str, Any]:
    sh("spine-replay", str(bag), "--bundle", str(bundle), "--out", str(out))
    report = json.loads((out / "report.json").read_text())
    assert report["ticks"] > 0
    return report


@pytest.mark.slow
def test_maze_on_the_stack(tmp_path: Path) -> None:
    bundle = tiny_bundle("maze", tmp_path / "train")
    summary = run_stack("maze", bundle, tmp_path / "run", episodes=2, episode_s=2.0)
    bag = read_bag(tmp_path / "run/stack/bag")
    low, high = joint_ranges("maze")
    commands = np.array([msg.data for _, msg in bag["/spine/command"]])
    assert np.all(np.isfinite(commands)) and np.all((low <= commands) & (commands <= high))
    goals = np.array([[msg.point.x, msg.point.y, msg.point.z] for _, msg in bag["/spine/goal"]])
    assert np.all(goals[:, 2] == 0.0), "a planar goal is a point with z = 0"
    assert {tuple(g[:2]) for g in goals} == {tuple(r["goal"]) for r in summary["results"]}
    assert "/spine/observation" not in bag and "/spine/ee_position" not in bag  # all on standard topics
    assert len(bag["/spine/policy_command"]) > 10
    check_no_jumps(bag, vel_max=2.5)  # the point mass's declared limit (m/s)
    # the second episode is the task's own reset with seed 6, reached by driving there
    env = sim.make("maze").unwrapped
    env.reset(seed=6)
    assert np.allclose(summary["results"][1]["goal"], env.state()["goal"])
    replay(tmp_path / "run/stack/bag", bundle, tmp_path / "replay")


@pytest.mark.slow
def test_push_on_the_stack(tmp_path: Path) -> None:
    bundle = tiny_bundle("push", tmp_path / "train")
    run_stack("push", bundle, tmp_path / "run", episodes=2, episode_s=1.5)
    bag = read_bag(tmp_path / "run/stack/bag")
    low, high = joint_ranges("push")
    commands = np.array([msg.data for _, msg in bag["/spine/command"]])
    assert np.all(np.isfinite(commands)) and np.all((low <= commands) & (commands <= high))
    spec = sim.make("push").task_spec
    observations = [msg for _, msg in bag["/spine/observation"]]
    assert observations and all(len(o.data) == spec.obs_size for o in observations)
    assert observations[0].layout.dim[0].label.startswith("joint_pos:7,joint_vel:7,ee_pos:3,object_pos:3")
    check_no_jumps(bag, vel_max=2.61)  # arm7's fastest joint (rad/s)
    report = replay(tmp_path / "run/stack/bag", bundle, tmp_path / "replay")
    assert report["interventions"]["input_guard"] < 100  # only until the first observation arrived


@pytest.mark.slow
def test_dmc_reacher_on_the_stack(tmp_path: Path) -> None:
    """A trained reacher (tests/ros_nodes/data/README.md) reaches its targets behind the 1 kHz
    normalized stage; every command inside dm_control's action range and rate limited."""
    summary = run_stack("dmc", DMC_BUNDLE, tmp_path / "run", episodes=4, episode_s=3.0)
    successes = sum(r["success"] for r in summary["results"])
    assert successes >= 2, summary["results"]
    bag = read_bag(tmp_path / "run/stack/bag")
    action = sim.make("dmc").unwrapped.dm_env.action_spec()  # dm_control's own, centred ranges
    half = (action.maximum - action.minimum) / 2.0
    commands = np.array([msg.data for _, msg in bag["/spine/command"]])
    assert np.all(np.isfinite(commands)) and np.all(np.abs(commands) <= half)
    rate = YAML(typ="safe").load((REPO / "configs/safety/default.yaml").read_text())["action_rate"]
    # per safety tick at most rate x half-range / 1000 Hz; ticks between recorded commands from
    # their log times (the recorder may miss one under load)
    ticks = 2 + np.round(np.diff([t for t, _ in bag["/spine/command"]]) * 1e-9 * RATE_HZ)
    assert np.all(np.abs(np.diff(commands, axis=0)).max(axis=1) <= rate * half.max() / RATE_HZ * ticks)
    goals = np.array([[msg.point.x, msg.point.y, msg.point.z] for _, msg in bag["/spine/goal"]])
    assert np.all(goals[:, 2] == 0.0)
    spec = sim.make("dmc").task_spec
    assert all(len(msg.data) == spec.obs_size for _, msg in bag["/spine/observation"])
    replay(tmp_path / "run/stack/bag", DMC_BUNDLE, tmp_path / "replay")
