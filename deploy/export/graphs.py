"""The graphs that go into a bundle: each family's declared twins, after the export-time passes.

A family declares its graphs in its own file (``policy.graphs()``, ``policies.graphs``): role
(``policy.onnx`` or ``high_level.onnx``), tensors, its own torch function (the parity
reference), how often it runs, and ``export()``, which builds the twin with the statistics that
random parity inputs are drawn around and a fallback. This module collects them into an
``ExportPlan`` and applies the export-time optimisations to every twin, whatever its family:

- ``fold_normalizers``: every ``nn.Sequential(Standardize, nn.Linear, ...)`` (a normalizer in
  front of a layer, ``policies.twins.standardized``) becomes the layer alone with ``W / std``
  and ``b - (W / std) mean`` (folded in float64; exact up to rounding): one Gemm instead of a
  Sub, a Div and a Gemm. The goal-conditioned MLPs (``StepMLPTwin``: 3 hidden layers, 13
  onnxruntime nodes) and HIQL's high level get it; the diffusion twins fold their own
  normalizers into the unrolled solve (``policies.diffusion_twin``, ``policies.student_twin``).

The contract fields the family fills (``policies.graphs.contract_fields_of``) ride along for the
export to write. Torch is imported here: only the export runs this module.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from deploy.runtime.bundle import HIGH_LEVEL_FILE, POLICY_FILE
from policies.graphs import HIGH_LEVEL, POLICY, Stats, contract_fields_of, graph_map
from policies.twins import Standardize
from sim.contract import TensorSpec

FILES = {POLICY: POLICY_FILE, HIGH_LEVEL: HIGH_LEVEL_FILE}  # graph role -> file in the bundle


@dataclass
class ExportGraph:
    """One graph of a bundle."""

    file: str  # file name inside the bundle
    twin: nn.Module  # traced into ONNX; forward takes the inputs in order
    reference: Callable[..., torch.Tensor]  # the family's own function the twin must equal
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    stats: dict[str, Stats]  # input name -> (mean, std) that parity inputs are drawn around
    fallback: nn.Module | None = None  # exported instead if ``twin`` fails the parity check


@dataclass
class ExportPlan:
    """The graphs of a family and the contract fields it fills (beyond the policy graph's tensors)."""

    graphs: list[ExportGraph]
    contract_fields: dict[str, Any] = field(default_factory=dict)


def fold_normalizer(net: nn.Sequential, mean: torch.Tensor, std: torch.Tensor) -> nn.Sequential:
    """A copy of ``net`` that takes raw inputs: ``net((x - mean) / std)`` with the first Linear's
    weights ``W / std`` and bias ``b - (W / std) mean`` (folded in float64; exact up to rounding)."""
    net = copy.deepcopy(net).eval()
    first = net[0]
    if not isinstance(first, nn.Linear):
        raise ValueError("fold_normalizer: net must start with nn.Linear")
    with torch.no_grad():
        w = first.weight.double() / std.double()
        first.bias.copy_(first.bias.double() - w @ mean.double())
        first.weight.copy_(w)
    return net


def _foldable(m: nn.Module) -> bool:
    return (
        isinstance(m, nn.Sequential)
        and len(m) > 1
        and isinstance(m[0], Standardize)
        and isinstance(m[1], nn.Linear)
    )


def fold_normalizers(twin: nn.Module) -> nn.Module:
    """``twin`` with every ``Sequential(Standardize, Linear, ...)`` inside it folded
    (``fold_normalizer``); modules are replaced in place, the twin is returned."""
    if _foldable(twin):
        std = twin[0]
        return fold_normalizer(nn.Sequential(*list(twin)[1:]), std.mean, std.std)
    for name, child in twin.named_children():
        setattr(twin, name, fold_normalizers(child))
    return twin


PASSES: tuple[Callable[[nn.Module], nn.Module], ...] = (fold_normalizers,)  # on every twin, in order


def optimize(twin: nn.Module) -> nn.Module:
    """The export-time passes applied to ``twin``."""
    for p in PASSES:
        twin = p(twin)
    return twin


def export_plan(policy: Any) -> ExportPlan:
    """The plan for ``policy``'s declared graphs; fails (``NotFitted``) if a normalizer was never
    fitted. The policy is put in eval mode (its functions are the parity references)."""
    policy.eval()
    graphs = []
    for role, g in graph_map(policy).items():
        t = g.export()
        fallback = None if t.fallback is None else optimize(t.fallback)
        graphs.append(
            ExportGraph(FILES[role], optimize(t.module), g.reference, g.inputs, g.outputs, t.stats, fallback)
        )
    return ExportPlan(graphs, contract_fields_of(policy))
