"""The temporal U-Net denoiser: EDM preconditioning, learning a bimodal toy, export parity."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import sim
from deploy.export.app import export_bundle
from deploy.export.parity import randomize_for_export
from deploy.runtime.bundle import POLICY_FILE
from policies import make_policy
from policies.checkpoint import load_checkpoint, save_checkpoint
from policies.chunk_unet import ChunkUNet
from policies.diffusion import DiffusionConfig, DiffusionPolicy
from policies.registry import policy_entry
from tests.policies.test_diffusion import SPEC, TOY, chunks, ctx, near_a_mode

pytestmark = pytest.mark.usefixtures("one_torch_thread")
UNET = {"denoiser": "unet", "unet_width": 16, "unet_levels": 2, "unet_kernel": 3}


def test_unet_returns_its_input_at_sigma_zero_and_keeps_the_chunk_shape() -> None:
    torch.manual_seed(0)
    net = ChunkUNet(8, 3, obs_dim=5, goal_dim=2, width=16, levels=3, kernel=3, sigma_data=1.0)
    torch.nn.init.normal_(net.out.weight)  # F != 0, so only the preconditioning can make D = x
    x, obs, goal, keep = torch.randn(4, 24), torch.randn(4, 5), torch.randn(4, 2), torch.ones(4)
    assert torch.equal(net(x, torch.tensor(0.0), obs, goal, keep), x)
    out = net(x, torch.tensor(1.0), obs, goal, keep)
    assert out.shape == x.shape and not torch.allclose(out, x)


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match="denoiser"):
        DiffusionConfig(denoiser="transformer")
    with pytest.raises(ValueError, match="horizon 6 is not divisible"):
        DiffusionPolicy(SPEC, DiffusionConfig(**{**TOY, **UNET, "chunk_length": 6, "unet_levels": 3}))


def test_unet_diffusion_learns_both_modes_and_round_trips(tmp_path: Path) -> None:
    torch.manual_seed(0)
    policy = DiffusionPolicy(SPEC, DiffusionConfig(**{**TOY, **UNET}))
    policy.setup_training(ctx(300))
    losses = [policy.update(step)["loss"] for step in range(1, 301)]
    assert sum(losses[-50:]) < 0.5 * sum(losses[:50])
    policy.eval()
    chunk, _ = chunks(policy)
    assert near_a_mode(chunk, tol=0.1).float().mean() > 0.9  # each sample commits to a mode
    assert 0.25 < (chunk.mean(dim=(1, 2)) > 0).float().mean() < 0.75  # and both modes appear
    loaded, _ = load_checkpoint(save_checkpoint(tmp_path / "ckpt", policy, {}, 300, {}))
    assert isinstance(loaded.net, ChunkUNet)
    assert torch.equal(chunks(loaded, n=8)[0], chunks(policy, n=8)[0])


def test_unet_diffusion_exports_by_tracing_with_parity(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = {"hidden": 32, "layers": 1, "chunk_length": 4, "execute_steps": 2, "sampler_steps": 2, **UNET}
    policy = make_policy("diffusion", sim.make("reach").task_spec, policy_entry("diffusion").config(**config))
    save_checkpoint(tmp_path / "ckpt", randomize_for_export(policy, 0), {}, 0, {})
    report = export_bundle(tmp_path / "ckpt", tmp_path / "bundle", samples=64)
    entry = report["graphs"][POLICY_FILE]
    assert entry["twin"] != "EulerChunkTwin"  # the lean twin is for the MLP denoiser only
    assert 0 < entry["parity"]["max_abs_error"] <= 1e-4
