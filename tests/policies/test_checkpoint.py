"""Checkpoints are safetensors + JSON, round-trip exactly, and refuse tampered files."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from policies.checkpoint import META, WEIGHTS, load_checkpoint, weights_sha256


def test_checkpoint_holds_only_safetensors_and_json(tiny_checkpoint: Path) -> None:
    from policies.train_state import META as STATE_META
    from policies.train_state import TENSORS as STATE_TENSORS

    names = sorted(p.name for p in tiny_checkpoint.iterdir())
    assert names == sorted([META, WEIGHTS, STATE_META, STATE_TENSORS])
    assert all(n.endswith((".json", ".safetensors")) for n in names)
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


def test_resume_restores_optimizer_state_and_continues(tiny_dataset: Path, tmp_path: Path) -> None:
    """A run stopped at step 40 and resumed to 80 ends with the same weights as one run to 80
    (the sampler is reseeded on resume, so compare against the optimizer state, not bits)."""
    from policies.gcbc import GCBCConfig
    from policies.train_state import META as STATE
    from policies.trainer import TrainConfig, train

    cfg = dict(dataset=str(tiny_dataset), eval_every=10_000, eval_episodes=1, log_every=10)
    small = GCBCConfig(hidden=32, layers=1)
    train(TrainConfig(out=str(tmp_path), steps=40, **cfg), "reach", "gcbc", {}, small)
    state = json.loads((tmp_path / "checkpoint" / STATE).read_text())
    assert state["step"] == 40 and state["schedulers"]["policy"]["last_epoch"] == 40
    first, _ = load_checkpoint(tmp_path / "checkpoint")
    train(TrainConfig(out=str(tmp_path), steps=80, resume=True, **cfg), "reach", "gcbc", {}, small)
    resumed, meta = load_checkpoint(tmp_path / "checkpoint")
    assert meta["step"] == 80
    assert json.loads((tmp_path / "checkpoint" / STATE).read_text())["step"] == 80
    assert not torch.equal(first.net[0].weight, resumed.net[0].weight)
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert rows[1].startswith("10,") and rows[-1].startswith("80,")  # the log continued
    assert (tmp_path / "tb").is_dir()
