"""Sim robot node: MuJoCo standing in for the hardware (and its ros2_control).

Simulates any registered task through the task's own code (``ros_nodes.stand_in``). Every tick
(a physics step: 500 Hz on arm7; a dm_control task's control step) it applies the newest
command from the command topic (``std_msgs/Float64MultiArray``: absolute joint targets, as a
forward_command_controller would, or a dm_control task's normalized motor commands) and
publishes the task's state: ``/joint_states``, the end effector when the task has one, and
``/spine/observation`` (the whole observation, concatenated) when some observed field has no
topic of its own (push's puck, dm_control's observations). As the task's stand-in it also runs
episodes: the goal (``/spine/goal``; a planar goal as a point with z = 0) for ``episode_s``,
scored at the end by the task, then the next episode of the task's reset (seed + episode,
as ``spine-run`` draws them), reached by a homing move during which commands are ignored, as
when a robot's homing trajectory controller takes over; nothing teleports (dm_control tasks
reset as dm_control does). Episodes start at the first policy command seen, so a slow-starting
policy does not lose its first goal.
"""

from __future__ import annotations

import itertools
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
from deploy.logs.writer import observation_fields
from ros_nodes.control import trained_task_kwargs
from ros_nodes.node import Node, qos_param, run_node
from ros_nodes.port import LATCHED, RELIABLE_QOS, SENSOR_DATA, SYSTEM_DEFAULT, QoS, Received
from ros_nodes.stand_in import make_stand_in
from ros_nodes.topics import SIM_STATUS, diagnostic


def sim_robot_kwargs(task: str, robot: str, bundle: str = "") -> dict[str, Any]:
    """``task``'s keyword arguments: the config fields that shape its spec as ``bundle`` was
    trained on it (dm_control's domain and task), and ``{"robot": <config>}`` when the nodes'
    ``robot`` names an arm other than ``task``'s own."""
    from sim.robot_config import known_robots

    trained = trained_task_kwargs(task, bundle)
    if not robot or robot == task:  # the task named as the nodes' robot: its own spec
        return trained
    path = Path(robot)
    name = robot
    if path.is_file():
        data = YAML(typ="safe", pure=True).load(path.read_text()) or {}
        name = robot if "model" in data else str(data.get("robot", ""))  # a task-spec YAML names its arm
    own = sim.make(task, **trained).task_spec.robot
    if not name or name == own:
        return trained
    if name in known_robots() or name.endswith((".yaml", ".yml")):
        return trained | {"robot": name}
    raise ValueError(f"robot {robot!r}: {name!r} is neither {task}'s own arm ({own}) nor a robot config")


