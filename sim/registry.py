"""Task and expert registries, open to outside packages.

``@register("name", config=Config)`` on a task factory, ``@register_expert("name")`` on its
scripted expert. Every module in ``sim/tasks/`` and ``sim/experts/`` is imported on first
lookup, so adding a task is adding a file; outside packages import their module first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_TASKS: dict[str, Callable[..., Any]] = {}
_CONFIGS: dict[str, type | None] = {}
_EXPERTS: dict[str, type] = {}
_BUILTIN_PACKAGES = ("sim.tasks", "sim.experts")
_loaded = False


def register(name: str, config: type | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``factory`` (a class or function returning an env) under ``name``.

    ``config`` is the task's config dataclass (its fields are the factory's keyword
    arguments); Hydra apps use it as the schema of ``configs/task/<name>.yaml``.
    """

    def deco(factory: Callable[..., Any]) -> Callable[..., Any]:
        if name in _TASKS and _TASKS[name] is not factory:
            raise ValueError(f"task {name!r} is already registered by {_TASKS[name]!r}")
        _TASKS[name] = factory
        _CONFIGS[name] = config
        return factory

    return deco


def register_expert(task: str) -> Callable[[type], type]:
    """Register a scripted expert class for ``task``: ``Expert(env).act(env.state())``."""

    def deco(cls: type) -> type:
        if task in _EXPERTS and _EXPERTS[task] is not cls:
            raise ValueError(f"an expert for {task!r} is already registered: {_EXPERTS[task]!r}")
        _EXPERTS[task] = cls
        return cls

    return deco


def _load_builtins() -> None:
    global _loaded
    if _loaded:
        return
    import importlib
    import pkgutil

    for package in _BUILTIN_PACKAGES:
        pkg = importlib.import_module(package)
        for info in pkgutil.iter_modules(pkg.__path__):
            importlib.import_module(f"{package}.{info.name}")
    _loaded = True


def expert_class(task: str) -> type:
    """The scripted expert registered for ``task``; ``KeyError`` lists the tasks that have one."""
    _load_builtins()
    if task not in _EXPERTS:
        raise KeyError(f"no expert for task {task!r}; experts exist for {sorted(_EXPERTS)}")
    return _EXPERTS[task]


def expert_tasks() -> list[str]:
    _load_builtins()
    return sorted(_EXPERTS)


def names() -> list[str]:
    """All registered task names, built-in ones included."""
    _load_builtins()
    return sorted(_TASKS)


def config_class(name: str) -> type | None:
    """The config dataclass registered with task ``name`` (None if it has none)."""
    _load_builtins()
    if name not in _TASKS:
        raise KeyError(f"unknown task {name!r}; registered: {sorted(_TASKS)}")
    return _CONFIGS[name]


def make(name: str, **kwargs: Any) -> Any:
    """Build the task ``name``; ``kwargs`` go to its factory (its config fields)."""
    _load_builtins()
    if name not in _TASKS:
        raise KeyError(f"unknown task {name!r}; registered: {sorted(_TASKS)}")
    return _TASKS[name](**kwargs)
