"""Which tasks have a Warp twin: ``@register_warp_task("reach")`` on its batched class.

A task's Warp twin is built from the task's own CPU env (its config, spec, model and robot
constants), so the two backends share one definition; ``sim/warp/reach.py`` is the example.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_TASKS: dict[str, type] = {}
_BUILTIN = ("sim.warp.reach",)


def register_warp_task(*names: str) -> Callable[[type], type]:
    """Register ``cls`` as the Warp twin of the CPU tasks ``names``."""

    def deco(cls: type) -> type:
        for name in names:
            if name in _TASKS and _TASKS[name] is not cls:
                raise ValueError(f"task {name!r} already has a Warp twin: {_TASKS[name]!r}")
            _TASKS[name] = cls
        return cls

    return deco


def _load_builtins() -> None:
    import importlib

    for module in _BUILTIN:
        importlib.import_module(module)


def supported_tasks() -> list[str]:
    """Names of the tasks that ``backend="warp"`` runs."""
    _load_builtins()
    return sorted(_TASKS)


def warp_task_class(task: str) -> Any:
    """The Warp twin of ``task``; ``ValueError`` names the tasks that have one."""
    _load_builtins()
    if task not in _TASKS:
        raise ValueError(
            f"backend='warp' runs the tasks {sorted(_TASKS)}, not {task!r}; "
            f"run {task!r} with backend='cpu' (sim.make_vec({task!r}, n, backend='cpu'))"
        )
    return _TASKS[task]
