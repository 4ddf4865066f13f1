"""Safety node: the reflex. Its own process, 500-1000 Hz, owns the actuator command.

Subscribes ``/joint_states``, the policy command and ``/spine/estop``; each tick runs the
``SafetyFilter`` (``ros_nodes.control.SafetyRunner``) under the one safety configuration
(``configs/safety/``, parameters ``safety.<field>`` override its fields) with the ages of the
command and the joint state measured on a monotonic clock: input guard, watchdog (hold, then
damp), critic, envelope, e-stop and the last stage are all the filter's. It publishes the safe
command as ``std_msgs/Float64MultiArray`` (forward_command_controller) or
``trajectory_msgs/JointTrajectory`` (joint_trajectory_controller), plus
``diagnostic_msgs/DiagnosticArray`` at ``diagnostics_hz`` and on every mode change.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from deploy.logs import messages as m
from deploy.runtime.bundle import load_bundle
from deploy.runtime.controller import CRITIC_FILE
from deploy.safety.config import SafetyConfig, load_safety_config
from deploy.safety.engines import load_critic
from deploy.safety.kinematics import SerialChain
from deploy.safety.limits import Stage
from deploy.safety.normalized import NORMALIZED
from ros_nodes.control import Mode, SafetyRunner, load_robot
from ros_nodes.node import Node, qos_param, run_node
from ros_nodes.port import DEFAULT, RELIABLE_QOS, SENSOR_DATA, SYSTEM_DEFAULT, PortHealth, QoS, Received
from ros_nodes.task_inputs import TaskInputs
from ros_nodes.topics import BOOL, JOINT_TRAJECTORY, SAFETY_STATUS, TOPIC_ESTOP, JointOrder, diagnostic
from sim.observation import ObservationError, build_observation

COMMAND_TYPES = {"float64_array": m.FLOAT64_ARRAY, "joint_trajectory": JOINT_TRAJECTORY}


@dataclass
class SafetyParams:
    NESTED: ClassVar[tuple[str, ...]] = ("safety",)  # safety.<field>: SafetyConfig's fields

    robot: str = "configs/ros/arm7_reach.yaml"
    """Robot config (TaskSpec YAML): joint names, limits, rates."""
    bundle: str = ""
    """Policy bundle; its contract must match the robot (its policy rate sets the watchdog)."""
    safety: str = "default"
    """Safety configuration: a configs/safety/ name or a YAML path. Single fields are
    overridden with ``safety.<field>`` parameters (e.g. ``-p safety.margin:=0.08``)."""
    chain: str = ""
    """The arm's kinematic chain as JSON (``SerialChain.to_dict``), needed when the safety
    configuration sets a workspace box or ``ee_speed_max``."""
    rate_hz: float = 1000.0
    """Safety loop rate (Hz)."""
    command_topic: str = m.TOPIC_COMMAND
    """Where the safe command goes: a forward_command_controller's ``~/commands``
    (float64_array) or a joint_trajectory_controller's ``~/joint_trajectory``."""
    command_type: str = "float64_array"
    """``float64_array`` (std_msgs/Float64MultiArray) or ``joint_trajectory``
    (trajectory_msgs/JointTrajectory, one point reached ``trajectory_time_s`` after now)."""
    trajectory_time_s: float = 0.0
    """``time_from_start`` of the JointTrajectory point (s); 0: two ticks."""
    policy_topic: str = m.TOPIC_POLICY_CMD
    joint_states_topic: str = m.TOPIC_JOINT_STATES
    estop_topic: str = TOPIC_ESTOP
    diagnostics_hz: float = 10.0
    """Periodic diagnostics rate (Hz); mode changes are published at once as well."""
    spin_us: float = 0.0
    """Busy-wait this long before each tick instead of sleeping (µs): less jitter, more CPU."""
    warm_us: float = 0.0
    """Tick the filter's shadow twin this long before each tick (µs; 0: off), so that the real
    tick finds its code and data in the caches (FilterEngine.warm: one more tick of CPU per
    period; needs spin_us above it). Cyclone DDS only (rclpy has no hook for it)."""
    rt_priority: int = 0
    """SCHED_FIFO priority of the node's process (1-99; 0: normal scheduling). Needs root or
    CAP_SYS_NICE; refused with a message otherwise."""
    stats_path: str = ""
    """If set, write per-tick timing (npz) here at exit, for benchmarks/stack_latency.py."""
    stats_max_ticks: int = 600_000
    health_path: str = ""
    """If set, write the loop's health (JSON: ticks, overruns, guard/hold/damp/estop ticks,
    dropped and out-of-order messages, QoS incompatibilities) here at exit (spine-stack prints it)."""
    critic: str = ""
    """The learned safety critic (critic.onnx; its contract must match the robot). Empty: the
    bundle's own critic.onnx if it has one, else none. Needs the end effector on ``ee_topic``."""
    ee_topic: str = m.TOPIC_EE
    """End-effector position (geometry_msgs/PointStamped), part of the critic's observation."""
    observation_topic: str = m.TOPIC_OBSERVATION
    """The whole observation (Float64MultiArray), read when the critic observes a field no
    standard topic carries (push's puck)."""
    joint_states_qos: str = ""
    """QoS override (ros_nodes/qos.py::parse_qos, e.g. ``sensor_data`` or ``reliable,keep_last:1``);
    empty: the default in docs/ros.md's QoS table."""
    command_qos: str = ""
    """QoS override of the robot command writer (default: system_default, a deadline of 3 ticks,
    at most 1 ms of blocking, so a stuck reader never stalls the loop)."""
    policy_qos: str = ""
    """QoS override (ros_nodes/qos.py::parse_qos, e.g. ``sensor_data`` or ``reliable,keep_last:1``);
    empty: the default in docs/ros.md's QoS table."""
    estop_qos: str = ""
    """QoS override (ros_nodes/qos.py::parse_qos, e.g. ``sensor_data`` or ``reliable,keep_last:1``);
    empty: the default in docs/ros.md's QoS table."""
    ee_qos: str = ""
    """QoS override (ros_nodes/qos.py::parse_qos, e.g. ``sensor_data`` or ``reliable,keep_last:1``);
    empty: the default in docs/ros.md's QoS table."""
    observation_qos: str = ""
    """QoS override (ros_nodes/qos.py::parse_qos, e.g. ``sensor_data`` or ``reliable,keep_last:1``);
    empty: the default in docs/ros.md's QoS table."""
    diagnostics_qos: str = ""
    """QoS override (ros_nodes/qos.py::parse_qos, e.g. ``sensor_data`` or ``reliable,keep_last:1``);
    empty: the default in docs/ros.md's QoS table."""


