"""Building blocks of export twins (``policies.graphs``), shared by the families.

- ``Standardize``: ``(x - mean) / std`` as the first element of an ``nn.Sequential``; the export
  folds it into the Linear after it (``deploy.export.graphs.fold_normalizers``), for any twin.
- ``StepMLPTwin``: the goal-conditioned MLPs' graph (gcbc, gcivl, sac_her's actor mean, hiql's
  low level), ``q + max_delta * tanh(net(standardize(cat(inputs))))``, with the bound and the
  residual as one Gemm ``addmm(q, tanh(.), diag(max_delta))``.
- ``plain_twin``: a tensor-only eval copy of a module as it is (a twin's fallback, and the
  twin of a family that declares no leaner one).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from policies.graphs import POLICY, PolicyGraph, Twin, as_stats, norm_stats
from policies.normalizer import Normalizer


class Standardize(nn.Module):
    """``(x - mean) / std`` over the last axis (statistics as buffers)."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean.detach().float().clone())
        self.register_buffer("std", std.detach().float().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def standardized(net: nn.Sequential, mean: torch.Tensor, std: torch.Tensor) -> nn.Sequential:
    """A copy of ``net`` that takes raw inputs: ``Sequential(Standardize(mean, std), *net)``."""
    return nn.Sequential(Standardize(mean, std), *copy.deepcopy(net)).eval()


def head_rows(net: nn.Sequential, rows: int) -> nn.Sequential:
    """A copy of ``net`` whose last Linear keeps only its first ``rows`` outputs."""
    net = copy.deepcopy(net)
    last = net[-1]
    if not isinstance(last, nn.Linear):
        raise ValueError("head_rows: net must end with nn.Linear")
    head = nn.Linear(last.in_features, rows)
    with torch.no_grad():
        head.weight.copy_(last.weight[:rows])
        head.bias.copy_(last.bias[:rows])
    net[-1] = head
    return net


class StepMLPTwin(nn.Module):
    """``(first (1, n_1), second (1, n_2)) -> (1, J)``: ``q + max_delta * tanh(net(cat))``.

    Args:
        net: the MLP on raw inputs (``standardized``: its normalizer is its first element).
        q_start: offset of the joint positions in the first input.
        n_joints: ``J``.
        max_delta: ``(J,)`` largest step per tick (rad).
    """

    def __init__(self, net: nn.Sequential, q_start: int, n_joints: int, max_delta: torch.Tensor) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("bound", torch.diag(max_delta.detach().float()))  # (J, J)
        self.q_start, self.n_joints = q_start, n_joints

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        q = first[:, self.q_start : self.q_start + self.n_joints]
        return torch.addmm(q, torch.tanh(self.net(torch.cat([first, second], dim=-1))), self.bound)


def goal_mlp_graph(
    policy: nn.Module, net: nn.Sequential, q_start: int, max_delta: torch.Tensor, out_rows: int | None = None
) -> PolicyGraph:
    """``(observation, goal) -> joint_target`` every tick, for a family whose ``forward`` is
    ``q + max_delta * tanh(net(obs_norm(observation), goal_norm(goal)))`` (``policy.obs_norm``,
    ``policy.goal_norm``); ``out_rows``: ``forward`` uses only the first rows of ``net``."""

    def export() -> Twin:
        obs = norm_stats(policy.obs_norm, "obs_norm")
        goal = norm_stats(policy.goal_norm, "goal_norm")
        mlp = net if out_rows is None else head_rows(net, out_rows)
        body = standardized(mlp, torch.cat([obs[0], goal[0]]), torch.cat([obs[1], goal[1]]))
        twin = StepMLPTwin(body, q_start, policy.spec.n_joints, max_delta)
        return Twin(twin, {"observation": as_stats(*obs), "goal": as_stats(*goal)})

    inputs, outputs = policy.io_spec()
    return PolicyGraph(POLICY, inputs, outputs, policy.forward, export)


def plain_twin(module: nn.Module) -> nn.Module:
    """A tensor-only eval copy of ``module``; ``NotFitted`` names any normalizer inside it that
    was never fitted."""
    for name, m in module.named_modules():
        if isinstance(m, Normalizer):
            m.check_fitted(name)
    return copy.deepcopy(module).eval()
