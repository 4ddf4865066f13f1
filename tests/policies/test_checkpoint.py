"""Checkpoints are safetensors + JSON, round-trip exactly, and refuse tampered files."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from policies.checkpoint import META, WEIGHTS, load_checkpoint, weights_sha256


def test_checkpoint_holds_only_safetensors_and_json(tiny_checkpoint: Path) -> None:
    assert sorted(p.name for p in tiny_checkpoint.iterdir()) == sorted([META, WEIGHTS])
    meta = json.loads((tiny_checkpoint / META).read_text())
    assert meta["family"] == "gcbc"
    assert meta["contract"]["task"]["name"] == "reach"
    assert meta["contract"]["train_config"]["config"]["steps"] > 0


def test_round_trip_gives_identical_outputs(tiny_checkpoint: Path) -> None:
    a, _ = load_checkpoint(tiny_checkpoint)
    b, meta = load_checkpoint(tiny_checkpoint)
    obs, goal = torch.randn(4, a.spec.obs_size), torch.randn(4, 3)
    with torch.no_grad():
        assert torch.equal(a(obs, goal), b(obs, goal))
    assert weights_sha256(a) == meta["contract"]["weights_sha256"]


def test_tampered_or_broken_checkpoint_is_refused(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    bad = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, bad)
    tensors = load_file(str(bad / WEIGHTS))
    tensors["net.0.weight"] = tensors["net.0.weight"] + 1.0
    save_file(tensors, str(bad / WEIGHTS))
    with pytest.raises(ValueError, match="weights hash"):
        load_checkpoint(bad)
    (bad / META).write_text("{not json")
    with pytest.raises(ValueError, match=r"checkpoint\.json: not valid JSON"):
        load_checkpoint(bad)
    (bad / META).unlink()
    with pytest.raises(FileNotFoundError, match=r"missing checkpoint\.json"):
        load_checkpoint(bad)
