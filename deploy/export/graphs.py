"""Export twins: for each policy family, the tensor-only graphs that go into the bundle.

An ``ExportPlan`` lists the graphs of a family (``policy.onnx``, and ``high_level.onnx`` for
hierarchical ones), each as a twin module to trace, the family's own torch function it must
equal (the parity reference), its tensors, and the statistics that random parity inputs are
drawn around; plus the contract fields the plan adds (``execute_steps``, high-level tensors).

- goal-conditioned MLPs (gcbc, gcivl's actor, sac_her's actor mean): ``FoldedMLP``, with the
  normalizers inside the graph, folded into the first layer's weights and bias
  (``fold_normalizer``: one Concat and one Gemm instead of two Sub, two Div, a Concat and a
  Gemm), and the bounded step ``q + max_delta * tanh(.)`` as one Gemm with ``C = q``.
- diffusion and its one-step student: the whole fixed-step solve unrolled into one graph,
  noise an input; for Euler/DDIM/Heun without guidance the leaner ``EulerChunkTwin``
  (``deploy.export.diffusion``), else (or if that ever fails parity) the policy's own
  ``forward(observation, goal, noise)`` traced as it is.
  The one-step MLP student (``net=mlp``) has its own twin, ``deploy.export.student``.
- hiql: two graphs, the high level ``(observation, goal) -> subgoal_rep`` (``FoldedHighLevel``,
  falling back to tracing ``high_level`` if it fails parity) and the low level
  ``(observation, subgoal_rep) -> joint_target`` (a ``FoldedMLP``).

A family outside these registers its own plan with ``@register_exporter("name")``; without one,
a policy's ``export_module()`` and ``io_spec()`` make a single-graph plan.
Torch is imported here: only the export runs this module.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from deploy.export.diffusion import EulerChunkTwin, lean_twin_applies
from deploy.export.student import StudentMLPTwin, mlp_student_applies
from deploy.runtime.bundle import HIGH_LEVEL_FILE, POLICY_FILE
from policies.value import unit_scale
from sim.contract import TensorSpec

Stats = tuple[np.ndarray, np.ndarray]  # mean, std of one input (flat)


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
    """The graphs of a family and the contract fields the export adds."""

    graphs: list[ExportGraph]
    contract_fields: dict[str, Any] = field(default_factory=dict)


_EXPORTERS: dict[str, Callable[[Any], ExportPlan]] = {}


def register_exporter(*families: str) -> Callable[[Callable[[Any], ExportPlan]], Callable[[Any], ExportPlan]]:
    """Register ``fn(policy) -> ExportPlan`` for the named families."""

    def deco(fn: Callable[[Any], ExportPlan]) -> Callable[[Any], ExportPlan]:
        for name in families:
            _EXPORTERS[name] = fn
        return fn

    return deco


def export_plan(policy: Any) -> ExportPlan:
    """The plan for ``policy``'s family; fails (``NotFitted``) if a normalizer was never fitted."""
    exporter = _EXPORTERS.get(policy.family)
    if exporter is not None:
        return exporter(policy)
    if not hasattr(policy, "export_module"):
        raise ValueError(f"policy family {policy.family!r} has no exporter and no export_module()")
    inputs, outputs = policy.io_spec()
    module = policy.export_module()
    stats = {t.name: _unit(t) for t in inputs}
    return ExportPlan([ExportGraph(POLICY_FILE, module, module, inputs, outputs, stats)])


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


class FoldedMLP(nn.Module):
    """``q + max_delta * tanh(net((cat(inputs) - mean) / std))`` with the normalizer folded into
    the first linear layer: inputs ``(1, n_i)`` each, output ``(1, J)`` absolute joint targets.

    The first layer gets ``W / std`` and ``b - (W / std) mean`` (computed in float64: exact up to
    rounding), so the graph starts with one Concat and one Gemm; the output is one Gemm
    ``q + tanh(z) @ diag(max_delta)`` (the bound and the residual in a single node; onnxruntime
    fuses the last layer with its Tanh). 3 hidden layers: 13 onnxruntime nodes.

    Args:
        mean, std: ``(sum n_i,)`` statistics of the concatenated inputs.
        net: ``nn.Sequential`` starting with a ``Linear`` (copied, not shared).
        q_start: offset of the joint positions in the first input.
        n_joints: ``J``.
        max_delta: ``(J,)`` largest step per tick (rad).
        out_rows: keep only the first ``out_rows`` outputs of ``net`` (e.g. a Gaussian's mean).
    """

    def __init__(
        self,
        mean: torch.Tensor,
        std: torch.Tensor,
        net: nn.Sequential,
        q_start: int,
        n_joints: int,
        max_delta: torch.Tensor,
        out_rows: int | None = None,
    ) -> None:
        super().__init__()
        net = fold_normalizer(net, mean, std)
        last = net[-1]
        if not isinstance(last, nn.Linear):
            raise ValueError("FoldedMLP: net must end with nn.Linear")
        if out_rows is not None:
            with torch.no_grad():
                net[-1] = nn.Linear(last.in_features, out_rows)
                net[-1].weight.copy_(last.weight[:out_rows])
                net[-1].bias.copy_(last.bias[:out_rows])
        self.net = net
        self.register_buffer("bound", torch.diag(max_delta.detach().float()))  # (J, J)
        self.q_start, self.n_joints = q_start, n_joints

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        q = first[:, self.q_start : self.q_start + self.n_joints]
        return torch.addmm(q, torch.tanh(self.net(torch.cat([first, second], dim=-1))), self.bound)


