"""A bundle's graphs as one policy: onnxruntime sessions run by the shipped executors.

The execution itself (chunk queue or temporal ensemble, seeded noise, subgoal hold) is
``sim.execution``, the same code that training-time evaluation and the export's sim parity
check run over torch graphs; this module only binds the bundle's ONNX files to it.
"""

from __future__ import annotations

from deploy.runtime.bundle import Bundle
from deploy.runtime.graph import OnnxGraph
from sim.execution import Agent, make_agent


def load_agent(
    bundle: Bundle, threads: int = 1, seed: int = 0, mode: str = "receding", ensemble_every: int = 1
) -> Agent:
    """onnxruntime sessions (``threads`` each) for the bundle's graphs, as one policy
    (``sim.execution.make_agent``: step, chunked or hierarchical, as the contract says)."""
    c = bundle.contract
    policy = OnnxGraph(bundle.policy_path, c.inputs, c.outputs, threads)
    high = None
    if c.hierarchical:
        high = OnnxGraph(bundle.high_level_path, c.high_level_inputs, c.high_level_outputs, threads)
    return make_agent(c, policy, high, seed, mode, ensemble_every)
