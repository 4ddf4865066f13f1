"""Policy node: the brain. Runs the bundle's policy at the contract's rate.

Subscribes ``/joint_states``, the goal (``geometry_msgs/PointStamped``) and the end-effector
position when the policy observes it; publishes the raw policy command
(``std_msgs/Float64MultiArray``, joint targets in rad) for the safety node. It never drives the
robot directly.
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
from ros_nodes.topics import JointOrder


@dataclass
class PolicyParams:
    robot: str = "configs/ros/arm7_reach.yaml"
    """Robot config (TaskSpec YAML); the bundle's contract must match it."""
    bundle: str = "runs/demo/bundle"
    """Policy bundle folder (spine-export)."""
    goal_topic: str = m.TOPIC_GOAL
    ee_topic: str = m.TOPIC_EE
    """End-effector position (PointStamped), used when the policy observes ``ee_pos``."""
    joint_states_topic: str = m.TOPIC_JOINT_STATES
    policy_topic: str = m.TOPIC_POLICY_CMD
    """Where the raw policy command goes (the safety node reads it)."""
    max_state_age_s: float = 0.1
    """Skip the step (publish nothing) when the newest joint state is older than this (s)."""
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


class PolicyNode(Node):
    """Policy node: runs the exported policy at the contract's rate."""

    name = "spine_policy"
    Params = PolicyParams

    def configure(self) -> None:
        p = self.params
        robot = load_robot(p.robot)
        self.runner = PolicyRunner(p.bundle, robot)  # ContractMismatch names the field
        self.order = JointOrder(robot.joint_names)
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
        self.port.subscribe(p.goal_topic, m.POINT_STAMPED, self._on_goal, qos_param(p, "goal_qos", DEFAULT))
        if any(f.name == "ee_pos" for f in robot.observation):
            self.port.subscribe(p.ee_topic, m.POINT_STAMPED, self._on_ee, qos_param(p, "ee_qos", SENSOR_DATA))

    def _on_state(self, msg: Any, rx: Received) -> None:
        try:
            self.state["joint_pos"], self.state["joint_vel"] = self.order(msg)
        except ValueError as e:
            print(f"spine-policy-node: {e}", file=sys.stderr)
            return
        self.state_ns = rx.received_ns

    def _on_goal(self, msg: Any, rx: Received) -> None:
        self.state["goal"] = np.array([msg.point.x, msg.point.y, msg.point.z])

    def _on_ee(self, msg: Any, rx: Received) -> None:
        self.state["ee_pos"] = np.array([msg.point.x, msg.point.y, msg.point.z])

    def activate(self) -> None:
        self.timers = [self.port.timer(1.0 / self.runner.policy_hz, self._tick)]

    def _tick(self) -> None:
        fresh = self.port.now_ns() - self.state_ns <= self.params.max_state_age_s * 1e9
        if "goal" not in self.state or "joint_pos" not in self.state or not fresh:
            return
        command, error = self.runner(self.state)
        if error:
            self.errors += 1
            print(f"spine-policy-node: step {self.steps}: {error}", file=sys.stderr)
        self.pub.publish(m.float64_array(command))
        self.steps += 1


def main(argv: list[str] | None = None) -> int:
    return run_node(PolicyNode, argv)


if __name__ == "__main__":
    sys.exit(main())
