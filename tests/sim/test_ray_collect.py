"""spine-collect on a local Ray cluster (2 workers) equals plain collection of each shard."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sim.collect import collect, load_dataset
from sim.ray_collect import RANK_SEED_STRIDE, shard_episodes

ROOT = Path(__file__).resolve().parents[2]


def test_shards_are_even_and_refuse_too_many_workers() -> None:
    assert shard_episodes(7, 3) == [3, 2, 2]
    with pytest.raises(ValueError, match="workers <= episodes"):
        shard_episodes(2, 3)


def test_ray_collect_joins_what_plain_collect_writes(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is in the scale extra: pip install 'spine[scale]'")
    cli = Path(sys.executable).with_name("spine-collect")
    args = [str(cli), "task=reach", "episodes=5", "ray_workers=2", f"out={tmp_path / 'ray'}"]
    env = {**os.environ, "RAY_worker_niceness": "0"}
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    joined = load_dataset(tmp_path / "ray" / "reach.npz")
    meta = json.loads((tmp_path / "ray" / "reach.json").read_text())
    assert meta["ray"]["shard_episodes"] == [3, 2] and meta["episodes"] == 5
    # the reference: each shard collected by the plain collector, in this process
    parts = [
        load_dataset(collect("reach", n, k * RANK_SEED_STRIDE, tmp_path / f"shard{k}"))
        for k, n in enumerate([3, 2])
    ]
    for key, value in joined.items():
        if key == "episode":
            continue
        np.testing.assert_array_equal(value, np.concatenate([p[key] for p in parts]), err_msg=key)
    assert sorted(set(joined["episode"].tolist())) == list(range(5))
