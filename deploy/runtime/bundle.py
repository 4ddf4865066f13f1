"""A bundle folder: ``policy.onnx`` + ``contract.json`` + ``report.json`` from ``spine-export``,
plus ``high_level.onnx`` for hierarchical families.

The contract is stored in ``contract.json`` for people and in every ONNX file's
``metadata_props`` (key ``spine.contract``) for the runtime; loading checks that they agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.contract import PolicyContract
from sim.integrity import verify

POLICY_FILE = "policy.onnx"
HIGH_LEVEL_FILE = "high_level.onnx"
CONTRACT_FILE = "contract.json"
REPORT_FILE = "report.json"
CONTRACT_KEY = "spine.contract"


@dataclass(frozen=True)
class Bundle:
    """A loaded bundle: where it is, its contract and its export report."""

    path: Path
    contract: PolicyContract
    report: dict[str, Any]

    @property
    def policy_path(self) -> Path:
        return self.path / POLICY_FILE

    @property
    def high_level_path(self) -> Path:
        """The high-level graph (hierarchical contracts only)."""
        return self.path / HIGH_LEVEL_FILE

    @property
    def graph_paths(self) -> list[Path]:
        """Every ONNX file of the bundle."""
        return [self.policy_path, *([self.high_level_path] if self.contract.hierarchical else [])]


def spec_kwargs(contract: PolicyContract) -> dict[str, Any]:
    """The task config fields the policy was trained with that shape its task's spec (the
    config class's ``spec_fields``, e.g. dm_control's ``domain`` and ``task``), to build its
    task in sim as trained (``spine-run``, the export's sim check); {} for tasks without."""
    from sim.registry import config_class

    trained = contract.train_config.get("config", {}).get("task", {})
    try:
        cls = config_class(contract.task.name)
    except KeyError:  # a task this install does not have: nothing to add
        return {}
    keys = getattr(cls, "spec_fields", ()) if cls is not None else ()
    return {k: trained[k] for k in keys if isinstance(trained, dict) and k in trained}


def load_bundle(path: Path | str) -> Bundle:
    """Read and cross-check a bundle; every error names the file at fault."""
    path = Path(path)
    contract_path, policy_path = path / CONTRACT_FILE, path / POLICY_FILE
    for p in (contract_path, policy_path):
        if not p.is_file():
            raise FileNotFoundError(f"bundle {path}: missing {p.name}")
    contract = PolicyContract.from_json(contract_path.read_text(), source=str(contract_path))
    graphs = [policy_path]
    if contract.hierarchical:
        graphs.append(path / HIGH_LEVEL_FILE)
        if not graphs[-1].is_file():
            raise FileNotFoundError(
                f"bundle {path}: missing {HIGH_LEVEL_FILE} (the contract is hierarchical)"
            )
    for graph in graphs:
        verify(graph)  # its weights are those it was exported with, else ValueError naming it
        embedded = read_onnx_metadata(graph).get(CONTRACT_KEY)
        if embedded is None:
            raise ValueError(f"{graph}: no {CONTRACT_KEY!r} in metadata_props")
        if PolicyContract.from_json(embedded, source=f"{graph} metadata") != contract:
            raise ValueError(f"{graph}: embedded contract differs from {contract_path}")
    report_path = path / REPORT_FILE
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    return Bundle(path=path, contract=contract, report=report)


def read_onnx_metadata(path: Path) -> dict[str, str]:
    """``metadata_props`` of an ONNX file, read with onnxruntime (no ``onnx`` package needed)."""
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        raise ValueError(f"{path}: not a loadable ONNX model ({e})") from None
    return dict(sess.get_modelmeta().custom_metadata_map)
