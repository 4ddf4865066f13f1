"""spine-stack's nodes on DDS Security (each with its own enclave of a keystore made like
``spine-keystore create``), over real Cyclone DDS on loopback: the stack reaches its goals, the
operator's e-stop engages, and intruders (no credentials; credentials without permission),
each in its own process, can neither command the robot nor release the e-stop."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("cyclonedds")
pytest.importorskip("cryptography")

from deploy.logs import messages as m
from ros_nodes.dds import DdsPort
from ros_nodes.params import ParameterStore
from ros_nodes.port import DEFAULT, RELIABLE_QOS
from ros_nodes.security import SecurityUnavailable, create_enclave, plugin_dir
from ros_nodes.security.keystore import enclave_dir
from ros_nodes.security.policy import OPERATOR, create_spine_keystore
from ros_nodes.stack import loopback_uri, start_stack
from ros_nodes.topics import BOOL, SAFETY_STATUS, SIM_STATUS, TOPIC_ESTOP, bool_msg
from tests.ros_nodes.domains import fresh_domain
from tests.ros_nodes.test_security import _sender

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "tests/ros_nodes/data/reach_gcbc"


def test_secure_stack_obeys_only_its_identities(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        plugin_dir()
    except SecurityUnavailable as e:
        pytest.skip(str(e))
    ks = tmp_path / "keystore"
    create_spine_keystore(ks)
    unpermitted = create_enclave(ks, "/intruder", ["rt/chatter"], ["rt/chatter"])
    params = tmp_path / "params.yaml"
    params.write_text(
        f"/**:\n  ros__parameters:\n    robot: {REPO / 'configs/ros/arm7_reach.yaml'}\n    bundle: {BUNDLE}\n"
        "spine_sim_robot:\n  ros__parameters:\n    episodes: 0\n    episode_s: 3.0\n    home_s: 1.0\n"
    )
    domain = fresh_domain()
    monkeypatch.setenv("CYCLONEDDS_URI", loopback_uri())
    stack = start_stack(tmp_path, params, domain, nodes=("sim_robot", "safety", "policy"), keystore=ks)
    try:
        operator = DdsPort(
            "operator", ParameterStore("operator"), domain_id=domain, enclave=enclave_dir(ks, OPERATOR)
        )
        modes: list[str] = []
        episodes: list[dict[str, str]] = []

        def on_diag(msg: Any, rx: Any) -> None:
            for s in msg.status:
                values = {kv.key: kv.value for kv in s.values}
                if s.name == SAFETY_STATUS:
                    modes.append(values["mode"])
                elif s.name == SIM_STATUS:
                    episodes.append(values)

        operator.subscribe(m.TOPIC_DIAGNOSTICS, m.DIAGNOSTICS, on_diag, RELIABLE_QOS)
        estop = operator.publisher(TOPIC_ESTOP, BOOL, DEFAULT)

        def spin_until(cond: Any, seconds: float, what: str) -> None:
            for _ in range(round(seconds / 0.05)):
                if cond():
                    return
                dead = [n for n, p in stack.procs.items() if p.poll() is not None]
                assert not dead, f"{dead} exited:\n{stack.log(dead[0])}"
                operator.spin_for(0.05)
            raise AssertionError(f"timed out waiting for {what}\n{stack.log('safety')[-2000:]}")

        spin_until(lambda: len(episodes) >= 1, 90, "the first goal")
        assert "track" in modes
        topics = [m.TOPIC_COMMAND, m.TOPIC_POLICY_CMD, TOPIC_ESTOP]
        intruders = [_sender(domain, None, topics, bad=True), _sender(domain, unpermitted, topics, bad=True)]
        operator.spin_for(1.0)
        estop.publish(bool_msg(True))
        spin_until(lambda: modes[-1] == "estop", 5, "the operator's e-stop")
        n_estop = len(modes)
        for p in intruders:  # each publishes e-stop releases (and commands) for 5 s
            while p.poll() is None:
                operator.spin_for(0.1)
        denied = [line for p in intruders for line in p.stdout.read().splitlines() if "denied" in line]
        assert len(denied) == 3, "the unpermitted identity may create none of the writers"
        operator.spin_for(0.5)
        assert set(modes[n_estop:]) == {"estop"}, "an intruder released the e-stop"
        estop.publish(bool_msg(False))
        spin_until(lambda: modes[-1] == "track", 5, "the operator's release")
        n_release = len(episodes)
        spin_until(lambda: len(episodes) >= n_release + 2, 60, "a whole goal after the release")
        operator.close()
    finally:
        stack.stop_all()
    summary = json.loads((tmp_path / "sim_summary.json").read_text())
    assert summary["bad_commands"] == 0, "an intruder's 3-value command reached the robot"
    results = summary["results"]
    assert results[0]["success"] and results[n_release + 1]["success"], summary
    assert "WITHOUT DDS Security" not in stack.log("safety") + stack.log("policy")
    assert os.environ.get("ROS_SECURITY_ENABLE") is None  # the stack's env, not the test's