@dataclass
class SimRobotParams:
    task: str = "reach"
    """Registered sim task whose robot, scene and goals are simulated (any: reach,
    reach_obstacles, widowx_reach, push, maze, maze_large, dmc)."""
    robot: str = ""
    """The nodes' robot (shared ``robot`` parameter): a robot config (configs/robot/ name or YAML
    with ``model:``) or a task-spec YAML naming one (``robot: panda``) runs ``task`` on that arm;
    "", ``task`` itself or the task's own arm: as registered."""
    bundle: str = ""
    """The policy's bundle (shared ``bundle`` parameter): when it was trained on ``task``, the
    task is built with the config fields that shape its spec as trained (dm_control's domain
    and task), as ``spine-run`` builds it; "": as registered."""
    seed: int = 0
    """Episode k is the task's reset with seed ``seed + k``: the episodes ``spine-run --seed``
    runs (start pose reached by homing, goal and scene as drawn)."""
    episodes: int = 0
    """Goals to run before exiting (0: run until stopped)."""
    episode_s: float = 0.0
    """Time per goal (s); 0: the task's own episode (episode_steps / control_hz: reach 4 s,
    push 10 s, maze 20 s, dmc 20 s)."""
    goal_repeat_s: float = 0.5
    """Publish the current goal again this often (s): readers with ROS 2's default (volatile)
    QoS, as ``ros2 topic pub`` needs, get nothing published before they joined."""
    home_s: float = 1.5
    """Shortest homing move between episodes (s), then ``settle_s`` at rest before the next goal."""
    home_speed: float = 0.5
    """Homing moves at most this fraction of the joint velocity limits on average (longer moves
    and the maze's path through its cells take longer than ``home_s``)."""
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
    """Sim robot node: a task in MuJoCo publishing its state and applying commands."""

    name = "spine_sim_robot"
    Params = SimRobotParams

    def configure(self) -> None:
        p = self.params
        self.sim = make_stand_in(p.task, **sim_robot_kwargs(p.task, p.robot, p.bundle))
        self.spec = spec = self.sim.spec
        episode_s = p.episode_s or spec.episode_steps / spec.control_hz
        if not episode_s > 0:
            raise ValueError(f"episode_s {p.episode_s}: must be > 0 (0: the task's own episode)")
        self.sim.reset(p.seed)
        self.goal = np.asarray(self.sim.state()[spec.goal.name], dtype=np.float64)
        self.tick_hz = self.sim.tick_hz
        self.episode_ticks = round(episode_s * self.tick_hz)
        self.settle_ticks = round(p.settle_s * self.tick_hz)
        self.observed = observation_fields(spec.observation)  # fields no standard topic carries
        self.label = ",".join(f"{f.name}:{f.size}" for f in self.observed)
        self.homing: list[tuple[np.ndarray, np.ndarray, int]] = []  # (from, to, ticks) segments
        self.settling = False
        self.command: np.ndarray | None = None
        self.bad_commands = 0
        self.started = False
        self.ticks = 0  # ticks in the current episode, homing segment or settling
        self.last_ns: int | None = None  # wall time the physics has caught up to (ns)
        self.published = 0
        self.start_ns = self.port.now_ns()
        self.results: list[dict[str, Any]] = []
        n = p.stats_max if p.stats_path else 0
        self.rx = {k: np.zeros(n, dtype=np.int64) for k in ("source_ns", "received_ns")}
        self.n_rx = 0
        state = self.sim.state()
        js_qos = qos_param(p, "joint_states_qos", SYSTEM_DEFAULT)  # as joint_state_broadcaster
        self.js_pub = self.port.publisher(m.TOPIC_JOINT_STATES, m.JOINT_STATE, js_qos)
        self.ee_pub = None
        if "ee_pos" in state:
            self.ee_pub = self.port.publisher(m.TOPIC_EE, m.POINT_STAMPED, SENSOR_DATA)
        self.obs_pub = (
            self.port.publisher(m.TOPIC_OBSERVATION, m.FLOAT64_ARRAY, SENSOR_DATA) if self.observed else None
        )
        self.goal_pub = None
        if spec.goal.size in (2, 3):  # a goal-less task (dm_control's cartpole, ...) has none
            goal_qos = qos_param(p, "goal_qos", LATCHED)
            self.goal_pub = self.port.publisher(m.TOPIC_GOAL, m.POINT_STAMPED, goal_qos)
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
        self.timers = [self.port.timer(1.0 / self.tick_hz, self._tick)]
        if self.params.goal_repeat_s > 0:
            self.timers.append(self.port.timer(self.params.goal_repeat_s, self._repeat_goal))

    def _between(self) -> bool:
        return bool(self.homing) or self.settling

    def _repeat_goal(self) -> None:
        if not self._between():  # between episodes there is no goal to reach
            self._publish_goal()

    def _publish_goal(self) -> None:
        if self.goal_pub is not None:
            self.goal_pub.publish(m.point_stamped(self.port.now_ns(), self.goal))

    def _tick(self) -> None:
        """One timer tick: the sim catches up with the wall clock (a late tick steps more
        than once, at most 10 times), then the state is published once."""
        now = self.port.now_ns()
        behind = 1 if self.last_ns is None else round((now - self.last_ns) * self.tick_hz / 1e9)
        steps = min(max(behind, 1), 10)
        if self.last_ns is None or behind > 10:
            self.last_ns = now  # too far behind (a stall): let the lost time go
        else:
            self.last_ns += round(steps * 1e9 / self.tick_hz)
        if self._between():
            self._home(steps)
        elif self.command is not None:
            self.sim.apply(self.command)
        self.sim.step(steps)
        self.published += 1
        self._publish_state(self.port.now_ns())
        if not self.started or self._between():
            return
        self.ticks += steps
        if self.ticks >= self.episode_ticks:
            self._end_episode()

    def _publish_state(self, stamp: int) -> None:
        state = self.sim.state()
        names = self.spec.joint_names
        self.js_pub.publish(m.joint_state(stamp, names, state["joint_pos"], state["joint_vel"]))
        if self.ee_pub is not None:
            self.ee_pub.publish(m.point_stamped(stamp, state["ee_pos"]))
        if self.obs_pub is not None:
            values = np.concatenate([np.ravel(state[f.name]) for f in self.observed]).astype(np.float64)
            self.obs_pub.publish(m.float64_array(values, self.label))

    def _home(self, steps: int) -> None:
        """Follow the homing path's segments (smooth in time), settle, then start the episode."""
        self.ticks += steps
        if self.homing:
            start, end, ticks = self.homing[0]
            s = min(self.ticks / max(ticks, 1), 1.0)
            self.sim.apply(start + (end - start) * (3 * s**2 - 2 * s**3))
            if self.ticks >= ticks:
                self.homing.pop(0)
                self.ticks = 0
                self.settling = not self.homing
        elif self.ticks >= self.settle_ticks:
            self.settling, self.ticks = False, 0
            self._place(self.params.seed + len(self.results))

    def _place(self, seed: int) -> None:
        """Start episode ``seed`` where the robot stands, and publish its goal."""
        self.sim.place(seed)
        self.goal = np.asarray(self.sim.state()[self.spec.goal.name], dtype=np.float64)
        self._publish_goal()

    def _end_episode(self) -> None:
        distance, success = self.sim.score()
        self.results.append({"goal": self.goal.tolist(), "distance_m": distance, "success": success})
        values = {"episode": len(self.results) - 1, "distance_m": f"{distance:.4f}", "success": int(success)}
        self.diag_pub.publish(diagnostic(self.port, SIM_STATUS, 0, "episode", values))
        self.ticks = 0
        if self.params.episodes and len(self.results) >= self.params.episodes:
            self.done = True
            return
        seed = self.params.seed + len(self.results)
        start = self.sim.start_of(seed)
        if start is None:  # dm_control: its own reset, at once
            self._place(seed)
            return
        path = self.sim.path_to(start, self.params.home_s, self.params.home_speed)
        points = [self.sim.state()["joint_pos"], *(q for q, _ in path)]
        self.homing = [
            (a, b, max(round(t * self.tick_hz), 1))
            for (a, b), (_, t) in zip(itertools.pairwise(points), path, strict=True)
        ]

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
