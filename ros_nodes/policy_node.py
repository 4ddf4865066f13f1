"""Policy node: the brain. Runs the bundle's policy at the contract's rate.

Subscribes ``/joint_states``, the goal (``geometry_msgs/PointStamped``; a planar goal as a
point with z = 0), the end-effector position when the policy observes it, and
``/spine/observation`` for a task with observed fields no standard topic carries
(``ros_nodes.task_inputs``); publishes the raw policy command (``std_msgs/Float64MultiArray``:
joint targets, or a dm_control task's normalized commands) for the safety node. It never drives
the robot directly.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from deploy.logs import messages as m
from ros_nodes.control import PolicyRunner, load_robot
from ros_nodes.node import Node, qos_param, run_node
from ros_nodes.port import DEFAULT, SENSOR_DATA, Received, command_qos
from ros_nodes.task_inputs import TaskInputs
from ros_nodes.topics import JointOrder


@dataclass
class PolicyParams:
    robot: str = "configs/ros/arm7_reach.yaml"
    """Robot config (TaskSpec YAML, a configs/robot/ name, or a registered task: its spec as
    registered); the bundle's contract must match it."""
    bundle: str = "runs/demo/bundle"
    """Policy bundle folder (spine-export)."""
    goal_topic: str = m.TOPIC_GOAL
    ee_topic: str = m.TOPIC_EE
    """End-effector position (PointStamped), used when the policy observes ``ee_pos``."""
    observation_topic: str = m.TOPIC_OBSERVATION
    """The whole observation (Float64MultiArray), used when a field has no topic of its own."""
    joint_states_topic: str = m.TOPIC_JOINT_STATES
    policy_topic: str = m.TOPIC_POLICY_CMD
    """Where the raw policy command goes (the safety node reads it)."""
    max_state_age_s: float = 0.1
    """Skip the step (publish nothing) when the newest joint state (and observation, where the
    task has one) is older than this (s)."""
    joint_states_qos: str = ""
    """QoS override (ros_nodes/qos.py::parse_qos, e.g. ``sensor_data`` or ``reliable,keep_last:1``);
    empty: the default in docs/ros.md's QoS table."""
    goal_qos: str = ""
    """QoS override (ros_nodes/qos.py::parse_qos, e.g. ``sensor_data`` or ``reliable,keep_last:1``);
    empty: the default in docs/ros.md's QoS table."""
    ee_qos: str = ""
    """QoS override (ros_nodes/qos.py::parse_qos, e.g. ``sensor_data`` or ``reliable,keep_last:1``);
    empty: the default in docs/ros.md's QoS table."""
    policy_qos: str = ""
    """QoS override (ros_nodes/qos.py::parse_qos, e.g. ``sensor_data`` or ``reliable,keep_last:1``);
    empty: the default in docs/ros.md's QoS table."""
    observation_qos: str = ""
    """QoS override (ros_nodes/qos.py::parse_qos, e.g. ``sensor_data`` or ``reliable,keep_last:1``);
    empty: the default in docs/ros.md's QoS table."""


class PolicyNode(Node):
    """Policy node: runs the exported policy at the contract's rate."""

    name = "spine_policy"
    Params = PolicyParams

    def configure(self) -> None:
        p = self.params
        robot = load_robot(p.robot, p.bundle)
        self.runner = PolicyRunner(p.bundle, robot)  # ContractMismatch names the field
        self.order = JointOrder(robot.joint_names)
        self.inputs = TaskInputs(robot, robot.observation)
        self.state: dict[str, np.ndarray] = {}
        self.state_ns = 0
        self.steps = 0
        self.errors = 0
        period = 1.0 / self.runner.policy_hz
        self.pub = self.port.publisher(
            p.policy_topic, m.FLOAT64_ARRAY, qos_param(p, "policy_qos", command_qos(period))
        )
        js_qos = qos_param(p, "joint_states_qos", SENSOR_DATA)
        self.port.subscribe(p.joint_states_topic, m.JOINT_STATE, self._on_state, js_qos)
        inputs = self.inputs
        if inputs.wants_goal:
            goal_qos = qos_param(p, "goal_qos", DEFAULT)
            self.port.subscribe(p.goal_topic, m.POINT_STAMPED, lambda msg, rx: inputs.on_goal(msg), goal_qos)
        if inputs.wants_ee:
            ee_qos = qos_param(p, "ee_qos", SENSOR_DATA)
            self.port.subscribe(p.ee_topic, m.POINT_STAMPED, lambda msg, rx: inputs.on_ee(msg), ee_qos)
        if inputs.wants_observation:
            obs_qos = qos_param(p, "observation_qos", SENSOR_DATA)
            self.port.subscribe(p.observation_topic, m.FLOAT64_ARRAY, self._on_observation, obs_qos)

    def _on_state(self, msg: Any, rx: Received) -> None:
        try:
            self.state["joint_pos"], self.state["joint_vel"] = self.order(msg)
        except ValueError as e:
            print(f"spine-policy-node: {e}", file=sys.stderr)
            return
        self.state_ns = rx.received_ns

    def _on_observation(self, msg: Any, rx: Received) -> None:
        error = self.inputs.on_observation(msg, rx.received_ns)
        if error and self.inputs.rejected == 1:
            print(f"spine-policy-node: {error}", file=sys.stderr)

    def activate(self) -> None:
        self.timers = [self.port.timer(1.0 / self.runner.policy_hz, self._tick)]

    def _tick(self) -> None:
        inputs = self.inputs
        newest = min(self.state_ns, inputs.observation_ns) if inputs.wants_observation else self.state_ns
        fresh = self.port.now_ns() - newest <= self.params.max_state_age_s * 1e9
        if inputs.missing() or "joint_pos" not in self.state or not fresh:
            return
        command, error = self.runner(inputs.fields(self.state))
        if error:
            self.errors += 1
            print(f"spine-policy-node: step {self.steps}: {error}", file=sys.stderr)
        self.pub.publish(m.float64_array(command))
        self.steps += 1


def main(argv: list[str] | None = None) -> int:
    return run_node(PolicyNode, argv)


if __name__ == "__main__":
    sys.exit(main())
