"""Sim robot node: MuJoCo standing in for the hardware (and its ros2_control).

Publishes ``/joint_states`` (and the end-effector position) every physics step (500 Hz on
arm7) and applies the newest command from the command topic (``std_msgs/Float64MultiArray``,
absolute joint targets in rad, as a forward_command_controller would). As the task's stand-in
it also runs episodes: a goal for ``episode_s``, scored at the end (success within the task's
threshold), then a homing move to a new start pose (the task's reset distribution) during which
commands are ignored, as when a robot's homing trajectory controller takes over; nothing
teleports, so the safety node always sees physical motion. Episodes start at the first policy
command seen, so a slow-starting policy does not lose its first goal.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ruamel.yaml import YAML

import sim
from deploy.logs import messages as m
from ros_nodes.node import Node, qos_param, run_node
from ros_nodes.port import LATCHED, RELIABLE_QOS, SENSOR_DATA, SYSTEM_DEFAULT, QoS, Received
from ros_nodes.topics import SIM_STATUS, diagnostic

ARM_PARTS = ("ee_pos", "set_targets", "joint_pos", "pos_min", "pos_max")  # what the node drives


def check_simulable(task: str, env: object) -> None:
    """Refuse, naming what is missing, a task this node cannot stand in for: it simulates a
    position-servoed arm with an end effector and a goal point (reach, reach_obstacles,
    widowx_reach, on any configured arm); push's puck, the maze's point mass and dm_control
    run through ``spine-run`` (the Controller in sim) instead."""
    physics = getattr(env, "physics", None)
    missing = [a for a in ARM_PARTS if not hasattr(physics, a)]
    if not hasattr(env, "start_pose"):
        missing.append("start_pose")
    if missing:
        raise ValueError(
            f"task {task!r}: the sim robot node simulates arm tasks whose goal is an end-effector "
            f"point (reach, reach_obstacles, widowx_reach); {task!r} lacks {missing}. "
            f"Run it through the Controller in sim instead: spine-run <bundle>"
        )


def sim_robot_kwargs(task: str, robot: str) -> dict[str, str]:
    """``{"robot": <config>}`` when the nodes' ``robot`` names an arm other than ``task``'s own."""
    from sim.robot_config import known_robots

    if not robot:
        return {}
    path = Path(robot)
    name = robot
    if path.is_file():
        data = YAML(typ="safe", pure=True).load(path.read_text()) or {}
        name = robot if "model" in data else str(data.get("robot", ""))  # a task-spec YAML names its arm
    own = sim.make(task).task_spec.robot
    if not name or name == own:
        return {}
    if name in known_robots() or name.endswith((".yaml", ".yml")):
        return {"robot": name}
    raise ValueError(f"robot {robot!r}: {name!r} is neither {task}'s own arm ({own}) nor a robot config")


@dataclass
class SimRobotParams:
    task: str = "reach"
    """Registered sim task whose robot and goals are simulated."""
    robot: str = ""
    """The nodes' robot (shared ``robot`` parameter): a robot config (configs/robot/ name or YAML
    with ``model:``) or a task-spec YAML naming one (``robot: panda``) runs ``task`` on that arm;
    "" or the task's own arm: as registered."""
    seed: int = 0
    """Seeds the initial pose and the goal sequence."""
    episodes: int = 0
    """Goals to run before exiting (0: run until stopped)."""
    episode_s: float = 4.0
    """Time per goal (s); 4 s = the reach task's 100 control steps."""
    goal_repeat_s: float = 0.5
    """Publish the current goal again this often (s): readers with ROS 2's default (volatile)
    QoS, as ``ros2 topic pub`` needs, get nothing published before they joined."""
    home_s: float = 1.5
    """Homing move between episodes (s), then ``settle_s`` at rest before the next goal."""
    settle_s: float = 0.3
    command_topic: str = m.TOPIC_COMMAND
    policy_topic: str = m.TOPIC_POLICY_CMD
    """Watched only to start the episode clock when the policy is live."""
    summary_path: str = ""
    """If set, write the episode results (JSON) here at exit."""
    stats_path: str = ""
    """If set, write per-command receive timing (npz) here at exit."""
    stats_max: int = 600_000
    joint_states_qos: str = ""
    """QoS override (ros_nodes/qos.py::parse_qos, e.g. ``sensor_data`` or ``reliable,keep_last:1``);
    empty: the default in docs/ros.md's QoS table."""
    command_qos: str = ""
    """QoS override (ros_nodes/qos.py::parse_qos, e.g. ``sensor_data`` or ``reliable,keep_last:1``);
    empty: the default in docs/ros.md's QoS table."""
    goal_qos: str = ""
    """QoS override (ros_nodes/qos.py::parse_qos, e.g. ``sensor_data`` or ``reliable,keep_last:1``);
    empty: the default in docs/ros.md's QoS table."""


