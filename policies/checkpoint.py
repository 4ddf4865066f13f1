"""Checkpoints: ``model.safetensors`` + ``checkpoint.json``. No pickle; loading runs no code."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from policies.graphs import family_contract
from policies.registry import make_policy, policy_entry
from sim.contract import PolicyContract

WEIGHTS = "model.safetensors"
META = "checkpoint.json"


def weights_sha256(module: torch.nn.Module) -> str:
    """Hash of every parameter and buffer, by sorted name: the identity of a set of weights."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def make_contract(policy: Any, train_config: dict[str, Any]) -> PolicyContract:
    """The I/O contract of ``policy`` (a registered family module) as trained: the family's
    (``policies.graphs.family_contract``) plus the weights' hash and the training config."""
    contract = family_contract(policy)
    return dataclasses.replace(contract, weights_sha256=weights_sha256(policy), train_config=train_config)


def save_checkpoint(
    directory: Path, policy: Any, train_config: dict[str, Any], step: int, metrics: dict[str, float]
) -> Path:
    """Write ``policy`` to ``directory`` (created); returns the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in policy.state_dict().items()}
    save_file(tensors, str(directory / WEIGHTS))
    meta = {
        "family": policy.family,
        "policy_config": dataclasses.asdict(policy.config),
        "step": step,
        "metrics": metrics,
        "contract": make_contract(policy, train_config).to_dict(),
    }
    (directory / META).write_text(json.dumps(meta, indent=2, sort_keys=True))
    return directory


def load_checkpoint(directory: Path) -> tuple[Any, dict[str, Any]]:
    """Rebuild the policy saved in ``directory``; errors name the file and the field."""
    directory = Path(directory)
    meta_path, weights_path = directory / META, directory / WEIGHTS
    for p in (meta_path, weights_path):
        if not p.is_file():
            raise FileNotFoundError(f"checkpoint {directory}: missing {p.name}")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{meta_path}: not valid JSON ({e})") from None
    for key in ("family", "policy_config", "contract"):
        if key not in meta:
            raise ValueError(f"{meta_path}: missing field {key!r}")
    contract = PolicyContract.from_dict(meta["contract"], source=str(meta_path))
    entry = policy_entry(meta["family"])
    fields = dict(meta["policy_config"])
    for name, was in getattr(entry.config, "LEGACY_FIELDS", {}).items():
        if name not in fields and was in fields:  # saved before ``name`` existed: it was ``was``
            fields[name] = fields[was]
    for old, new in getattr(entry.config, "RENAMED_FIELDS", {}).items():
        if old in fields and new not in fields:  # saved under the field's old name
            fields[new] = fields.pop(old)
    try:
        config = entry.config(**fields)
    except TypeError as e:
        raise ValueError(f"{meta_path}: policy_config does not fit {entry.config.__name__}: {e}") from None
    policy = make_policy(meta["family"], contract.task, config)
    load_weights(policy, directory)
    sha = weights_sha256(policy)
    if contract.weights_sha256 and sha != contract.weights_sha256:
        raise ValueError(
            f"{weights_path}: weights hash {sha[:12]} != contract's {contract.weights_sha256[:12]}"
        )
    return policy.eval(), meta


def load_weights(policy: torch.nn.Module, directory: Path) -> None:
    """Load ``model.safetensors`` from ``directory`` into ``policy`` (every tensor must match)."""
    weights_path = Path(directory) / WEIGHTS
    if not weights_path.is_file():
        raise FileNotFoundError(f"checkpoint {directory}: missing {WEIGHTS}")
    missing, unexpected = policy.load_state_dict(load_file(str(weights_path)), strict=False)
    if missing or unexpected:
        raise ValueError(f"{weights_path}: missing tensors {missing}, unexpected {unexpected}")
