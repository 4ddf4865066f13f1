"""Expert collection spread over a Ray cluster: ``spine-collect ... ray_workers=4``.

Each of ``workers`` Ray tasks runs ``sim.collect.collect`` for its share of the episodes with
its own seed (``seed + k * RANK_SEED_STRIDE``, so the shards draw different goals), in its own
process; the driver joins the shards in worker order (episode numbers renumbered, one flat
dataset) and writes it with the one dataset writer. The sidecar records the shards' seeds and
episode counts, so the data can be reproduced shard by shard with plain ``spine-collect``.

``ray_address=""`` starts a local cluster with ``workers`` CPUs (``RAY_worker_niceness=0`` is
set unless given: Ray runs workers at nice 15, which on a shared machine starves them);
``ray_address=auto`` or ``ray://host:10001`` joins a running one (``ray start --head`` on
one machine, ``ray start --address=...`` on the others).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import sim
from sim.dataset_writer import load_dataset, write_dataset

RANK_SEED_STRIDE = 1_000_003  # shard k's seed: seed + k * this (as torchrun ranks' seeds)


def shard_episodes(episodes: int, workers: int) -> list[int]:
    """Episodes per worker, as even as possible, earlier workers taking the remainder."""
    if workers < 1 or episodes < workers:
        raise ValueError(
            f"ray collect: need 1 <= workers <= episodes, got workers={workers}, episodes={episodes}"
        )
    base, extra = divmod(episodes, workers)
    return [base + (k < extra) for k in range(workers)]


def _collect_shard(task: str, episodes: int, seed: int, kwargs: dict[str, Any]) -> tuple[dict, dict]:
    """One worker's ``collect`` into a temporary folder; returns its arrays and sidecar."""
    from sim.collect import collect

    with tempfile.TemporaryDirectory() as tmp:
        path = collect(task, episodes, seed, Path(tmp), **kwargs)
        arrays = dict(load_dataset(path))
        meta = json.loads(path.with_suffix(".json").read_text())
    return arrays, meta


def collect_on_ray(
    task: str,
    episodes: int,
    seed: int,
    out_dir: Path,
    workers: int,
    ray_address: str = "",
    **kwargs: Any,
) -> Path:
    """Collect ``episodes`` of ``task``'s expert on ``workers`` Ray tasks; one dataset out.

    ``kwargs`` are ``sim.collect.collect``'s (``task_kwargs``, ``action_noise``, ``mode``,
    ``randomization``), the same for every shard."""
    try:
        import ray
    except ImportError as e:
        raise ImportError(f"ray_workers needs Ray: pip install 'spine[scale]' ({e})") from e
    counts = shard_episodes(episodes, workers)
    seeds = [seed + k * RANK_SEED_STRIDE for k in range(workers)]
    started_here = not ray.is_initialized()
    if started_here:
        os.environ.setdefault("RAY_worker_niceness", "0")
        if ray_address:
            ray.init(address=ray_address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    start = time.perf_counter()
    try:
        remote = ray.remote(num_cpus=1)(_collect_shard)
        shards = ray.get([remote.remote(task, n, s, kwargs) for n, s in zip(counts, seeds, strict=True)])
    finally:
        if started_here:
            ray.shutdown()
    arrays, offset = {}, 0
    for part, _ in shards:
        part = dict(part)
        part["episode"] = part["episode"] + offset
        offset = int(part["episode"].max()) + 1 if len(part["episode"]) else offset
        for key, value in part.items():
            arrays.setdefault(key, []).append(value)
    joined = {key: np.concatenate(parts) for key, parts in arrays.items()}
    first = shards[0][1]
    successes = [m.get("expert_success_rate") for _, m in shards]
    success = None if None in successes else sum(r * n for r, n in zip(successes, counts, strict=True))
    meta = {
        **{k: v for k, v in first.items() if k not in ("task", "transitions", "arrays", "cost_arrays")},
        "seed": seed,
        "episodes": episodes,
        "elapsed_s": round(time.perf_counter() - start, 3),
        "ray": {"workers": workers, "shard_seeds": seeds, "shard_episodes": counts, "address": ray_address},
        "expert_success_rate": None if success is None else success / episodes,
    }
    spec = sim.make(task, **(kwargs.get("task_kwargs") or {})).task_spec
    return write_dataset(out_dir, task, spec, joined, meta)
