"""The nodes together on the in-process transport (simulated clock, deterministic): the
watchdog counted in the safety node's ticks, the e-stop, and a contract mismatch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deploy import messages as m
from ros_nodes.control import Mode
from ros_nodes.inprocess import InProcessBus
from ros_nodes.params import ParameterStore
from ros_nodes.policy_node import PolicyNode
from ros_nodes.port import LATCHED_QOS, RELIABLE_QOS, QoS
from ros_nodes.safety_node import SafetyNode
from ros_nodes.sim_robot_node import SimRobotNode
from ros_nodes.topics import BOOL, SAFETY_STATUS, TOPIC_ESTOP, bool_msg
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


def test_killed_policy_holds_then_damps_counted_in_ticks() -> None:
    bus, nodes, probe = _stack(BUNDLE)
    bus.run_for(1.0)
    safety = nodes["safety"]
    assert safety.runner.mode == Mode.TRACK
    nodes["policy"].port.shutdown()  # as if the process died
    killed_ns = bus.now_ns
    bus.run_for(1.5)
    r = safety.runner
    hold, damp = probe.first("hold"), probe.first("damp")
    assert int(hold["ticks_since_policy"]) == r.stale_ticks + 1 == 3 * 20 + 1  # 3 periods at 500/25 Hz
    assert int(damp["ticks_since_policy"]) == r.stale_ticks + r.hold_ticks + 1
    held = [c for t, c in probe.commands if killed_ns + 62 * 2_000_000 < t < killed_ns + 100 * 2_000_000]
    assert len(held) > 10 and np.ptp(np.array(held), axis=0).max() < 1e-5, "hold keeps one command"
    q = nodes["sim"].physics.joint_pos()
    assert np.abs(probe.commands[-1][1] - q).max() < 0.01, "damping settles on the measured position"
    assert safety.runner.mode == Mode.DAMP


def test_estop_holds_from_the_first_command_until_release() -> None:
    bus, _, probe = _stack(BUNDLE)
    bus.run_for(0.6)
    n_before = len(probe.commands)
    last = probe.commands[-1][1]
    probe.estop.publish(bool_msg(True))
    bus.run_for(0.3)
    during = [c for _, c in probe.commands[n_before:]]
    assert len(during) >= 140 and all(np.array_equal(c, last) for c in during)
    assert probe.diags[-1]["mode"] == "estop"
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
