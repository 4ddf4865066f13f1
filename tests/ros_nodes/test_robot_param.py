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


@pytest.mark.parametrize("task", ["push", "maze", "dmc"])
def test_the_sim_robot_node_refuses_tasks_it_cannot_simulate(task: str) -> None:
    """spine-sim-robot stands in for arms; other tasks get a refusal naming what they lack."""
    import sim
    from ros_nodes.sim_robot_node import check_simulable

    with pytest.raises(ValueError, match=f"task '{task}': the sim robot node simulates arm tasks"):
        check_simulable(task, sim.make(task).unwrapped)
    for arm_task in ("reach", "reach_obstacles", "widowx_reach"):
        check_simulable(arm_task, sim.make(arm_task).unwrapped)