def _norm_stats(norm: Any, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    norm.check_fitted(name)
    return norm.mean.detach().float(), norm.std.detach().float()


def _np(stats: tuple[torch.Tensor, torch.Tensor]) -> Stats:
    return stats[0].numpy().copy(), stats[1].numpy().copy()


def _unit(t: TensorSpec) -> Stats:
    n = int(np.prod(t.shape[1:]))
    return np.zeros(n, np.float32), np.ones(n, np.float32)


def _goal_mlp(
    policy: Any, net: nn.Sequential, q_start: int, max_delta: torch.Tensor, out_rows: int | None = None
) -> ExportPlan:
    """``(observation, goal) -> joint_target``: a ``FoldedMLP`` over the policy's normalizers."""
    inputs, outputs = policy.io_spec()
    obs, goal = _norm_stats(policy.obs_norm, "obs_norm"), _norm_stats(policy.goal_norm, "goal_norm")
    mean, std = torch.cat([obs[0], goal[0]]), torch.cat([obs[1], goal[1]])
    twin = FoldedMLP(mean, std, net, q_start, policy.spec.n_joints, max_delta, out_rows)
    stats = {"observation": _np(obs), "goal": _np(goal)}
    return ExportPlan([ExportGraph(POLICY_FILE, twin, policy.eval().forward, inputs, outputs, stats)])


def _max_delta(module: Any) -> torch.Tensor:
    return module.max_delta.detach().float()


@register_exporter("gcbc")
def _gcbc(policy: Any) -> ExportPlan:
    return _goal_mlp(policy, policy.net, policy.q_start, _max_delta(policy))


@register_exporter("gcivl")
def _gcivl(policy: Any) -> ExportPlan:
    return _goal_mlp(policy, policy.actor, policy.q_start, _max_delta(policy))


@register_exporter("sac_her")
def _sac_her(policy: Any) -> ExportPlan:
    """The actor's deterministic output, ``tanh`` of the Gaussian's mean: the mean rows only."""
    actor = policy.actor
    return _goal_mlp(policy, actor.net, actor.q_start, _max_delta(actor), policy.spec.n_joints)


@register_exporter("diffusion", "diffusion_student")
def _diffusion(policy: Any) -> ExportPlan:
    for name in ("obs_norm", "goal_norm", "act_norm"):
        getattr(policy, name).check_fitted(name)
    inputs, outputs = policy.io_spec()
    plain = copy.deepcopy(policy).eval()
    twin, fallback = (EulerChunkTwin(policy), plain) if lean_twin_applies(policy) else (plain, None)
    if mlp_student_applies(policy):  # the one-step MLP student (deploy.export.student)
        twin, fallback = StudentMLPTwin(policy), plain
    stats = {"observation": _np(_norm_stats(policy.obs_norm, "obs_norm"))}
    stats["goal"] = _np(_norm_stats(policy.goal_norm, "goal_norm"))
    stats["noise"] = _unit(inputs[2])
    graph = ExportGraph(POLICY_FILE, twin, policy.eval().forward, inputs, outputs, stats, fallback)
    return ExportPlan([graph], {"execute_steps": policy.config.execute_steps})


class FoldedHighLevel(nn.Module):
    """HIQL's high level ``unit_scale(net((cat(observation, goal) - mean) / std), scale)`` with the
    normalizers folded into the first layer: ``(1, obs), (1, g) -> (1, rep)``."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, net: nn.Sequential, scale: float) -> None:
        super().__init__()
        self.net, self.scale = fold_normalizer(net, mean, std), scale

    def forward(self, observation: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        return unit_scale(self.net(torch.cat([observation, goal], dim=-1)), self.scale)


class _TracedHighLevel(nn.Module):
    """HIQL's own ``high_level`` as a module: the fallback if ``FoldedHighLevel`` drifts."""

    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        self.policy = copy.deepcopy(policy).eval()

    def forward(self, observation: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        return self.policy.high_level(observation, goal)


@register_exporter("hiql")
def _hiql(policy: Any) -> ExportPlan:
    policy.eval()
    low_in, low_out = policy.io_spec()
    obs, goal = _norm_stats(policy.obs_norm, "obs_norm"), _norm_stats(policy.goal_norm, "goal_norm")
    rep = policy.config.rep_dim
    mean, std = torch.cat([obs[0], torch.zeros(rep)]), torch.cat([obs[1], torch.ones(rep)])
    low = FoldedMLP(mean, std, policy.low_actor, policy.q_start, policy.spec.n_joints, _max_delta(policy))
    scale = float(np.sqrt(rep))  # HIQL.high_level's length of the subgoal representation
    high = FoldedHighLevel(
        torch.cat([obs[0], goal[0]]), torch.cat([obs[1], goal[1]]), policy.high_actor, scale
    )
    s = policy.spec
    high_in = (low_in[0], TensorSpec("goal", (1, s.goal.size), description=f"{s.goal.name} ({s.goal.unit})"))
    high_out = (low_in[1],)
    low_stats = {"observation": _np(obs), low_in[1].name: _unit(low_in[1])}
    high_stats = {"observation": _np(obs), "goal": _np(goal)}
    graphs = [
        ExportGraph(POLICY_FILE, low, policy.forward, low_in, low_out, low_stats),
        ExportGraph(
            HIGH_LEVEL_FILE, high, policy.high_level, high_in, high_out, high_stats, _TracedHighLevel(policy)
        ),
    ]
    return ExportPlan(graphs, {"high_level_inputs": high_in, "high_level_outputs": high_out})
