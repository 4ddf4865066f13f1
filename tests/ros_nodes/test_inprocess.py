"""The nodes together on the in-process transport (simulated clock, deterministic): the
filter's watchdog on the command's age, the e-stop, and a contract mismatch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deploy.logs import messages as m
from ros_nodes.control import Mode
from ros_nodes.inprocess import InProcessBus
from ros_nodes.params import ParameterStore
from ros_nodes.policy_node import PolicyNode
from ros_nodes.port import LATCHED_QOS, RELIABLE_QOS, QoS
from ros_nodes.safety_node import SafetyNode
from ros_nodes.sim_robot_node import SimRobotNode
from ros_nodes.topics import BOOL, JOINT_TRAJECTORY, SAFETY_STATUS, TOPIC_ESTOP, bool_msg
from sim.contract import ContractMismatch

REPO = Path(__file__).resolve().parents[2]
ROBOT = str(REPO / "configs/ros/arm7_reach.yaml")
BUNDLE = Path(__file__).resolve().parent / "data" / "reach_gcbc"  # see data/README.md


def _params(name: str, **values: Any) -> ParameterStore:
    store = ParameterStore(name)
    for k, v in values.items():
        store.set(k, v, "test")
    return store


class Probe:
    """A test node recording safe commands and the safety node's diagnostics."""

    def __init__(self, bus: InProcessBus) -> None:
        self.port = bus.port("probe")
        self.commands: list[tuple[int, np.ndarray]] = []
        self.diags: list[dict[str, str]] = []
        self.port.subscribe(m.TOPIC_COMMAND, m.FLOAT64_ARRAY, self._cmd, QoS(depth=1))
        self.port.subscribe(m.TOPIC_DIAGNOSTICS, m.DIAGNOSTICS, self._diag, RELIABLE_QOS)
        self.estop = self.port.publisher(TOPIC_ESTOP, BOOL, LATCHED_QOS)

    def _cmd(self, msg: Any, rx: Any) -> None:
        self.commands.append((rx.received_ns, np.asarray(msg.data).copy()))

    def _diag(self, msg: Any, rx: Any) -> None:
        for s in msg.status:
            if s.name == SAFETY_STATUS:
                self.diags.append({kv.key: kv.value for kv in s.values})

    def first(self, mode: str) -> dict[str, str]:
        return next(d for d in self.diags if d["mode"] == mode)


def _stack(bundle: Path, rate_hz: float = 500.0, **safety: Any) -> tuple[InProcessBus, dict[str, Any], Probe]:
    bus = InProcessBus()
    probe = Probe(bus)
    common = {"robot": ROBOT, "bundle": str(bundle)}
    safety_params = _params("spine_safety", rate_hz=rate_hz, **common, **safety)
    nodes = {
        "sim": SimRobotNode(bus.port("sim", _params("spine_sim_robot", episode_s=10.0))),
        "safety": SafetyNode(bus.port("safety", safety_params)),
        "policy": PolicyNode(bus.port("policy", _params("spine_policy", **common))),
    }
    for n in nodes.values():
        n.configure()
    for n in nodes.values():
        n.activate()
    return bus, nodes, probe


