"""Moving average of the weights: the update rule, the swap, and a checkpoint that holds the
average while resume gets the live weights back."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from policies.ema import ParamEMA


def test_update_follows_the_warmed_up_decay() -> None:
    layer = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        layer.weight.zero_()
    ema = ParamEMA(layer.parameters(), max_decay=0.5)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    ema.update()  # decay min(0.5, 1/10) = 0.1: shadow 0 -> 0.9
    ema.update()  # decay min(0.5, 2/11): shadow 0.9 -> 0.9 + (1 - 2/11) * 0.1
    expected = 0.9 + (1 - 2 / 11) * 0.1
    assert torch.allclose(ema.shadow[0], torch.full((1, 2), expected))
    for _ in range(50):
        ema.update()
    assert ema.decay() == 0.5


def test_swapped_holds_the_average_and_gives_the_live_weights_back() -> None:
    layer = torch.nn.Linear(3, 2)
    ema = ParamEMA(layer.parameters(), max_decay=0.9)
    before = layer.weight.detach().clone()
    with torch.no_grad():
        layer.weight.add_(1.0)
    ema.update()
    live = layer.weight.detach().clone()
    with ema.swapped():
        assert torch.allclose(layer.weight, before + 0.9)
        assert torch.equal(ema.live()[0], live)
        with ema.swapped():  # re-entering does not swap back
            assert torch.allclose(layer.weight, before + 0.9)
        with pytest.raises(RuntimeError, match="inside swapped"):
            ema.update()
    assert torch.equal(layer.weight, live)


def test_max_decay_is_checked() -> None:
    with pytest.raises(ValueError, match="max_decay"):
        ParamEMA(torch.nn.Linear(1, 1).parameters(), max_decay=1.0)


def test_checkpoint_holds_the_average_and_resume_restores_both(tiny_dataset: Path, tmp_path: Path) -> None:
    from policies.checkpoint import WEIGHTS, load_checkpoint
    from policies.gcbc import GCBCConfig
    from policies.optim import EMA_LIVE
    from policies.registry import make_policy
    from policies.trainer import TrainConfig, resume, train
    from sim.collect import load_dataset

    config = GCBCConfig(hidden=32, layers=1, ema_decay=0.9)
    cfg = TrainConfig(
        dataset=str(tiny_dataset), out=str(tmp_path), steps=30, eval_every=10_000, eval_episodes=1
    )
    train(cfg, "reach", "gcbc", {}, config)
    ckpt = tmp_path / "checkpoint"
    averaged = load_file(str(ckpt / WEIGHTS))
    live = load_file(str(ckpt / EMA_LIVE))
    assert not torch.equal(averaged["net.0.weight"], live["live.0"])  # training moved on past the average
    saved, _ = load_checkpoint(ckpt)  # the saved weights are the average, and they hash as such
    assert torch.equal(saved.net[0].weight, averaged["net.0.weight"])

    from policies.family import TrainContext

    policy = make_policy("gcbc", saved.spec, config)
    policy.setup_training(TrainContext("reach", {}, load_dataset(tiny_dataset), 8, 60, 0))
    assert resume(policy, ckpt) == 30
    assert torch.equal(policy.net[0].weight, live["live.0"])
    with policy.averaged():
        assert torch.equal(policy.net[0].weight, averaged["net.0.weight"])


def test_ema_decay_is_validated() -> None:
    from policies.diffusion import DiffusionConfig
    from policies.gcbc import GCBCConfig

    with pytest.raises(ValueError, match=r"GCBCConfig\.ema_decay"):
        GCBCConfig(ema_decay=1.0)
    with pytest.raises(ValueError, match=r"DiffusionConfig\.ema_decay"):
        DiffusionConfig(ema_decay=-0.1)
