"""benchmarks/policy_eval.py: a checkpoint re-evaluated as it was trained, with overrides."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "policy_eval.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("policy_eval", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_evaluates_a_checkpoint_with_its_interval(tiny_checkpoint: Path) -> None:
    pe = _script()
    r = pe.evaluate_checkpoint(tiny_checkpoint, 2, 10_000, 0, {"success_threshold": 0.5}, {})
    assert r["episodes"] == 2
    assert pe.wilson(round(2 * r["success_rate"]), 2) == tuple(r["ci95"])
    low, high = pe.wilson(0, 10)
    assert low == pytest.approx(0.0, abs=1e-12) and 0.25 < high < 0.35  # 95 % Wilson: 0 of 10 -> 0-0.28


def test_unknown_policy_override_is_named(tiny_checkpoint: Path) -> None:
    pe = _script()
    with pytest.raises(SystemExit, match="no field"):
        pe.evaluate_checkpoint(tiny_checkpoint, 1, 10_000, 0, {}, {"noise_scale": 0.5})
    assert pe.key_values(["a=1", "b=true", "c=x"]) == {"a": 1, "b": True, "c": "x"}
