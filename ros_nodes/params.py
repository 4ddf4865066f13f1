"""Node parameters: ROS 2 parameter YAML files plus ``-p name:=value`` on the command line,
read into a typed dataclass per node so a misspelt or mistyped parameter fails by name.

The YAML is ROS 2's own format, so the same file serves ``ros2 launch`` (rclpy) and
``spine-stack`` (Cyclone DDS)::

    /**:                      # every node
      ros__parameters:
        robot: configs/ros/arm7_reach.yaml
    spine_safety:             # one node
      ros__parameters:
        rate_hz: 1000.0
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from ruamel.yaml import YAML

P = TypeVar("P")


class ParameterError(ValueError):
    """A parameter file or value is wrong; the message names the parameter and its source."""


def _yaml_scalar(text: str) -> Any:
    value = YAML(typ="safe", pure=True).load(text)
    return text if value is None else value


class ParameterStore:
    """Parameter values for one node, remembering where each came from."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.values: dict[str, Any] = {}
        self.source: dict[str, str] = {}
        self.node_specific: set[str] = set()  # set for this node by name or on the command line
        self.enclave = ""  # --ros-args --enclave NAME (DDS Security), "" when not given

    def load_file(self, path: Path | str) -> None:
        path = Path(path)
        try:
            data = YAML(typ="safe", pure=True).load(path.read_text())
        except FileNotFoundError:
            raise ParameterError(f"parameter file {path} does not exist") from None
        except Exception as e:  # ruamel raises many error types
            raise ParameterError(f"parameter file {path}: not valid YAML ({e})") from None
        if not isinstance(data, dict):
            raise ParameterError(f"parameter file {path}: expected a mapping of node names")
        for key in ("/**", self.node, "/" + self.node):
            section = data.get(key)
            if section is None:
                continue
            params = section.get("ros__parameters") if isinstance(section, dict) else None
            if not isinstance(params, dict):
                raise ParameterError(f"parameter file {path}: {key!r} has no 'ros__parameters' mapping")
            for name, value in params.items():
                self.set(name, value, f"{path} [{key}]", node_specific=key != "/**")

    def set(self, name: str, value: Any, source: str, node_specific: bool = True) -> None:
        self.values[name] = value
        self.source[name] = source
        if node_specific:
            self.node_specific.add(name)

    def get(self, name: str, default: Any) -> Any:
        return self.values.get(name, default)

    def parse_args(self, argv: Sequence[str]) -> list[str]:
        """Consume ``--ros-args``, ``--params-file F``, ``-p name:=value``, ``-r`` remaps and
        ``--enclave NAME``; return the rest."""
        rest, i = [], 0
        while i < len(argv):
            arg = argv[i]
            if arg == "--ros-args" or arg == "--":
                i += 1
            elif arg == "--params-file" and i + 1 < len(argv):
                self.load_file(argv[i + 1])
                i += 2
            elif arg in ("-p", "--param") and i + 1 < len(argv):
                name, sep, text = argv[i + 1].partition(":=")
                if not sep:
                    raise ParameterError(f"-p {argv[i + 1]!r}: expected name:=value")
                self.set(name, _yaml_scalar(text), "command line")
                i += 2
            elif arg in ("-r", "--remap") and i + 1 < len(argv):
                i += 2  # remaps are rclpy's business; ignored elsewhere
            elif arg in ("-e", "--enclave") and i + 1 < len(argv):
                self.enclave = argv[i + 1]  # the DDS Security enclave, as rcl reads it
                i += 2
            else:
                rest.append(arg)
                i += 1
        return rest


def _check(name: str, value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        hint = next(a for a in options if a is not type(None))
        origin = typing.get_origin(hint)
    if origin in (list, tuple):
        (inner, *_) = typing.get_args(hint) or (Any,)
        if not isinstance(value, (list, tuple)):
            raise ParameterError(f"parameter {name!r} ({where}) must be a list, got {value!r}")
        return type(value)(_check(f"{name}[{i}]", v, inner, where) for i, v in enumerate(value))
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
    }.get(hint, True)
    if not ok:
        raise ParameterError(
            f"parameter {name!r} ({where}) must be {hint.__name__}, got {value!r} ({type(value).__name__})"
        )
    if hint is float:
        return float(value)
    return value


def load_params(store: ParameterStore, declare: Any, cls: type[P]) -> P:
    """Build ``cls`` (a dataclass) from ``declare(name, default)`` for each field.

    ``declare`` is a port's ``parameter`` method (rclpy declares them as ROS parameters).
    A node-specific parameter that ``cls`` does not have raises, naming it; names under a
    prefix in ``cls.NESTED`` (``safety.margin``) are left to the node, which checks them.
    """
    hints = typing.get_type_hints(cls)
    kw = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        value = declare(f.name, default)
        where = store.source.get(f.name, "default")
        kw[f.name] = _check(f.name, value, hints[f.name], where)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    nested = tuple(f"{p}." for p in getattr(cls, "NESTED", ()))
    unknown = sorted(n for n in store.node_specific - known if not n.startswith(nested))
    if unknown:
        where = ", ".join(f"{n} from {store.source[n]}" for n in unknown)
        raise ParameterError(f"{store.node}: unknown parameter(s) {where}; known: {sorted(known)}")
    return cls(**kw)