def test_killed_policy_holds_then_damps_on_the_command_s_age() -> None:
    """The filter's own watchdog, fed the command's age on the node's monotonic clock: hold
    past ``watchdog_periods``, damp past ``damp_periods`` (configs/safety/default.yaml)."""
    bus, nodes, probe = _stack(BUNDLE)
    bus.run_for(1.0)
    safety = nodes["safety"]
    assert safety.runner.mode == Mode.TRACK
    nodes["policy"].port.shutdown()  # as if the process died
    bus.run_for(1.5)
    r = safety.runner
    lim = r.limits
    hold_s, damp_s = lim.watchdog_periods * lim.policy_period, lim.damp_periods * lim.policy_period
    assert (hold_s, damp_s) == (3 / 25, 10 / 25)
    hold, damp = probe.first("hold"), probe.first("damp")
    tick = 1 / 500
    assert hold_s - 1e-6 < float(hold["command_age_s"]) <= hold_s + tick + 1e-6
    assert damp_s - 1e-6 < float(damp["command_age_s"]) <= damp_s + tick + 1e-6
    t_hold, t_damp = r.command_ns + round((hold_s + tick) * 1e9), r.command_ns + round(damp_s * 1e9)
    held = [c for t, c in probe.commands if t_hold < t < t_damp]
    assert len(held) > 100 and np.ptp(np.array(held), axis=0).max() < 1e-5, "hold keeps one command"
    q = nodes["sim"].sim.state()["joint_pos"]
    assert np.abs(probe.commands[-1][1] - q).max() < 0.01, "damping settles on the measured position"
    assert safety.runner.mode == Mode.DAMP and int(probe.diags[-1]["damp"]) > 0


def test_estop_stops_the_arm_and_latches_until_release() -> None:
    """The e-stop is the filter's stage: the command follows the measured position (stop where
    the arm is), still through the envelope and the rate limit; it stays engaged, even when
    its publisher goes away, until an explicit release."""
    bus, nodes, probe = _stack(BUNDLE)
    bus.run_for(0.6)
    n_before = len(probe.commands)
    operator = bus.port("operator")
    operator.publisher(TOPIC_ESTOP, BOOL, LATCHED_QOS).publish(bool_msg(True))
    operator.shutdown()  # the operator's node leaves: the e-stop stays engaged
    bus.run_for(0.6)
    during = np.array([c for _, c in probe.commands[n_before:]])
    assert len(during) >= 290 and probe.diags[-1]["mode"] == "estop"
    assert int(probe.diags[-1]["stage_estop"]) >= 290
    q = nodes["sim"].sim.state()["joint_pos"]
    assert np.abs(during[-1] - q).max() < 1e-3, "the command is where the arm stopped"
    assert np.ptp(during[-50:], axis=0).max() < 1e-4, "the arm has stopped"
    step = np.abs(np.diff(during, axis=0)).max(axis=0)
    assert np.all(step <= nodes["safety"].runner.limits.max_step + 1e-12), "still rate-limited"
    probe.estop.publish(bool_msg(False))
    n_release = len(probe.commands)
    bus.run_for(0.3)
    after = np.array([c for _, c in probe.commands[n_release:]])
    assert np.ptp(after, axis=0).max() > 1e-4, "tracking resumes after release"
    assert probe.diags[-1]["mode"] == "track"


def test_contract_mismatch_refuses_to_configure(tmp_path: Path) -> None:
    robot = tmp_path / "robot.yaml"
    robot.write_text(Path(ROBOT).read_text().replace("joint4,", "elbow,"))
    for cls, name in ((PolicyNode, "spine_policy"), (SafetyNode, "spine_safety")):
        node = cls(InProcessBus().port(name, _params(name, robot=str(robot), bundle=str(BUNDLE))))
        with pytest.raises(ContractMismatch, match=r"joint_names\[3\].*'joint4'.*'elbow'"):
            node.configure()


def test_safety_node_runs_the_bundles_critic(tmp_path: Path) -> None:
    """A bundle that ships critic.onnx: the safety node loads it (contract-checked against the
    robot) and judges tracked commands with it, reporting the risk in its diagnostics."""
    import shutil

    from tests.deploy.test_safety_critic import untrained_critic

    bundle = tmp_path / "bundle"
    shutil.copytree(BUNDLE, bundle)
    shutil.copyfile(untrained_critic("reach", tmp_path / "critic"), bundle / "critic.onnx")
    bus, nodes, probe = _stack(bundle)
    bus.run_for(0.6)
    runner = nodes["safety"].runner
    assert runner.critic is not None and runner.mode == Mode.TRACK
    assert 0.0 <= runner.risk <= 1.0
    assert 0.0 <= float(probe.diags[-1]["risk"]) <= 1.0
    assert 0 <= int(probe.diags[-1]["critic_vetoes"]) <= runner.vetoes  # diagnostics lag a tick or so


