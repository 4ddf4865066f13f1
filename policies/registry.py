"""Policy-family registry: ``@register_policy("gcbc", config=GCBCConfig)`` on the module class."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sim.spec import TaskSpec

_BUILTINS = (
    "policies.gcbc",
    "policies.gcivl",
    "policies.hiql",
    "policies.sac_her",
    "policies.ppo",
    "policies.diffusion",
    "policies.distill",
)


@dataclass(frozen=True)
class PolicyEntry:
    """A registered family: its module class and its config dataclass."""

    name: str
    cls: type
    config: type


_FAMILIES: dict[str, PolicyEntry] = {}


def register_policy(name: str, config: type) -> Callable[[type], type]:
    """Register a policy module class under ``name`` with its config dataclass."""

    def deco(cls: type) -> type:
        if name in _FAMILIES and _FAMILIES[name].cls is not cls:
            raise ValueError(f"policy family {name!r} is already registered")
        _FAMILIES[name] = PolicyEntry(name, cls, config)
        cls.family = name
        return cls

    return deco


def policy_entry(name: str) -> PolicyEntry:
    for module in _BUILTINS:
        importlib.import_module(module)
    if name not in _FAMILIES:
        raise KeyError(f"unknown policy family {name!r}; registered: {sorted(_FAMILIES)}")
    return _FAMILIES[name]


def policy_names() -> list[str]:
    for module in _BUILTINS:
        importlib.import_module(module)
    return sorted(_FAMILIES)


class PolicyTaskError(ValueError):
    """A family cannot command a task's kind of action (e.g. gcbc on dm_control's motors)."""


def make_policy(name: str, spec: TaskSpec, config: Any = None) -> Any:
    """Build family ``name`` for ``spec``; ``config`` is its dataclass (defaults when None)."""
    entry = policy_entry(name)
    kinds = getattr(entry.cls, "action_kinds", ("joint_position",))
    if spec.action.kind not in kinds:
        able = sorted(
            n for n in policy_names() if spec.action.kind in getattr(policy_entry(n).cls, "action_kinds", ())
        )
        raise PolicyTaskError(
            f"policy {name!r} commands {list(kinds)}; task {spec.name!r} ({spec.robot}) takes "
            f"{spec.action.kind!r} actions: use policy={' or policy='.join(able) or '(none registered)'}"
        )
    return entry.cls(spec, config if config is not None else entry.config())
