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


class _ReferenceParamEMA:
    """The hand-written ParamEMA that ``policies.ema`` had before it moved onto
    ``torch.optim.swa_utils``: the averages must stay the same, bit for bit."""

    def __init__(self, params: list[torch.nn.Parameter], max_decay: float) -> None:
        self.params = [p for p in params if p.requires_grad]
        self.shadow = [p.detach().clone() for p in self.params]
        self.max_decay = max_decay
        self.updates = 0

    def decay(self) -> float:
        return min(self.max_decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], 1.0 - self.decay())
        self.updates += 1


class _Net(torch.nn.Module):
    """Trainable layers (one in float64), a frozen parameter and normalizer-like buffers."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
        self.scale = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
        self.frozen = torch.nn.Parameter(torch.randn(3), requires_grad=False)
        self.register_buffer("mean", torch.zeros(4))
        self.register_buffer("std", torch.ones(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body((x - self.mean) / self.std) * self.scale.float() + self.frozen


def _train_step(net: _Net, opt: torch.optim.Optimizer, gen: torch.Generator) -> None:
    x = torch.randn(8, 4, generator=gen)
    loss = (net(x) - torch.randn(8, 3, generator=gen)).square().mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    with torch.no_grad():  # normalizer statistics move too, and must not be averaged
        net.mean.add_(0.01)
        net.std.mul_(1.001)


def test_averages_match_the_hand_written_ema_through_warm_up_and_resume() -> None:
    torch.manual_seed(0)
    net = _Net()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(1)
    max_decay = 0.95  # the ramp (1 + n) / (10 + n) reaches it after 161 updates
    ema = ParamEMA(net.parameters(), max_decay)
    ref = _ReferenceParamEMA(list(net.parameters()), max_decay)
    assert len(ema.shadow) == len(ref.shadow) == 5  # the frozen parameter is not followed
    for step in range(250):
        assert ema.decay() == ref.decay()
        _train_step(net, opt, gen)
        ema.update()
        ref.update()
        if step in (0, 1, 9, 160, 161, 249):
            for mine, theirs in zip(ema.shadow, ref.shadow, strict=True):
                assert mine.dtype == theirs.dtype
                assert torch.equal(mine, theirs), f"step {step}"
    assert ema.updates == ref.updates == 250 and ema.decay() == max_decay

    live, buffers = ema.live(), {k: v.clone() for k, v in net.named_buffers()}
    frozen = net.frozen.detach().clone()
    with ema.swapped():  # what a checkpoint holds: averaged parameters, live buffers
        for p, r in zip(ema.params, ref.shadow, strict=True):
            assert torch.equal(p, r)
        for k, v in net.named_buffers():
            assert torch.equal(v, buffers[k]), k
        assert torch.equal(net.frozen, frozen)

    fresh = ParamEMA(net.parameters(), max_decay)  # resume: the loaded weights are the average
    with torch.no_grad():
        for p, r in zip(fresh.params, ref.shadow, strict=True):
            p.copy_(r)
    fresh.restore(live, ema.updates)
    assert fresh.updates == 250
    for _ in range(20):
        _train_step(net, opt, gen)
        fresh.update()
        ref.update()
    for mine, theirs in zip(fresh.shadow, ref.shadow, strict=True):
        assert torch.allclose(mine, theirs, rtol=0, atol=1e-7)


def test_warm_up_matches_a_hand_computed_ema() -> None:
    layer = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        layer.weight.zero_()
    ema = ParamEMA(layer.parameters(), max_decay=0.3)
    expected = 0.0
    for n in range(12):
        with torch.no_grad():
            layer.weight.fill_(float(n + 1))
        decay = min(0.3, (1 + n) / (10 + n))
        expected = decay * expected + (1 - decay) * (n + 1)
        ema.update()
        assert abs(ema.shadow[0].item() - expected) < 1e-5