def test_warming_the_filter_before_each_tick_changes_no_command(tmp_path: Path) -> None:
    """``warm_us``: the safety node ticks its filter's shadow twin before every tick (here just
    before, in simulated time); the commands it publishes are exactly those without."""
    import shutil

    from tests.deploy.test_safety_critic import untrained_critic

    bundle = tmp_path / "bundle"
    shutil.copytree(BUNDLE, bundle)
    shutil.copyfile(untrained_critic("reach", tmp_path / "critic"), bundle / "critic.onnx")
    runs = []
    for warmed in (False, True):
        bus, nodes, probe = _stack(bundle, warm_us=150.0 if warmed else 0.0)
        bus.run_for(0.5)
        assert nodes["safety"].runner.filter.engine == "native"
        assert (nodes["safety"].runner.filter._shadow is not None) == warmed
        runs.append(np.array([c for _, c in probe.commands]))
    assert len(runs[0]) > 200
    np.testing.assert_array_equal(runs[0], runs[1])


def test_stale_and_out_of_order_joint_states_hold() -> None:
    """Joint states whose stamp is not after the one in use (duplicates, late samples, a
    sensor clock gone back) are dropped and counted; with no fresh state for longer than
    ``sensor_timeout`` the input guard holds the last safe command."""
    bus, nodes, probe = _stack(BUNDLE)
    bus.run_for(0.6)
    safety = nodes["safety"]
    stamp = safety.state_stamp_ns
    intruder = bus.port("old_sensor").publisher(m.TOPIC_JOINT_STATES, m.JOINT_STATE, QoS(depth=5))
    names = safety.order.joint_names
    for back_ns in (0, 1_000_000, 10**12):  # the same stamp, 1 ms late, a clock 1000 s behind
        intruder.publish(m.joint_state(stamp - back_ns, names, np.full(7, 3.0), np.zeros(7)))
    bus.run_for(0.002)
    assert safety.state_out_of_order >= 3
    assert np.all(safety.q < 3.0), "a late sample never replaces the state in use"
    nodes["sim"].port.shutdown()  # the sensor stops
    n = len(probe.commands)
    bus.run_for(0.3)
    assert probe.diags[-1]["mode"] == "guard" and int(probe.diags[-1]["guard"]) > 100
    held = np.array([c for _, c in probe.commands[n + 30 :]])
    assert len(held) > 100 and np.ptp(held, axis=0).max() == 0.0, "the guard holds one command"


def test_joint_trajectory_output_for_joint_trajectory_controller() -> None:
    """``command_type: joint_trajectory``: the safe command as a one-point JointTrajectory with
    the robot's joint names, reached two ticks ahead (what joint_trajectory_controller reads)."""
    topic = "/joint_trajectory_controller/joint_trajectory"
    bus, _, probe = _stack(BUNDLE, command_topic=topic, command_type="joint_trajectory")
    got: list[Any] = []
    probe.port.subscribe(topic, JOINT_TRAJECTORY, lambda msg, rx: got.append(msg), QoS(depth=10))
    bus.run_for(0.3)
    assert len(got) > 100
    msg = got[-1]
    assert list(msg.joint_names) == [f"joint{i}" for i in range(1, 8)] and len(msg.points) == 1
    point = msg.points[0]
    assert point.positions.shape == (7,) and np.all(np.isfinite(point.positions))
    assert (point.time_from_start.sec, point.time_from_start.nanosec) == (0, 4_000_000)  # 2 ticks at 500 Hz
    with pytest.raises(ValueError, match="command_type 'pose'"):
        _stack(BUNDLE, command_type="pose")
