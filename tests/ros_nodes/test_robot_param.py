"""The nodes' shared ``robot`` parameter names any arm: a task-spec YAML (as before, no MuJoCo)
or a robot config (configs/robot/ name or YAML path) whose spec is derived from its model."""

from __future__ import annotations

import pytest

from ros_nodes.control import load_robot
from ros_nodes.sim_robot_node import sim_robot_kwargs
from tests.robots import ROBOTS, URDF_ROBOT

ARM7_SPEC = "configs/ros/arm7_reach.yaml"


def test_a_task_spec_yaml_still_names_the_task_arm() -> None:
    assert load_robot(ARM7_SPEC).robot == "arm7"
    assert sim_robot_kwargs("reach", ARM7_SPEC) == {}
    assert sim_robot_kwargs("reach", "") == {}


@pytest.mark.parametrize("robot", ROBOTS)
def test_a_robot_config_gives_its_spec_and_sim(robot: str) -> None:
    spec = load_robot(robot)
    assert spec.name == "reach" and spec.n_joints in (4, 6, 7)
    assert sim_robot_kwargs("reach", robot) == {"robot": robot}


def test_an_unknown_robot_is_refused() -> None:
    with pytest.raises(FileNotFoundError, match="ur3"):
        load_robot("ur3")
    assert URDF_ROBOT.endswith(".yaml")


def test_a_registered_task_names_its_own_spec() -> None:
    import sim

    for task in ("push", "maze", "dmc"):
        assert load_robot(task) == sim.make(task).task_spec
        assert sim_robot_kwargs(task, task) == {}


def test_the_bundle_sets_the_config_its_task_was_trained_in() -> None:
    """As spine-run does: a dm_control bundle names its domain and task; a bundle of another
    task adds nothing."""
    from pathlib import Path

    data = Path(__file__).resolve().parent / "data"
    kwargs = sim_robot_kwargs("dmc", "dmc", str(data / "dmc_sac"))
    assert kwargs["domain"] == "reacher" and kwargs["task"] == "easy"
    assert load_robot("dmc", data / "dmc_sac").robot == "dm_control/reacher"
    assert sim_robot_kwargs("dmc", "dmc", str(data / "reach_gcbc")) == {}
