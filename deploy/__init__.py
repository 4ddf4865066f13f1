"""The robot side, by stage (docs/ARCHITECTURE.md):

- ``deploy.export``: checkpoint -> ONNX bundle, parity checked (the only torch here; ``[export]``)
- ``deploy.runtime``: bundle, contract check, onnxruntime agents (on ``sim.execution``), Controller
  (``[runtime]``)
- ``deploy.safety``: the safety filter (Python reference, C engine), its limits and config, the
  critic (``[safety]``)
- ``deploy.logs``: reading, mapping, salvaging and writing logs (``[logs]``)
- ``deploy.offline``: replay, offline evaluation, sim replay, system identification, logs to
  datasets, reports (``[offline]``)

Importing ``deploy`` imports none of them; the names below load their stage on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Bundle": "deploy.runtime.bundle",
    "load_bundle": "deploy.runtime.bundle",
    "Controller": "deploy.runtime.controller",
    "TickInfo": "deploy.runtime.controller",
    "SafetyFilter": "deploy.safety.filter",
    "SafetyLimits": "deploy.safety.filter",
    "Stage": "deploy.safety.filter",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'deploy' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
