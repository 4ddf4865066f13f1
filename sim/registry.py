"""Task registry, open to outside packages: decorate a factory with ``@register("name")``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_TASKS: dict[str, Callable[..., Any]] = {}
_CONFIGS: dict[str, type | None] = {}
_BUILTINS = ("sim.tasks.reach",)


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


def _load_builtins() -> None:
    import importlib

    for module in _BUILTINS:
        importlib.import_module(module)


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
