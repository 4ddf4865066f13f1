"""Hydra schemas for the task group (from the task registry) and ``spine-collect``.

Every ``configs/task/<name>.yaml`` extends ``<name>_schema``, the config dataclass the task
registered with, so a misspelled field fails with its name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from sim.registry import config_class, names


@dataclass
class CollectConfig:
    """``spine-collect``: run a task's scripted expert and write a dataset."""

    episodes: int = 300  # episodes to record
    seed: int = 0  # first episode seed (episode i uses seed + i)
    out: str = "runs/data"  # folder for <task>.npz and <task>.json
    action_noise: float = 0.0  # std of Gaussian noise added to expert actions (action units)
    mode: str = "goal"  # "goal": drive to the task's goal; "navigate": goal-free wandering
    num_envs: int = 1  # > 1: step this many envs in a VectorEnv (goal mode only)
    threads: int = 2  # physics threads of the VectorEnv when num_envs > 1
    task: Any = field(default=None)  # task config group (set by Hydra)
    randomization: Any = field(default=None)  # randomization config group (set by Hydra)


def schema_node(cls: type) -> DictConfig:
    """A typed, writable config node from a (possibly frozen) dataclass."""
    node = OmegaConf.structured(cls)
    OmegaConf.set_readonly(node, False)
    return node


def register_task_schemas(cs: ConfigStore | None = None) -> None:
    cs = cs or ConfigStore.instance()
    for name in names():
        cls = config_class(name)
        if cls is not None:
            cs.store(group="task", name=f"{name}_schema", node=schema_node(cls))


def register_collect_schemas() -> None:
    from sim.randomization import register_randomization_schema

    cs = ConfigStore.instance()
    cs.store(name="collect_schema", node=CollectConfig)
    register_task_schemas(cs)
    register_randomization_schema(cs)
