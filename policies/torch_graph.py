"""A family's graphs run in torch by the shipped executor (``sim.execution``).

``TorchGraph`` puts a torch function behind the executor's ``Graph`` interface (bound numpy
buffers, ``run()``); ``policy_agent`` builds the executor the family's contract describes over
its declared graphs (``policies.graphs``). Training-time evaluation, ``act()``/``reset()`` and
the export's sim parity check all go through it, so the chunk queue, the seeded chunk noise
and the subgoal hold measured in training are the runtime's own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from policies.graphs import HIGH_LEVEL, POLICY, PolicyGraph, Twin, family_contract, graph_map, unit_stats
from policies.twins import plain_twin
from sim.contract import TensorSpec
from sim.execution import Agent, goal_env_inputs, make_agent

_AGENT = "_acting_agent"  # where ``GraphActing`` keeps its executor (not a module or buffer)


class TorchGraph:
    """A torch function behind the ``sim.execution.Graph`` interface (float32 numpy buffers,
    batch of 1); ``fn`` takes the inputs in order and returns the first output."""

    def __init__(
        self, fn: Callable[..., torch.Tensor], inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...]
    ) -> None:
        self.fn = fn
        self.inputs = {t.name: np.zeros(t.shape, np.float32) for t in inputs}
        self.outputs = {t.name: np.zeros(t.shape, np.float32) for t in outputs}
        self.first_output = self.outputs[outputs[0].name]

    @torch.no_grad()
    def run(self) -> None:
        self.first_output[...] = self.fn(*(torch.as_tensor(b) for b in self.inputs.values())).numpy()


def torch_graph(graph: PolicyGraph) -> TorchGraph:
    """The graph's reference function (the family's own) as a ``TorchGraph``."""
    return TorchGraph(graph.reference, graph.inputs, graph.outputs)


def policy_agent(policy: Any, seed: int = 0, mode: str = "receding", ensemble_every: int = 1) -> Agent:
    """The executor of ``policy``'s contract over its graphs in torch; ``seed`` seeds the
    chunk noise (numpy, as on the robot)."""
    graphs = {role: torch_graph(g) for role, g in graph_map(policy).items()}
    return make_agent(
        family_contract(policy), graphs[POLICY], graphs.get(HIGH_LEVEL), seed, mode, ensemble_every
    )


class GraphActing:
    """``graphs()``, ``act()`` and ``reset()`` for a family (a mixin before ``nn.Module``).

    ``graphs()`` here is the plain one: ``forward`` over ``io_spec()``, exported as it is; the
    families declare leaner twins and other schedules in their own files. ``act`` runs the
    graphs through ``policy_agent``; ``reset`` starts an episode with a fresh one, its chunk
    noise seeded by one draw of torch's global generator (``torch.manual_seed`` makes ``act``
    reproducible). Training-time evaluation builds its own, seeded from the evaluation seed.
    """

    def graphs(self) -> tuple[PolicyGraph, ...]:
        inputs, outputs = self.io_spec()  # type: ignore[attr-defined]

        def export() -> Twin:
            return Twin(plain_twin(self), {t.name: unit_stats(t) for t in inputs})  # type: ignore[arg-type]

        return (PolicyGraph(POLICY, inputs, outputs, self.forward, export),)  # type: ignore[attr-defined]

    def agent(self) -> Agent:
        """The executor ``act`` runs (the one ``reset`` built; built on first use)."""
        agent = self.__dict__.get(_AGENT)
        if agent is None:
            self.reset()
            agent = self.__dict__[_AGENT]
        return agent

    def reset(self) -> None:
        """New episode: nothing planned or held; the next ``act`` plans (a chunk, a subgoal)."""
        seed = int(torch.randint(2**62, ()).item())
        self.__dict__[_AGENT] = policy_agent(self, seed)

    def act(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Joint targets ``(J,)`` (float64, action units) for one goal-env observation dict."""
        return self.agent()(**goal_env_inputs(obs))
