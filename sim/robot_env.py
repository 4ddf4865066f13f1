"""What a log's ``robot:`` (or any tool's robot argument) names, as a sim env: a registered task
on its own arm (``widowx_reach``), or a robot config (``configs/robot/<name>.yaml`` or a YAML
path) -> ``reach`` on that arm."""

from __future__ import annotations

from typing import Any

from sim.registry import make, names
from sim.robot_config import known_robots


def make_robot_env(robot: str, **kwargs: Any) -> Any:
    """``sim.make(robot)`` for a registered task, else ``sim.make("reach", robot=robot)``."""
    if robot in names():
        return make(robot, **kwargs)
    if robot in known_robots() or robot.endswith((".yaml", ".yml")):
        return make("reach", robot=robot, **kwargs)
    raise KeyError(
        f"unknown robot {robot!r}: neither a registered task {names()} nor a robot config "
        f"{known_robots()} (configs/robot/) nor a robot YAML path"
    )


def make_for_spec(spec: Any, **kwargs: Any) -> Any:
    """The sim env of a task spec (a bundle's contract): its task, on the spec's robot when that
    is a robot config rather than the task's own arm."""
    env = make(spec.name, **kwargs)
    if env.task_spec.robot == spec.robot:
        return env
    if spec.robot in known_robots():
        return make(spec.name, robot=spec.robot, **kwargs)
    raise KeyError(
        f"task {spec.name!r} runs on {env.task_spec.robot}, the spec is for robot {spec.robot!r}, "
        f"which is not a robot config in configs/robot/ {known_robots()}"
    )
