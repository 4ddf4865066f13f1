"""A policy's graphs as one policy: ``policy(observation=..., goal=...) -> joint targets (J,)``.

Per family shape (``sim.contract.PolicyContract``):

- single step (gcbc, gcivl, sac_her): the policy graph every tick -> ``StepPolicy``.
- chunked (diffusion, its one-step student): the policy graph takes ``noise (1, H, J)`` and
  returns a chunk ``(1, H, J)``; ``ChunkPolicy`` draws the noise from its own seeded numpy
  generator (runs are reproducible) and executes chunks by receding horizon or temporal
  ensembling (``sim.chunking``).
- hierarchical (hiql): the high-level graph every ``high_level_every`` ticks, its subgoal held
  in between, the policy graph every tick -> ``HierarchicalPolicy``.

A graph is anything with bound numpy ``inputs``/``outputs`` buffers and ``run()``: onnxruntime
sessions on a robot (``deploy.runtime``), the family's torch functions while training and in
the export's parity check (``policies.torch_graph.TorchGraph``). Both execute with this code,
so the success measured in training is measured with the code that ships. ``planned`` says
whether the last call ran the expensive graph (a chunk plan, a high-level call). Numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import numpy as np

from sim.chunking import RecedingHorizon, SubgoalHold, TemporalEnsemble
from sim.contract import PolicyContract

NOISE = "noise"
ENSEMBLE_MODES = ("receding", "ensemble")


class Graph(Protocol):
    """What a policy needs of a graph: bound buffers (batch of 1) and ``run()``."""

    inputs: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    first_output: np.ndarray

    def run(self) -> None: ...


def _rows(graph: Graph, skip: tuple[str, ...] = ()) -> list[tuple[str, np.ndarray]]:
    """(name, view of the bound buffer without its batch axis) per input the caller feeds."""
    return [(name, buf[0]) for name, buf in graph.inputs.items() if name not in skip]


def _feed(rows: list[tuple[str, np.ndarray]], inputs: Mapping[str, np.ndarray]) -> None:
    """Copy the named inputs (shaped like one batch row, any float dtype) into the buffers."""
    for name, row in rows:
        row[...] = inputs[name]


def goal_env_inputs(obs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A goal-env observation dict as the graphs' inputs: ``observation`` and ``goal``."""
    return {"observation": obs["observation"], "goal": obs["desired_goal"]}


class StepPolicy:
    """One graph call per tick; the first output's row is the command."""

    def __init__(self, graph: Graph) -> None:
        self.graph, self.planned = graph, False
        self._rows = _rows(graph)

    def reset(self) -> None:
        """Stateless."""

    def __call__(self, **inputs: np.ndarray) -> np.ndarray:
        _feed(self._rows, inputs)
        self.graph.run()
        self.planned = True
        return self.graph.first_output[0].astype(np.float64)


class ChunkPolicy:
    """Plans a chunk from fresh noise when due; returns one target per call.

    Args:
        graph: ``(observation, goal, noise (1, H, J)) -> chunk (1, H, J)``.
        execute_steps: receding horizon: targets of a chunk executed before re-planning.
        seed: seed of the noise generator (reset does not re-seed: episodes differ).
        mode: ``"receding"`` or ``"ensemble"`` (temporal ensembling, one plan every
            ``ensemble_every`` ticks).
        ensemble_every: ticks between plans in ensemble mode.
        ensemble_decay: ``m`` of the ensemble weights ``exp(-m i)``.
    """

    def __init__(
        self,
        graph: Graph,
        execute_steps: int,
        seed: int = 0,
        mode: str = "receding",
        ensemble_every: int = 1,
        ensemble_decay: float = 0.01,
    ) -> None:
        if mode not in ENSEMBLE_MODES:
            raise ValueError(f"ChunkPolicy: mode must be one of {ENSEMBLE_MODES}, got {mode!r}")
        if NOISE not in graph.inputs:
            raise ValueError(f"ChunkPolicy: the graph has no {NOISE!r} input")
        self.graph = graph
        self.noise = graph.inputs[NOISE]
        chunk_length, n_joints = graph.first_output.shape[1:]
        self.executor: RecedingHorizon | TemporalEnsemble = (
            RecedingHorizon(execute_steps, n_joints)
            if mode == "receding"
            else TemporalEnsemble(chunk_length, ensemble_every, ensemble_decay)
        )
        self.rng = np.random.default_rng(seed)
        self.planned = False
        self._rows = _rows(graph, skip=(NOISE,))

    def reset(self) -> None:
        self.executor.reset()

    def __call__(self, **inputs: np.ndarray) -> np.ndarray:
        self.planned = self.executor.due()
        if self.planned:
            _feed(self._rows, inputs)
            self.rng.standard_normal(out=self.noise, dtype=np.float32)
            self.graph.run()
            self.executor.push(self.graph.first_output[0])
        return np.array(self.executor.pop(), dtype=np.float64)


class HierarchicalPolicy:
    """High level every ``every`` ticks (its first output held), low level every tick.

    The low level's input named like the high level's first output receives the held value.
    """

    def __init__(self, high: Graph, low: Graph, every: int) -> None:
        self.high, self.low, self.hold = high, low, SubgoalHold(every)
        (self.subgoal_name,) = list(high.outputs)[:1]
        if self.subgoal_name not in low.inputs:
            raise ValueError(f"HierarchicalPolicy: low level has no input {self.subgoal_name!r}")
        self.subgoal = low.inputs[self.subgoal_name]
        self.planned, self._ran = False, False
        self._high_rows, self._low_rows = _rows(high), _rows(low, skip=(self.subgoal_name,))

    def reset(self) -> None:
        self.hold.reset()
        self._ran = False

    @property
    def held(self) -> np.ndarray | None:
        """The subgoal held for the low level (the high level's last output, batch of 1);
        None after ``reset`` until the high level has run."""
        return self.subgoal if self._ran else None

    def __call__(self, **inputs: np.ndarray) -> np.ndarray:
        self.planned = self.hold.due()
        if self.planned:
            _feed(self._high_rows, inputs)
            self.high.run()
            self.subgoal[...] = self.high.first_output
            self.hold.ran()
            self._ran = True
        self.hold.tick()
        _feed(self._low_rows, inputs)
        self.low.run()
        return self.low.first_output[0].astype(np.float64)


Agent = StepPolicy | ChunkPolicy | HierarchicalPolicy


def make_agent(
    contract: PolicyContract,
    policy: Graph,
    high_level: Graph | None = None,
    seed: int = 0,
    mode: str = "receding",
    ensemble_every: int = 1,
) -> Agent:
    """The policy the contract describes, over the given graphs (``policy`` and, for a
    hierarchical contract, ``high_level``); ``seed`` seeds a chunked policy's noise."""
    if contract.hierarchical:
        if high_level is None:
            raise ValueError("contract has high_level_inputs but no high-level graph was given")
        return HierarchicalPolicy(high_level, policy, contract.high_level_every)
    if contract.chunk_length > 1:
        return ChunkPolicy(policy, contract.execute_steps, seed, mode, ensemble_every)
    return StepPolicy(policy)
