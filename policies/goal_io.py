"""What the goal-conditioned families share at their edges: goal-env observations in, the
graph's input/output specs out, and the tensor-only copy handed to the ONNX export."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from policies.normalizer import Normalizer
from sim.contract import TensorSpec
from sim.spec import TaskSpec


def goal_env_tensors(obs: dict[str, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(observation (1, obs), desired_goal (1, g))`` float32 from one goal-env observation dict."""
    o = torch.as_tensor(obs["observation"], dtype=torch.float32)[None]
    g = torch.as_tensor(obs["desired_goal"], dtype=torch.float32)[None]
    return o, g


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


def export_copy(module: nn.Module, *normalizers: tuple[str, Normalizer]) -> nn.Module:
    """A tensor-only eval copy of ``module`` for ONNX export; fails naming a normalizer that
    was never fitted."""
    for name, norm in normalizers:
        norm.check_fitted(name)
    return copy.deepcopy(module).eval()
