"""Shared fixtures: a tiny real dataset, checkpoint and bundle, built once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

TINY_EPISODES = 12
TINY_STEPS = 150


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "docs: the commands of README.md and docs/ from a clean copy (test_documented_commands.py)"
    )


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sim.collect import collect

    return collect("reach", episodes=TINY_EPISODES, seed=0, out_dir=tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from policies.gcbc import GCBCConfig
    from policies.trainer import TrainConfig, train

    out = tmp_path_factory.mktemp("train")
    cfg = TrainConfig(
        dataset=str(tiny_dataset), out=str(out), steps=TINY_STEPS, eval_every=TINY_STEPS, eval_episodes=2
    )
    train(cfg, "reach", "gcbc", {}, GCBCConfig(hidden=64, layers=2))
    return out / "checkpoint"


@pytest.fixture(scope="session")
def tiny_bundle(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from deploy.export.app import export_bundle

    out = tmp_path_factory.mktemp("bundle")
    export_bundle(tiny_checkpoint, out, samples=64)
    return out


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One intra-op torch thread for a module's tiny networks (a second thread only contends on a
    busy 2-core machine); the count before is restored after. Use with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch  # here, not at the top: the deploy tests run without it

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
