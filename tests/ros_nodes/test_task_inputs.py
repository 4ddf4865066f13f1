"""What the policy node reads besides the joint states: the goal (a planar one from a point
with z = 0), the end effector, and /spine/observation, split by the task's fields; a message of
the wrong size is dropped and said so, never half-used."""

from __future__ import annotations

import numpy as np

import sim
from deploy.logs import messages as m
from ros_nodes.task_inputs import TaskInputs


def test_a_planar_goal_is_the_points_first_two_values() -> None:
    inputs = TaskInputs(sim.make("maze").task_spec, sim.make("maze").task_spec.observation)
    assert inputs.wants_goal and not inputs.wants_ee and not inputs.wants_observation
    assert inputs.missing() == ["goal"]
    inputs.on_goal(m.point_stamped(0, np.array([1.5, -2.5])))
    state = inputs.fields({"joint_pos": np.zeros(2), "joint_vel": np.zeros(2)})
    assert np.array_equal(state["goal"], [1.5, -2.5]) and inputs.missing() == []


def test_push_reads_its_observation_topic() -> None:
    spec = sim.make("push").task_spec
    inputs = TaskInputs(spec, spec.observation)
    assert inputs.wants_observation and not inputs.wants_ee  # ee_pos comes inside the observation
    row = np.arange(spec.obs_size, dtype=np.float64)
    assert inputs.on_observation(m.float64_array(row), 7) == ""
    state = inputs.fields({"joint_pos": np.full(7, -1.0), "joint_vel": np.zeros(7)})
    assert np.array_equal(state["joint_pos"], row[:7])  # one snapshot: the observation's
    assert np.array_equal(state["object_pos"], row[17:20]) and inputs.observation_ns == 7


def test_a_wrong_sized_observation_is_dropped_by_name() -> None:
    spec = sim.make("dmc").task_spec
    inputs = TaskInputs(spec, spec.observation)
    error = inputs.on_observation(m.float64_array(np.zeros(spec.obs_size + 1)), 1)
    assert "dropped" in error and "to_target:2" in error
    assert inputs.rejected == 1 and inputs.missing() == ["goal", "observation"]
