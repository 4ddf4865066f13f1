"""Node parameters: ROS 2 YAML files + ``-p name:=value``, typed, failing by name."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ros_nodes.params import ParameterError, ParameterStore, load_params
from ros_nodes.policy_node import PolicyParams
from ros_nodes.recorder_node import RecorderParams
from ros_nodes.safety_node import SafetyParams
from ros_nodes.sim_robot_node import SimRobotParams

STACK_YAML = Path(__file__).resolve().parents[2] / "configs/ros/stack.yaml"


@dataclass
class Demo:
    rate_hz: float = 1.0
    name: str = "x"
    count: int = 0
    flag: bool = False
    topics: list[str] = field(default_factory=list)


def _store(tmp_path: Path, text: str, argv: list[str] = ()) -> ParameterStore:
    f = tmp_path / "p.yaml"
    f.write_text(text)
    store = ParameterStore("demo")
    rest = store.parse_args(["--ros-args", "--params-file", str(f), *argv])
    assert rest == []
    return store


def test_file_then_command_line(tmp_path: Path) -> None:
    text = (
        "/**:\n  ros__parameters:\n    name: shared\n    other: 1\n"
        "demo:\n  ros__parameters:\n    rate_hz: 500\n"
    )
    store = _store(tmp_path, text, ["-p", "count:=3", "-p", "topics:=[/a, /b]", "-p", "flag:=true"])
    p = load_params(store, store.get, Demo)
    assert p == Demo(rate_hz=500.0, name="shared", count=3, flag=True, topics=["/a", "/b"])
    assert isinstance(p.rate_hz, float)  # an int in YAML is fine for a float


def test_unknown_and_mistyped_parameters_name_the_field(tmp_path: Path) -> None:
    store = _store(tmp_path, "demo:\n  ros__parameters:\n    rate_hs: 5.0\n")
    with pytest.raises(ParameterError, match=r"unknown parameter\(s\) rate_hs from .*p.yaml \[demo\]"):
        load_params(store, store.get, Demo)
    store = _store(tmp_path, "demo:\n  ros__parameters:\n    count: many\n")
    with pytest.raises(ParameterError, match=r"'count' .* must be int, got 'many'"):
        load_params(store, store.get, Demo)
    with pytest.raises(ParameterError, match="does not exist"):
        ParameterStore("demo").load_file(tmp_path / "missing.yaml")
    with pytest.raises(ParameterError, match="name:=value"):
        ParameterStore("demo").parse_args(["-p", "count=3"])


@pytest.mark.parametrize(
    "name,cls",
    [
        ("spine_policy", PolicyParams),
        ("spine_safety", SafetyParams),
        ("spine_sim_robot", SimRobotParams),
        ("spine_recorder", RecorderParams),
    ],
)
def test_stack_yaml_is_valid_for_every_node(name: str, cls: type) -> None:
    store = ParameterStore(name)
    store.load_file(STACK_YAML)
    assert store.node_specific, f"stack.yaml has no section for {name}"
    load_params(store, store.get, cls)