class SimRobotNode(Node):
    """Sim robot node: MuJoCo physics publishing joint states and applying commands."""

    name = "spine_sim_robot"
    Params = SimRobotParams

    def configure(self) -> None:
        p = self.params
        self.env = sim.make(p.task, **sim_robot_kwargs(p.task, p.robot))
        check_simulable(p.task, self.env.unwrapped)
        self.env.reset(seed=p.seed)
        self.physics = self.env.unwrapped.physics
        self.start_pose = self.env.unwrapped.start_pose  # the task's reset pose (rad)
        self.spec = self.env.unwrapped.task_spec
        self.rng = np.random.default_rng(p.seed)
        self.goal = np.asarray(self.env.unwrapped.state()["goal"], dtype=np.float64)
        self.physics_hz = self.spec.physics_hz
        self.episode_ticks = round(p.episode_s * self.physics_hz)
        self.home_ticks = round(p.home_s * self.physics_hz)
        self.settle_ticks = round(p.settle_s * self.physics_hz)
        self.homing: tuple[np.ndarray, np.ndarray] | None = None  # (from, to) joint positions
        self.command: np.ndarray | None = None
        self.bad_commands = 0
        self.started = False
        self.ticks = 0  # physics steps in the current episode or homing phase
        self.last_ns: int | None = None  # wall time the physics has caught up to (ns)
        self.published = 0
        self.start_ns = self.port.now_ns()
        self.results: list[dict[str, Any]] = []
        n = p.stats_max if p.stats_path else 0
        self.rx = {k: np.zeros(n, dtype=np.int64) for k in ("source_ns", "received_ns")}
        self.n_rx = 0
        js_qos = qos_param(p, "joint_states_qos", SYSTEM_DEFAULT)  # as joint_state_broadcaster
        self.js_pub = self.port.publisher(m.TOPIC_JOINT_STATES, m.JOINT_STATE, js_qos)
        self.ee_pub = self.port.publisher(m.TOPIC_EE, m.POINT_STAMPED, SENSOR_DATA)
        self.goal_pub = self.port.publisher(m.TOPIC_GOAL, m.POINT_STAMPED, qos_param(p, "goal_qos", LATCHED))
        self.diag_pub = self.port.publisher(m.TOPIC_DIAGNOSTICS, m.DIAGNOSTICS, RELIABLE_QOS)
        cmd_qos = qos_param(p, "command_qos", SYSTEM_DEFAULT)  # as forward_command_controller
        self.port.subscribe(p.command_topic, m.FLOAT64_ARRAY, self._on_command, cmd_qos)
        self.port.subscribe(p.policy_topic, m.FLOAT64_ARRAY, self._on_policy, QoS(depth=1))

    def _on_command(self, msg: Any, rx: Received) -> None:
        cmd = np.asarray(msg.data, dtype=np.float64)
        if cmd.shape != (self.spec.n_joints,) or not np.all(np.isfinite(cmd)):
            self.bad_commands += 1  # a real drive would reject it too; keep the last one
        else:
            self.command = cmd
        i = self.n_rx
        if i < self.rx["source_ns"].size:
            self.rx["source_ns"][i], self.rx["received_ns"][i] = rx.source_ns, rx.received_ns
            self.n_rx += 1

    def _on_policy(self, msg: Any, rx: Received) -> None:
        if not self.started:
            self.started = True
            self.ticks = 0

    def activate(self) -> None:
        self._publish_goal()
        self.timers = [self.port.timer(1.0 / self.physics_hz, self._tick)]
        if self.params.goal_repeat_s > 0:
            self.timers.append(self.port.timer(self.params.goal_repeat_s, self._repeat_goal))

    def _repeat_goal(self) -> None:
        if self.homing is None:  # between episodes there is no goal to reach
            self.goal_pub.publish(m.point_stamped(self.port.now_ns(), self.goal))

    def _publish_goal(self) -> None:
        self.physics.set_goal_marker(self.goal)
        self.goal_pub.publish(m.point_stamped(self.port.now_ns(), self.goal))

    def _tick(self) -> None:
        """One timer tick: the physics catches up with the wall clock (a late tick steps more
        than once, at most 10 times), then one joint state is published."""
        now = self.port.now_ns()
        behind = 1 if self.last_ns is None else round((now - self.last_ns) * self.physics_hz / 1e9)
        steps = min(max(behind, 1), 10)
        if self.last_ns is None or behind > 10:
            self.last_ns = now  # too far behind (a stall): let the lost time go
        else:
            self.last_ns += round(steps * 1e9 / self.physics_hz)
        if self.homing is not None:
            self._home()
        elif self.command is not None:
            self.physics.set_targets(self.command)
        self.physics.step(steps)
        self.published += 1
        stamp = self.port.now_ns()
        names = self.spec.joint_names
        self.js_pub.publish(m.joint_state(stamp, names, self.physics.joint_pos(), self.physics.joint_vel()))
        self.ee_pub.publish(m.point_stamped(stamp, self.physics.ee_pos()))
        if not self.started:
            return
        self.ticks += steps
        if self.homing is None and self.ticks >= self.episode_ticks:
            self._end_episode()

    def _home(self) -> None:
        """Follow a smooth joint path to the next start pose, then publish the next goal."""
        start, end = self.homing  # type: ignore[misc]
        s = min(self.ticks / max(self.home_ticks, 1), 1.0)
        self.physics.set_targets(start + (end - start) * (3 * s**2 - 2 * s**3))
        if self.ticks >= self.home_ticks + self.settle_ticks:
            self.homing, self.ticks = None, 0
            self._publish_goal()

    def _end_episode(self) -> None:
        distance = float(np.linalg.norm(self.physics.ee_pos() - self.goal))
        success = distance < self.spec.success_threshold
        self.results.append({"goal": self.goal.tolist(), "distance_m": distance, "success": bool(success)})
        values = {"episode": len(self.results) - 1, "distance_m": f"{distance:.4f}", "success": int(success)}
        self.diag_pub.publish(diagnostic(self.port, SIM_STATUS, 0, "episode", values))
        if self.params.episodes and len(self.results) >= self.params.episodes:
            self.done = True
            return
        self.goal = self.rng.uniform(self.spec.workspace_low, self.spec.workspace_high)
        noise = self.env.unwrapped.config.init_noise
        home = np.asarray(self.start_pose) + self.rng.uniform(-noise, noise, self.spec.n_joints)
        home = np.clip(home, self.physics.pos_min, self.physics.pos_max)
        self.homing, self.ticks = (self.physics.joint_pos(), home), 0

    def summary(self) -> dict[str, Any]:
        n = len(self.results)
        return {
            "task": self.params.task,
            "episodes": n,
            "success_rate": sum(r["success"] for r in self.results) / n if n else 0.0,
            "bad_commands": self.bad_commands,
            "joint_state_hz": self.published / max((self.port.now_ns() - self.start_ns) / 1e9, 1e-9),
            "results": self.results,
            "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }

    def finish(self) -> None:
        if self.params.summary_path:
            Path(self.params.summary_path).write_text(json.dumps(self.summary(), indent=2))
        if self.params.stats_path:
            n = self.n_rx
            np.savez(self.params.stats_path, **{k: v[:n] for k, v in self.rx.items()})


def main(argv: list[str] | None = None) -> int:
    return run_node(SimRobotNode, argv)


if __name__ == "__main__":
    sys.exit(main())