def safety_config(params: SafetyParams, declare: Any, given: set[str]) -> SafetyConfig:
    """The node's safety configuration: ``params.safety`` with every ``safety.<field>``
    parameter set (``declare``: the port's ``parameter``; ``given``: every parameter name set
    for the node, to refuse a misspelt field by name) applied over it."""
    config = load_safety_config(params.safety)
    known = {f"safety.{f.name}" for f in dataclasses.fields(SafetyConfig)}
    unknown = sorted(n for n in given if n.startswith("safety.") and n not in known)
    if unknown:
        raise ValueError(
            f"safety config parameters: unknown field(s) {[n[7:] for n in unknown]}; "
            f"fields: {sorted(n[7:] for n in known)}"
        )
    changes = {}
    for f in dataclasses.fields(SafetyConfig):
        value = declare(f"safety.{f.name}", None)
        if value is not None:
            changes[f.name] = value
    return config.replace(**changes) if changes else config


class SafetyNode(Node):
    """Safety node: filters policy commands at 500-1000 Hz and owns the robot command."""

    name = "spine_safety"
    Params = SafetyParams

    def configure(self) -> None:
        p = self.params
        robot = load_robot(p.robot, p.bundle)
        if p.bundle:
            contract = load_bundle(p.bundle).contract
            contract.check_robot(robot)  # ContractMismatch names the field
            if contract.policy_hz != robot.control_hz:  # the watchdog counts policy periods
                robot = dataclasses.replace(robot, control_hz=float(contract.policy_hz))
        if p.command_type not in COMMAND_TYPES:
            raise ValueError(f"command_type {p.command_type!r}: choose one of {sorted(COMMAND_TYPES)}")
        if p.command_type == "joint_trajectory" and robot.action.kind == NORMALIZED:
            raise ValueError(
                f"command_type joint_trajectory: robot {robot.robot!r} takes normalized motor commands, "
                "not joint positions; use float64_array"
            )
        store = getattr(self.port, "params", None)
        self.config = safety_config(p, self.port.parameter, set(store.source) if store else set())
        chain = None
        if p.chain:
            if not Path(p.chain).is_file():
                raise FileNotFoundError(f"chain {p.chain} does not exist")
            chain = SerialChain.from_dict(json.loads(Path(p.chain).read_text()))
        critic_path = p.critic or (
            str(Path(p.bundle) / CRITIC_FILE) if p.bundle and (Path(p.bundle) / CRITIC_FILE).is_file() else ""
        )
        critic = None
        if critic_path:
            critic = load_critic(
                critic_path, robot, tick_hz=p.rate_hz, threshold=self.config.critic_threshold
            )
        self.runner = SafetyRunner(robot, self.config, p.rate_hz, critic, chain)
        self.critic_inputs = TaskInputs(robot, critic.critic.contract.task.observation) if critic else None
        self.order = JointOrder(robot.joint_names)
        self.q: np.ndarray | None = None
        self.qd = np.zeros(robot.n_joints)
        self.state_stamp_ns = 0  # header stamp of the joint state in use (source clock)
        self.state_rx_ns = 0  # monotonic time it arrived
        self.state_out_of_order = 0  # joint states dropped: stamp not after the one in use
        self.estop_received_ns = 0
        self.last_mode: Mode | None = None
        self.stage_ticks: dict[int, int] = {}  # Stage bit set -> ticks (names at diagnostics)
        self.cmd_type = COMMAND_TYPES[p.command_type]
        self.traj_time_ns = round((p.trajectory_time_s or 2.0 / p.rate_hz) * 1e9)
        command = replace(SYSTEM_DEFAULT, deadline_s=3.0 / p.rate_hz, max_blocking_s=1e-3)
        self.cmd_pub = self.port.publisher(
            p.command_topic, self.cmd_type, qos_param(p, "command_qos", command)
        )
        diag_qos = qos_param(p, "diagnostics_qos", RELIABLE_QOS)
        self.diag_pub = self.port.publisher(m.TOPIC_DIAGNOSTICS, m.DIAGNOSTICS, diag_qos)
        js_qos = qos_param(p, "joint_states_qos", SENSOR_DATA)
        self.port.subscribe(p.joint_states_topic, m.JOINT_STATE, self._on_state, js_qos)
        policy_qos = qos_param(p, "policy_qos", QoS(depth=1))
        self.port.subscribe(p.policy_topic, m.FLOAT64_ARRAY, self._on_policy, policy_qos)
        self.port.subscribe(p.estop_topic, BOOL, self._on_estop, qos_param(p, "estop_qos", DEFAULT))
        inputs = self.critic_inputs
        if inputs is not None and inputs.wants_ee:
            ee_qos = qos_param(p, "ee_qos", SENSOR_DATA)
            self.port.subscribe(p.ee_topic, m.POINT_STAMPED, lambda msg, rx: inputs.on_ee(msg), ee_qos)
        if inputs is not None and inputs.wants_observation:
            obs_qos = qos_param(p, "observation_qos", SENSOR_DATA)
            self.port.subscribe(
                p.observation_topic,
                m.FLOAT64_ARRAY,
                lambda msg, rx: inputs.on_observation(msg, rx.received_ns),
                obs_qos,
            )
        self.publish_errors = 0  # robot commands the middleware refused to send (counted, never raised)
        n = p.stats_max_ticks if p.stats_path else 0
        self.stats = {
            k: np.zeros(n, dtype=np.int64) for k in ("publish_ns", "state_ns", "late_ns", "work_ns")
        }
        self.n_stats = 0

    def _on_state(self, msg: Any, rx: Received) -> None:
        now = self.port.monotonic_ns()
        stamp = m.stamp_ns(msg)
        if stamp and stamp <= self.state_stamp_ns:  # a duplicate, or older than the one in use
            self.state_out_of_order += 1
            return
        try:
            self.q, self.qd = self.order(msg)
        except ValueError as e:
            print(f"spine-safety-node: {e}", file=sys.stderr)
            self.q = np.full(len(self.order.joint_names), np.nan)
        self.state_stamp_ns, self.state_rx_ns = stamp, now
        if not self.runner.started and np.all(np.isfinite(self.q)):
            self.runner.reset(self.q)

    def _critic_observation(self) -> np.ndarray | None:
        """The critic's observation from the latest joint state, end effector and observation
        topic (None until they have arrived, or when they do not build: the critic stage is
        then skipped)."""
        critic, inputs = self.runner.critic, self.critic_inputs
        if critic is None or inputs is None or self.q is None:
            return None
        state = inputs.fields({"joint_pos": self.q, "joint_vel": self.qd})
        try:
            return build_observation(state, critic.critic.contract.task.observation)
        except (ObservationError, KeyError):
            return None

    def _on_policy(self, msg: Any, rx: Received) -> None:
        self.runner.policy_command(np.asarray(msg.data, dtype=np.float64), self.port.monotonic_ns())

    def _on_estop(self, msg: Any, rx: Received) -> None:
        engage = bool(msg.data)
        if engage != self.runner.estop:
            self.estop_received_ns = rx.received_ns
        self.runner.estop_message(engage, self.port.monotonic_ns())

    def activate(self) -> None:
        warm = self._warm if self.params.warm_us > 0 else None
        self.tick_timer = self.port.timer(
            1.0 / self.params.rate_hz, self._tick, prepare=warm, prepare_s=self.params.warm_us * 1e-6
        )
        self.timers = [self.tick_timer, self.port.timer(1.0 / self.params.diagnostics_hz, self._diagnose)]

    def _warm(self) -> None:
        if self.runner.started and self.q is not None:
            self.runner.warm(self.q, self.port.monotonic_ns(), self._critic_observation())

    def _state_age(self, now_ns: int) -> float:
        return (now_ns - self.state_rx_ns) * 1e-9

    def _tick(self) -> None:
        t0 = time.perf_counter_ns()
        if not self.runner.started:
            return  # no finite joint state yet: nothing to hold, nothing is published
        now = self.port.monotonic_ns()
        report = self.runner.tick(self.q, self._state_age(now), now, self._critic_observation())
        bits = int(report.stages)
        self.stage_ticks[bits] = self.stage_ticks.get(bits, 0) + 1
        publish_ns = self.port.now_ns()
        try:
            self.cmd_pub.publish(self._command_msg(report.command, publish_ns))
        except Exception as e:  # a middleware error must not stop the loop; it is counted
            self.publish_errors += 1
            if self.publish_errors == 1:
                print(f"spine-safety-node: publishing the command failed: {e}", file=sys.stderr)
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

    def _command_msg(self, command: np.ndarray, stamp_ns: int) -> Any:
        if self.cmd_type == m.FLOAT64_ARRAY:
            return m.float64_array(command)
        return m.joint_trajectory(0, self.order.joint_names, command, self.traj_time_ns)

    def stage_counts(self) -> dict[str, int]:
        """Ticks on which each stage changed the command, by stage name."""
        counts: dict[str, int] = {}
        for bits, ticks in self.stage_ticks.items():
            for name in Stage(bits).names():
                counts[name] = counts.get(name, 0) + ticks
        return counts

    def health(self, port: PortHealth | None = None) -> dict[str, int]:
        """The loop's health so far: ticks, overruns, ticks in each mode-relevant stage, messages
        dropped (too big, malformed, out of order) and QoS incompatibilities seen (``port``: the
        port's health when the caller has it already)."""
        stages = self.stage_counts()
        port = port or self.port.health()
        return {
            "ticks": self.tick_timer.ticks,
            "overruns": self.tick_timer.overruns,
            "guard": stages.get("input_guard", 0),
            "hold": stages.get("watchdog", 0) - stages.get("damp", 0),
            "damp": stages.get("damp", 0),
            "estop": stages.get("estop", 0),
            "last_stage": stages.get("last_stage", 0),
            "state_out_of_order": self.state_out_of_order,
            "dropped_oversize": sum(port.oversize.values()),
            "dropped_malformed": sum(port.malformed.values()),
            "qos_incompatible": len(port.incompatible_qos),
            "publish_errors": self.publish_errors,
        }

    def _diagnose(self) -> None:
        r = self.runner
        mode = r.mode.value
        level = 0 if r.mode == Mode.TRACK else 2 if r.mode in (Mode.ESTOP, Mode.GUARD) else 1
        port = self.port.health()  # once: the DDS port reads every endpoint's QoS status for it
        level = max(level, 0 if port.ok else 2)  # a peer that never connects
        now = self.port.monotonic_ns()
        values = {
            "mode": mode,
            **self.health(port),
            "command_age_s": f"{r.command_age(now):.6f}",
            "state_age_s": f"{self._state_age(now):.6f}" if self.state_rx_ns else "inf",
            "estop": int(r.estop),
            "risk": f"{r.risk:.4f}",  # critic's Q_risk of the tracked command (nan: no critic)
            "critic_vetoes": r.vetoes,
            "estop_received_ns": self.estop_received_ns,
            "safety": self.params.safety,
            **{f"stage_{k}": v for k, v in sorted(self.stage_counts().items())},
            **port.diagnostic_values(),
        }
        self.diag_pub.publish(diagnostic(self.port, SAFETY_STATUS, level, mode, values))

    def deactivate(self) -> None:
        super().deactivate()  # no more commands: ros2_control keeps the last one (a hold)

    def finish(self) -> None:
        if self.params.health_path and hasattr(self, "tick_timer"):
            Path(self.params.health_path).write_text(json.dumps(self.health(), indent=2))
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
