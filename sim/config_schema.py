"""Hydra schemas for the task group (from the task registry) and ``spine-collect``.

Every ``configs/task/<name>.yaml`` extends ``<name>_schema``, the config dataclass the task
registered with, so a misspelled field fails with its name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
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
    ray_workers: int = 0  # > 0: split the episodes over this many Ray tasks (sim/ray_collect.py)
    ray_address: str = ""  # "": a local Ray cluster; "auto" / "ray://host:10001": a running one
    robot: Any = field(default=None)  # robot config group: robot=panda (configs/robot/; none: the task's arm)
    task: Any = field(default=None)  # task config group (set by Hydra)
    randomization: Any = field(default=None)  # randomization config group (set by Hydra)


def with_robot(task_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The task's keyword arguments with the ``robot=<name>`` group choice applied: the name of
    a shipped config (``configs/robot/``), or the path of one found on Hydra's search path
    (``hydra.searchpath=[file:///my/configs]`` finds ``/my/configs/robot/<name>.yaml``)."""
    from hydra.core.hydra_config import HydraConfig

    from sim.robot_config import ROBOT_DIR

    runtime = HydraConfig.get().runtime
    choice = runtime.choices.get("robot")
    if choice in (None, "none"):
        return task_kwargs
    if (ROBOT_DIR / f"{choice}.yaml").is_file():
        return {**task_kwargs, "robot": choice}
    for source in runtime.config_sources:
        if source.path.startswith("file://"):
            path = Path(source.path[len("file://") :]) / "robot" / f"{choice}.yaml"
            if path.is_file():
                return {**task_kwargs, "robot": str(path.resolve())}
    raise ValueError(f"robot={choice}: no robot/{choice}.yaml on Hydra's search path")


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
