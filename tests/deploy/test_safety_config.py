"""One safety configuration (configs/safety/): every shipped file loads, a misspelt field is
refused by name, and the Controller, the ROS safety node and the benchmarks build the same
limits from it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from ruamel.yaml import YAML

from deploy.runtime.controller import Controller
from deploy.safety.config import SAFETY_DIR, SafetyConfig, load_safety_config
from ros_nodes.control import load_robot
from ros_nodes.inprocess import InProcessBus
from ros_nodes.params import ParameterStore
from ros_nodes.safety_node import SafetyNode

REPO = Path(__file__).resolve().parents[2]
ROBOT = REPO / "configs/ros/arm7_reach.yaml"
BUNDLE = REPO / "tests/ros_nodes/data/reach_gcbc"


@pytest.mark.parametrize("path", sorted(SAFETY_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_file_loads_and_names_every_field(path: Path) -> None:
    raw = YAML(typ="safe", pure=True).load(path.read_text())
    assert set(raw) == {f.name for f in dataclasses.fields(SafetyConfig)}, "write every field out"
    assert load_safety_config(path.stem) == load_safety_config(path)


def test_the_default_file_is_the_dataclass_default() -> None:
    assert load_safety_config() == SafetyConfig()
    assert SafetyConfig().frozen_ticks > 0, "frozen sensors are detected by default"


def test_a_misspelt_field_is_refused_by_name(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("margn: 0.1\n")
    with pytest.raises(ValueError, match=rf"{bad}: unknown field\(s\) \['margn'\]"):
        load_safety_config(bad)
    with pytest.raises(FileNotFoundError, match=r"shipped: .*default"):
        load_safety_config("no_such_config")
    with pytest.raises(ValueError, match="'sensor_timeout' must be finite"):
        SafetyConfig(sensor_timeout=float("nan"))


def test_a_box_without_a_chain_is_refused() -> None:
    with pytest.raises(ValueError, match="kinematic chain"):
        load_safety_config("arm7_table").limits(load_robot(ROBOT))


def _node(**params: object) -> SafetyNode:
    store = ParameterStore("spine_safety")
    for k, v in {"robot": str(ROBOT), "bundle": str(BUNDLE), "rate_hz": 1000.0, **params}.items():
        store.set(k, v, "test")
    node = SafetyNode(InProcessBus().port("spine_safety", store))
    node.configure()
    return node


def test_controller_and_safety_node_enforce_the_same_configuration() -> None:
    robot = load_robot(ROBOT)
    ctrl = Controller(BUNDLE, robot, critic=False)
    node_limits = _node().runner.limits
    for name in ("q_min", "q_max", "v_max"):
        np.testing.assert_array_equal(getattr(ctrl.filter.limits, name), getattr(node_limits, name))
    for name in ("watchdog_periods", "damp_periods", "sensor_timeout", "frozen_ticks", "policy_period"):
        assert getattr(ctrl.filter.limits, name) == getattr(node_limits, name), name
    assert node_limits.tick_period == 1e-3 and ctrl.filter.limits.tick_period == 1 / robot.control_hz


def test_node_parameters_override_single_fields() -> None:
    node = _node(**{"safety.margin": 0.1, "safety.frozen_ticks": 7})
    lim = node.runner.limits
    np.testing.assert_allclose(lim.q_min, np.array(load_robot(ROBOT).joint_pos_min) + 0.1)
    assert lim.frozen_ticks == 7
    with pytest.raises(ValueError, match="unknown field\\(s\\) \\['margn'\\]"):
        _node(**{"safety.margn": 0.1})
