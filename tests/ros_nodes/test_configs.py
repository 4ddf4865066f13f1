"""The robot config the nodes load is the simulator's arm7 as `reach` sees it."""

from __future__ import annotations

from pathlib import Path

import pytest

import sim
from ros_nodes.control import load_robot

REPO = Path(__file__).resolve().parents[2]


def test_robot_config_matches_the_simulator() -> None:
    assert load_robot(REPO / "configs/ros/arm7_reach.yaml") == sim.make("reach").task_spec


def test_bad_robot_config_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "robot.yaml"
    bad.write_text((REPO / "configs/ros/arm7_reach.yaml").read_text().replace("control_hz", "control_hertz"))
    with pytest.raises(ValueError, match=r"robot.yaml: .*control_hertz"):
        load_robot(bad)
    with pytest.raises(FileNotFoundError, match=r"nope\.yaml"):
        load_robot(tmp_path / "nope.yaml")


def test_launch_file_starts_the_stack_nodes() -> None:
    """Same node set as spine-stack, by console scripts that pyproject installs (no ROS here to
    run ``ros2 launch`` itself)."""
    import ast
    import tomllib

    from ros_nodes.stack import NODES

    repo = REPO
    tree = ast.parse((repo / "launch/spine.launch.py").read_text())
    table = next(n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "NODES")
    launched = {elt.elts[0].value: elt.elts[1].value for elt in table.value.elts}
    scripts = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["scripts"]
    modules = {scripts[s].split(":")[0] for s in launched}
    assert modules == set(NODES.values())
    assert set(launched.values()) == {"spine_recorder", "spine_sim_robot", "spine_safety", "spine_policy"}
