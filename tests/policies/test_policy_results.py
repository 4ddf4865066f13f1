"""benchmarks/policy_results.py: every pair's dataset folder is a value Hydra's ``out=`` takes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from hydra.core.override_parser.overrides_parser import OverridesParser

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "policy_results.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("policy_results", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["policy_results"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_dataset_folders_parse_as_hydra_overrides() -> None:
    pr = _script()
    datasets = {pair.data for pair in pr.PAIRS if pair.data is not None}
    assert any("[" in arg for data in datasets for arg in data.args)  # a list-valued task field
    parser = OverridesParser.create()
    for data in datasets:
        (override,) = parser.parse_overrides([f"out=runs/data/{data.name}"])
        assert override.value() == f"runs/data/{data.name}"
    assert len({data.name for data in datasets}) == len(datasets)
