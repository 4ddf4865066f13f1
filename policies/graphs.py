"""A family's graphs: what runs at inference, how often, and the export twin of each.

Every family declares them in its own file, ``policy.graphs()``:

    PolicyGraph(POLICY, inputs, outputs, reference=policy.forward, export=..., every=1)
    PolicyGraph(HIGH_LEVEL, ...)        # hierarchical families: the high level

- ``reference`` is the family's own torch function. Training-time evaluation runs it through
  the shipped executor (``policies.torch_graph``); the export checks the twin against it.
- ``export()`` builds the twin (rsl_rl's ``as_onnx()``): a tensor-only module with the
  normalizers inside, the statistics that parity inputs are drawn around, and the module
  exported instead if the twin ever fails parity. It fails (``NotFitted``) if a normalizer
  was never fitted. Export-time optimisations (``deploy.export.graphs``) are applied to it there.
- ``every``: ticks between calls. A chunk graph's is ``execute_steps`` (receding horizon); the
  high level's is ``high_level_every`` (its output held in between).

The contract fields a family fills come from here and from its ``contract_fields()`` (chunk
and sampler fields), in one place: ``family_contract``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from policies.normalizer import Normalizer
from sim.contract import PolicyContract, TensorSpec

POLICY, HIGH_LEVEL = "policy", "high_level"  # roles: the contract's inputs/outputs, high_level_*
Stats = tuple[np.ndarray, np.ndarray]  # mean, std of one input (flat, float32)


@dataclass
class Twin:
    """What the export traces for one graph."""

    module: nn.Module  # tensor-only; forward takes the graph's inputs in order
    stats: dict[str, Stats]  # input name -> (mean, std) that parity inputs are drawn around
    fallback: nn.Module | None = None  # exported instead if ``module`` fails the parity check


@dataclass(frozen=True)
class PolicyGraph:
    """One graph of a family (batch of 1)."""

    role: str  # POLICY or HIGH_LEVEL
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    reference: Callable[..., torch.Tensor]  # the family's own function (batched tensors in order)
    export: Callable[[], Twin]  # builds the export twin; fails if a normalizer was never fitted
    every: int = 1  # control ticks between calls


def graph_map(policy: Any) -> dict[str, PolicyGraph]:
    """``policy.graphs()`` by role; the policy graph is required."""
    graphs = {g.role: g for g in policy.graphs()}
    if POLICY not in graphs:
        raise ValueError(f"policy family {policy.family!r} declares no {POLICY!r} graph")
    return graphs


def contract_fields_of(policy: Any) -> dict[str, Any]:
    """The contract fields a family fills beyond its policy graph's tensors: the execution
    schedule (``execute_steps``, the high level's tensors, ``high_level_every`` and
    ``high_level_hz``) and the family's own ``contract_fields()`` (chunk, sampler)."""
    graphs = graph_map(policy)
    fields: dict[str, Any] = {"execute_steps": graphs[POLICY].every}
    high = graphs.get(HIGH_LEVEL)
    if high is not None:
        fields.update(
            high_level_inputs=high.inputs,
            high_level_outputs=high.outputs,
            high_level_every=high.every,
            high_level_hz=policy.spec.control_hz / high.every,
        )
    if hasattr(policy, "contract_fields"):
        fields.update(policy.contract_fields())
    return fields


def family_contract(policy: Any) -> PolicyContract:
    """The contract as the family defines it (no weights hash, no training config)."""
    low = graph_map(policy)[POLICY]
    return PolicyContract(
        family=policy.family,
        task=policy.spec,
        inputs=low.inputs,
        outputs=low.outputs,
        policy_hz=policy.spec.control_hz,
        **contract_fields_of(policy),
    )


def norm_stats(norm: Normalizer, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A fitted normalizer's ``(mean, std)`` (float32 copies); ``NotFitted`` names it if not."""
    norm.check_fitted(name)
    return norm.mean.detach().float().clone(), norm.std.detach().float().clone()


def as_stats(mean: torch.Tensor, std: torch.Tensor) -> Stats:
    return mean.numpy().copy(), std.numpy().copy()


def unit_stats(t: TensorSpec) -> Stats:
    """Standard-normal parity inputs (noise, a unit-length subgoal, an unknown input)."""
    n = int(np.prod(t.shape[1:]))
    return np.zeros(n, np.float32), np.ones(n, np.float32)
