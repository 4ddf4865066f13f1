"""What the goal-conditioned families share at their edges: the graphs' input/output specs
(goal-env observations reach the graphs as ``observation`` and ``goal``:
``sim.execution.goal_env_inputs``)."""

from __future__ import annotations

from sim.contract import TensorSpec
from sim.spec import TaskSpec


def observation_input(spec: TaskSpec) -> TensorSpec:
    """The ``observation`` graph input (batch of 1)."""
    return TensorSpec("observation", (1, spec.obs_size), description="fields in task.observation order")


def goal_inputs(spec: TaskSpec) -> tuple[TensorSpec, TensorSpec]:
    """The ``observation`` and ``goal`` graph inputs (batch of 1)."""
    goal = TensorSpec("goal", (1, spec.goal.size), description=f"{spec.goal.name} ({spec.goal.unit})")
    return observation_input(spec), goal


def joint_target_output(spec: TaskSpec) -> TensorSpec:
    """The ``joint_target`` graph output (batch of 1): absolute joint targets."""
    return TensorSpec(
        "joint_target", (1, spec.n_joints), description=f"absolute joint targets ({spec.action.unit})"
    )


def joint_target_io_spec(spec: TaskSpec) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """``(observation, goal) -> joint_target``: the one-step families' graph."""
    return goal_inputs(spec), (joint_target_output(spec),)
