"""Data-parallel training under torchrun (2 CPU processes, gloo) equals one process.

Every offline family and the critic train with a fixed seed and global batch once in one
process and once under ``torchrun --nproc_per_node=2`` (tests/policies/dist_worker.py); the
saved weights must agree within float summation-order error, and the two ranks' weights must
be identical to each other.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from policies.distributed import Dist
from tests.policies.dist_worker import FAMILIES

WORKER = Path(__file__).with_name("dist_worker.py")
ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-4  # max |w_1 - w_2| after 40 Adam steps (measured ~1e-6: summation order)


def _run(args: list[str], out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "SPINE_DIST_TIMEOUT_S": "300"}
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict, dict]:
    from policies.critic_data import CriticDataConfig, collect_critic_data
    from sim.collect import collect

    base = tmp_path_factory.mktemp("dist")
    dataset = collect("reach", episodes=6, seed=0, out_dir=base / "data")
    collect_critic_data("reach", CriticDataConfig(episodes=4)).save(f"{dataset}.critic.npz")
    one, two = base / "one", base / "two"
    one.mkdir(), two.mkdir()
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    r1 = _run([sys.executable, str(WORKER), str(dataset), str(one)], one)
    r2 = _run([torchrun, "--nproc_per_node=2", "--standalone", str(WORKER), str(dataset), str(two)], two)
    return one, two, r1, r2


def _max_gap(a: Path, b: Path) -> float:
    x, y = load_file(str(a)), load_file(str(b))
    assert x.keys() == y.keys()
    return max(float((x[k].double() - y[k].double()).abs().max()) for k in x if x[k].numel())


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_two_processes_train_what_one_does(runs: tuple, family: str) -> None:
    one, two, r1, r2 = runs
    assert (r1["world_size"], r2["world_size"]) == (1, 2)
    assert r2[family] == 0.0  # both ranks hold the same weights
    ckpt = "checkpoint/model.safetensors"
    assert _max_gap(one / family / ckpt, two / family / ckpt) < TOLERANCE
    # rank 0 alone wrote the outputs a single process writes
    assert (two / family / "learning_curves.png").is_file()
    assert (two / family / "summary.json").is_file()


def test_online_family_ranks_agree(runs: tuple) -> None:
    """SAC+HER: each rank collects its own experience (not equal to one process by design), but
    the averaged steps and merged normalizer sums keep the ranks' weights identical."""
    _, two, _, r2 = runs
    assert r2["sac_her"] == 0.0
    assert (two / "sac_her" / "checkpoint" / "model.safetensors").is_file()


def test_critic_two_processes(runs: tuple) -> None:
    one, two, _, r2 = runs
    assert r2["critic_gap"] == 0.0
    assert _max_gap(one / "critic.safetensors", two / "critic.safetensors") < TOLERANCE


def test_uneven_global_batch_refused() -> None:
    with pytest.raises(ValueError, match="batch_size=33 is the global batch"):
        Dist(rank=1, world_size=2).local_batch(33)


def test_shard_takes_contiguous_slices() -> None:
    batch = {"x": torch.arange(8), "y": torch.arange(8) * 10}
    parts = [Dist(rank=r, world_size=2).shard(batch) for r in range(2)]
    assert torch.equal(torch.cat([p["x"] for p in parts]), batch["x"])
    assert torch.equal(parts[1]["y"], torch.tensor([40, 50, 60, 70]))
    assert Dist().shard(batch) is batch  # single process: untouched


def test_two_nodes_through_the_hydra_command(runs: tuple, tmp_path: Path) -> None:
    """``torchrun --nnodes=2`` as the README shows it, both "nodes" on this machine (loopback):
    the same ``spine-train`` Hydra command; rank 0 (node 0) writes the checkpoint."""
    import socket

    one, _, _, _ = runs
    dataset = next((one.parent / "data").glob("reach.npz"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SPINE_DIST_TIMEOUT_S": "300"}
    hydra_args = ["task=reach", "policy=gcbc", f"dataset={dataset}", f"out={tmp_path}", "steps=20"]
    hydra_args += ["batch_size=32", "eval_every=20", "eval_episodes=1", "policy.hidden=32"]
    launch = [str(bin_dir / "torchrun"), "--nnodes=2", "--nproc_per_node=1", "--master_addr=127.0.0.1"]
    train = str(bin_dir / "spine-train")
    nodes = [
        subprocess.Popen(
            [*launch, f"--master_port={port}", f"--node_rank={rank}", train, *hydra_args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in (0, 1)
    ]
    outs = [node.communicate(timeout=600)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outs[0][-2000:] + outs[1][-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["ranks"] == 2 and summary["max_parameter_difference_between_ranks"] == 0.0
    assert "trained gcbc on reach" in outs[0] and "trained gcbc" not in outs[1]
