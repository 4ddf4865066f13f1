"""Export checks: torch vs onnxruntime, on random inputs and in closed loop in simulation.

- ``numeric_parity``: max |torch - onnxruntime| of one graph over fresh random inputs drawn
  around the training statistics (3/4 within 2 std, 1/4 at 10 std: far outside them).
- ``sim_parity``: success rate of the torch policy and of the bundle on the same episode seeds,
  both driven by the shipped executor (``sim.execution``: chunk queue, noise stream from the
  same seed, subgoal hold; torch through ``policies.torch_graph.TorchGraph``, as in training),
  so only the inference engine differs.

Torch is imported here: only the export runs this module.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from deploy.export.graphs import ExportGraph, ExportPlan
from deploy.runtime.agents import load_agent
from deploy.runtime.bundle import HIGH_LEVEL_FILE, POLICY_FILE, Bundle
from deploy.runtime.graph import OnnxGraph
from policies.torch_graph import TorchGraph
from sim.evaluate import evaluate_agent
from sim.execution import make_agent


def randomize_for_export(policy: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Make an untrained policy exportable and its parity meaningful, for tests and benchmarks:
    every normalizer gets random statistics as if fitted (means ~N(0, 1), stds in [0.05, 2];
    a diffusion policy's chunk offsets ``act_norm``: mean 0, rad-sized stds in [0.005, 0.02]),
    and zero-initialized weights (output heads, dense or convolutional) get N(0, 0.05^2) ones."""
    from policies.normalizer import Normalizer

    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, m in policy.named_modules():
            if isinstance(m, Normalizer):
                n, chunk = m.mean.numel(), name == "act_norm"
                m.mean.copy_(torch.as_tensor(rng.normal(0.0, 0.0 if chunk else 1.0, n)))
                m.std.copy_(torch.as_tensor(rng.uniform(*((0.005, 0.02) if chunk else (0.05, 2.0)), n)))
                m.fitted.fill_(True)
        for w in policy.parameters():
            if w.ndim >= 2 and not w.any():  # Linear and Conv weights
                w.copy_(0.05 * torch.randn(w.shape, generator=gen))
    return policy


def random_feeds(graph: ExportGraph, samples: int, seed: int) -> dict[str, np.ndarray]:
    """``samples`` random inputs per graph input: name -> ``(samples, *shape[1:])`` float32."""
    rng = np.random.default_rng(seed)
    scale = np.where(np.arange(samples) < samples * 3 // 4, 2.0, 10.0)[:, None]
    feeds = {}
    for t in graph.inputs:
        mean, std = graph.stats[t.name]
        flat = mean + scale * std * rng.standard_normal((samples, mean.size))
        feeds[t.name] = flat.reshape(samples, *t.shape[1:]).astype(np.float32)
    return feeds


@torch.no_grad()
def numeric_parity(graph: ExportGraph, session: OnnxGraph, samples: int, seed: int) -> float:
    """Max abs difference between ``graph.reference`` (torch, batched) and the session."""
    feeds = random_feeds(graph, samples, seed)
    expected = graph.reference(*(torch.as_tensor(feeds[t.name]) for t in graph.inputs)).numpy()
    got = np.empty_like(expected)
    for i in range(samples):
        for name, buf in session.inputs.items():
            buf[0] = feeds[name][i]
        session.run()
        got[i] = session.first_output[0]
    return float(np.max(np.abs(expected - got)))


def sim_parity(
    plan: ExportPlan,
    bundle: Bundle,
    task: str,
    episodes: int,
    seed: int,
    task_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Success rate and final distance of torch and of onnxruntime on seeds ``seed..``, in
    ``task`` built with ``task_kwargs``."""
    import sim

    contract = bundle.contract
    graphs = {g.file: TorchGraph(g.reference, g.inputs, g.outputs) for g in plan.graphs}
    agents = {
        "torch": make_agent(contract, graphs[POLICY_FILE], graphs.get(HIGH_LEVEL_FILE), seed),
        "onnxruntime": load_agent(bundle, threads=1, seed=seed),
    }
    out: dict[str, Any] = {"task": task, "episodes": episodes, "seed": seed}
    for name, agent in agents.items():
        env = sim.make(task, **(task_kwargs or {}))
        result = evaluate_agent(env, agent, episodes, seed)
        out[name] = {"success_rate": result.success_rate, "final_distance_mean": result.final_distance_mean}
    out["success_rate_difference"] = out["onnxruntime"]["success_rate"] - out["torch"]["success_rate"]
    return out
