"""What a policy family implements so that one trainer, one evaluator and one checkpoint
format serve them all (offline and online alike).

    policy = make_policy("gcbc", task_spec, config)
    policy.setup_training(ctx)          # normalizers, samplers / envs, optimizers
    for step in range(1, ctx.total_steps + 1):
        metrics = policy.update(step)   # one gradient step (and, online, env steps)
    policy.reset(); action = policy.act(obs)   # acting in sim, no grad

``graphs()`` declares what runs at inference (``policies.graphs``: each graph's tensors, the
family's own function, how often it runs, its export twin); ``act``/``reset`` run those graphs
through the executor that ships (``policies.torch_graph.GraphActing``), and so does the
trainer's evaluation. Checkpoints store ``state_dict()`` (all networks and normalizers) and
``optimizers()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from policies.graphs import PolicyGraph
from sim.contract import TensorSpec
from sim.spec import TaskSpec


@dataclass
class TrainContext:
    """What the trainer hands a family before the first update."""

    task: str  # registry name of the task
    task_kwargs: dict[str, Any]  # task config overrides
    data: dict[str, np.ndarray] | None  # offline dataset (sim.collect format); None online
    batch_size: int  # transitions (or sequences) per gradient step
    total_steps: int  # gradient steps planned (for schedules)
    seed: int  # seeds every random stream the family owns
    extras: dict[str, Any] = field(default_factory=dict)  # family-specific trainer knobs


@runtime_checkable
class PolicyFamily(Protocol):
    """The methods every registered family provides (``torch.nn.Module`` subclasses)."""

    family: str
    spec: TaskSpec
    config: Any

    def setup_training(self, ctx: TrainContext) -> None: ...

    def update(self, step: int) -> dict[str, float]: ...

    def optimizers(self) -> dict[str, torch.optim.Optimizer]: ...

    def schedulers(self) -> dict[str, Any]: ...

    def reset(self) -> None: ...

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray: ...

    def io_spec(self) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]: ...

    def graphs(self) -> tuple[PolicyGraph, ...]: ...

    # Optional: ``close()`` releases what ``setup_training`` opened (e.g. the online families'
    # training envs); the trainer calls it, when present, however training ends.
    # ``contract_fields()`` adds family fields to the contract (diffusion: ``chunk_length``,
    # ``sampler_steps``); the schedule comes from ``graphs()`` (``policies.graphs``).


class BatchSampler:
    """Uniform minibatches of named dataset arrays as float32 torch tensors."""

    def __init__(
        self, data: dict[str, np.ndarray], keys: tuple[str, ...], batch_size: int, seed: int
    ) -> None:
        self.tensors = {k: torch.as_tensor(data[k], dtype=torch.float32) for k in keys}
        self.n = len(next(iter(self.tensors.values())))
        self.batch_size = batch_size
        self.gen = torch.Generator().manual_seed(seed)

    def sample(self) -> dict[str, torch.Tensor]:
        idx = torch.randint(self.n, (self.batch_size,), generator=self.gen)
        return {k: v[idx] for k, v in self.tensors.items()}
