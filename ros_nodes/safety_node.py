"""Safety node: the reflex. Its own process, 500-1000 Hz, owns the actuator command.

Subscribes ``/joint_states``, the policy command and ``/spine/estop``; each tick filters the
latest policy command (``ros_nodes.control.SafetyRunner``: envelope, rate limit, a watchdog
counted in its own ticks that holds then damps, e-stop) and publishes a
``std_msgs/Float64MultiArray`` for ros2_control's forward_command_controller, plus
``diagnostic_msgs/DiagnosticArray`` at ``diagnostics_hz`` and on every mode change.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deploy import messages as m
from deploy.bundle import load_bundle
from deploy.controller import CRITIC_FILE
from deploy.critic import load_critic
from deploy.safety_limits import Stage
from ros_nodes.control import Mode, SafetyRunner, load_robot
from ros_nodes.node import Node, run_node
from ros_nodes.port import LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS, QoS, Received, command_qos
from ros_nodes.topics import BOOL, SAFETY_STATUS, TOPIC_ESTOP, JointOrder, diagnostic
from sim.observation import ObservationError, build_observation


@dataclass
class SafetyParams:
    robot: str = "configs/ros/arm7_reach.yaml"
    """Robot config (TaskSpec YAML): joint names, limits, rates."""
    bundle: str = ""
    """Policy bundle; its contract must match the robot (its policy rate sets the watchdog)."""
    rate_hz: float = 1000.0
    """Safety loop rate (Hz)."""
    stale_periods: float = 3.0
    """A policy command older than this many policy periods (counted in ticks) is stale: hold."""
    hold_periods: float = 12.5
    """Policy periods to hold after going stale before damping."""
    damping_s: float = 0.05
    """Damp target q - damping_s * qdot (s)."""
    command_topic: str = m.TOPIC_COMMAND
    """Where the safe command goes (a forward_command_controller's ~/commands)."""
    policy_topic: str = m.TOPIC_POLICY_CMD
    joint_states_topic: str = m.TOPIC_JOINT_STATES
    estop_topic: str = TOPIC_ESTOP
    diagnostics_hz: float = 10.0
    """Periodic diagnostics rate (Hz); mode changes are published at once as well."""
    spin_us: float = 0.0
    """Busy-wait this long before each tick instead of sleeping (µs): less jitter, more CPU."""
    warm_us: float = 0.0
    """Tick the filter's shadow twin this long before each tick (µs; 0: off), so that the real
    tick finds its code and data in the caches (SafetyFilter.warm: one more tick of CPU per
    period; needs spin_us above it). Cyclone DDS only (rclpy has no hook for it)."""
    rt_priority: int = 0
    """SCHED_FIFO priority of the node's process (1-99; 0: normal scheduling). Needs root or
    CAP_SYS_NICE; refused with a message otherwise."""
    stats_path: str = ""
    """If set, write per-tick timing (npz) here at exit, for benchmarks/stack_latency.py."""
    stats_max_ticks: int = 600_000
    critic: str = ""
    """The learned safety critic (critic.onnx; its contract must match the robot). Empty: the
    bundle's own critic.onnx if it has one, else none. Needs the end effector on ``ee_topic``."""
    ee_topic: str = m.TOPIC_EE
    """End-effector position (geometry_msgs/PointStamped), part of the critic's observation."""


class SafetyNode(Node):
    """Safety node: filters policy commands at 500-1000 Hz and owns the robot command."""

    name = "spine_safety"
    Params = SafetyParams

    def configure(self) -> None:
        p = self.params
        robot = load_robot(p.robot)
        policy_hz = robot.control_hz
        if p.bundle:
            contract = load_bundle(p.bundle).contract
            contract.check_robot(robot)  # ContractMismatch names the field
            policy_hz = contract.policy_hz
        critic_path = p.critic or (
            str(Path(p.bundle) / CRITIC_FILE) if p.bundle and (Path(p.bundle) / CRITIC_FILE).is_file() else ""
        )
        critic = load_critic(critic_path, robot, tick_hz=p.rate_hz) if critic_path else None
        self.runner = SafetyRunner(
            robot, policy_hz, p.rate_hz, p.stale_periods, p.hold_periods, p.damping_s, critic
        )
        self.ee: np.ndarray | None = None
        self.order = JointOrder(robot.joint_names)
        self.q: np.ndarray | None = None
        self.qd = np.zeros(robot.n_joints)
        self.state_stamp_ns = 0
        self.estop_received_ns = 0
        self.last_mode: Mode | None = None
        self.stage_ticks: dict[int, int] = {}  # Stage bit set -> ticks (names at diagnostics)
        self.cmd_pub = self.port.publisher(p.command_topic, m.FLOAT64_ARRAY, command_qos(1.0 / p.rate_hz))
        self.diag_pub = self.port.publisher(m.TOPIC_DIAGNOSTICS, m.DIAGNOSTICS, RELIABLE_QOS)
        self.port.subscribe(p.joint_states_topic, m.JOINT_STATE, self._on_state, SENSOR_QOS)
        self.port.subscribe(p.policy_topic, m.FLOAT64_ARRAY, self._on_policy, QoS(depth=1))
        self.port.subscribe(p.estop_topic, BOOL, self._on_estop, LATCHED_QOS)
        if critic is not None:
            self.port.subscribe(p.ee_topic, m.POINT_STAMPED, self._on_ee, SENSOR_QOS)
        n = p.stats_max_ticks if p.stats_path else 0
        self.stats = {
            k: np.zeros(n, dtype=np.int64) for k in ("publish_ns", "state_ns", "late_ns", "work_ns")
        }
        self.n_stats = 0

    def _on_state(self, msg: Any, rx: Received) -> None:
        try:
            self.q, self.qd = self.order(msg)
        except ValueError as e:
            print(f"spine-safety-node: {e}", file=sys.stderr)
            self.q = np.full(len(self.order.joint_names), np.nan)
        self.state_stamp_ns = m.stamp_ns(msg)
        if not self.runner.started and np.all(np.isfinite(self.q)):
            self.runner.reset(self.q)

    def _on_ee(self, msg: Any, rx: Received) -> None:
        self.ee = np.array([msg.point.x, msg.point.y, msg.point.z])

    def _critic_observation(self) -> np.ndarray | None:
        """The critic's observation from the latest joint state and end effector (None until
        both have arrived, or when they do not build: the critic stage is then skipped)."""
        critic = self.runner.critic
        if critic is None or self.ee is None or self.q is None:
            return None
        state = {"joint_pos": self.q, "joint_vel": self.qd, "ee_pos": self.ee}
        try:
            return build_observation(state, critic.critic.contract.task.observation)
        except ObservationError:
            return None

    def _on_policy(self, msg: Any, rx: Received) -> None:
        self.runner.policy_command(np.asarray(msg.data, dtype=np.float64))

    def _on_estop(self, msg: Any, rx: Received) -> None:
        if bool(msg.data) != self.runner.estop:
            self.runner.estop = bool(msg.data)
            self.estop_received_ns = rx.received_ns

    def activate(self) -> None:
        warm = self._warm if self.params.warm_us > 0 else None
        self.tick_timer = self.port.timer(
            1.0 / self.params.rate_hz, self._tick, prepare=warm, prepare_s=self.params.warm_us * 1e-6
        )
        self.timers = [self.tick_timer, self.port.timer(1.0 / self.params.diagnostics_hz, self._diagnose)]

    def _warm(self) -> None:
        if self.runner.started and self.q is not None:
            self.runner.warm(self.q, self._critic_observation())

    def _tick(self) -> None:
        t0 = time.perf_counter_ns()
        if not self.runner.started or self.q is None:
            return
        cmd, stages = self.runner.tick(self.q, self.qd, self._critic_observation())
        bits = int(stages)
        self.stage_ticks[bits] = self.stage_ticks.get(bits, 0) + 1
        publish_ns = self.port.now_ns()
        self.cmd_pub.publish(m.float64_array(cmd))
        if self.runner.mode != self.last_mode:
            self.last_mode = self.runner.mode
            self._diagnose()
        i = self.n_stats
        if i < self.stats["publish_ns"].size:
            self.stats["publish_ns"][i] = publish_ns
            self.stats["state_ns"][i] = self.state_stamp_ns
            self.stats["late_ns"][i] = getattr(self.tick_timer, "last_lateness_ns", 0)
            self.stats["work_ns"][i] = time.perf_counter_ns() - t0
            self.n_stats += 1

    def stage_counts(self) -> dict[str, int]:
        """Ticks on which each stage changed the command, by stage name."""
        counts: dict[str, int] = {}
        for bits, ticks in self.stage_ticks.items():
            for name in Stage(bits).names():
                counts[name] = counts.get(name, 0) + ticks
        return counts

    def _diagnose(self) -> None:
        r = self.runner
        mode = r.mode.value
        level = 0 if r.mode == Mode.TRACK else 2 if r.mode == Mode.ESTOP else 1
        values = {
            "mode": mode,
            "ticks": self.tick_timer.ticks,
            "overruns": self.tick_timer.overruns,
            "ticks_since_policy": r.age_ticks,
            "stale_ticks": r.stale_ticks,
            "hold_ticks": r.hold_ticks,
            "estop": int(r.estop),
            "risk": f"{r.risk:.4f}",  # critic's Q_risk of the tracked command (nan: no critic)
            "critic_vetoes": r.vetoes,
            "estop_received_ns": self.estop_received_ns,
            **{f"stage_{k}": v for k, v in sorted(self.stage_counts().items())},
        }
        self.diag_pub.publish(diagnostic(self.port, SAFETY_STATUS, level, mode, values))

    def deactivate(self) -> None:
        super().deactivate()  # no more commands: ros2_control keeps the last one (a hold)

    def finish(self) -> None:
        if self.params.stats_path:
            n = self.n_stats
            np.savez(
                self.params.stats_path,
                rate_hz=self.params.rate_hz,
                ticks=self.tick_timer.ticks,
                overruns=self.tick_timer.overruns,
                **{k: v[:n] for k, v in self.stats.items()},
            )


def main(argv: list[str] | None = None) -> int:
    return run_node(SafetyNode, argv)


if __name__ == "__main__":
    sys.exit(main())
