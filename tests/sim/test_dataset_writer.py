"""The one dataset writer: what it checks and adds, and that every producer (expert collection,
batched collection, logs to datasets) writes the same keys, dtypes and sidecar fields through it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from sim.dataset_writer import DATASET_KEYS, NO_MODE, cost_key, dataset_dtypes, load_dataset, write_dataset
from sim.spec import TaskSpec

ROOT = Path(__file__).parents[2]
N = 4
TOY_SPEC = SimpleNamespace(cost_kinds=("speed", "collision"), to_dict=lambda: {"name": "toy"})


def toy_arrays(n: int = N) -> dict[str, object]:
    """Every array of the format for ``TOY_SPEC``, in loose types (lists, float64, int64)."""
    arrays: dict[str, object] = {
        key: np.arange(n * 2, dtype=np.float64).reshape(n, 2) for key in list(DATASET_KEYS)[:7]
    }
    arrays.update(
        reward=[-1.0] * n,
        episode=[0] * n,
        step=list(range(n)),
        done=[0] * (n - 1) + [1],
        expert_mode=np.full(n, NO_MODE),
        cost_speed=np.zeros(n),
        cost_collision=np.ones(n, dtype=np.int64),
    )
    return arrays


def test_writer_casts_to_the_format_and_completes_the_sidecar(tmp_path: Path) -> None:
    path = write_dataset(tmp_path / "new", "toy", TOY_SPEC, toy_arrays(), {"mode": "test", "seed": 3})
    assert path == tmp_path / "new" / "toy.npz"
    data = load_dataset(path)
    assert list(data) == list(dataset_dtypes(TOY_SPEC.cost_kinds))  # written in the format's order
    for key, dtype in dataset_dtypes(TOY_SPEC.cost_kinds).items():
        assert data[key].dtype == dtype and len(data[key]) == N, key
    assert data["done"].tolist() == [False, False, False, True]
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta == {
        "mode": "test",
        "seed": 3,
        "task": {"name": "toy"},
        "transitions": N,
        "arrays": {key: doc for key, (_, doc) in DATASET_KEYS.items()},
        "cost_arrays": ["cost_speed", "cost_collision"],
    }


def test_writer_refuses_arrays_outside_the_format(tmp_path: Path) -> None:
    arrays = toy_arrays()
    del arrays[cost_key("speed")]
    with pytest.raises(KeyError, match="cost_speed"):
        write_dataset(tmp_path, "toy", TOY_SPEC, arrays, {})
    with pytest.raises(ValueError, match="extra"):
        write_dataset(tmp_path, "toy", TOY_SPEC, {**toy_arrays(), "extra": np.zeros(N)}, {})
    with pytest.raises(ValueError, match="rows"):
        write_dataset(tmp_path, "toy", TOY_SPEC, {**toy_arrays(), "step": [0, 1]}, {})
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_the_format_imports_without_torch_or_mujoco() -> None:
    code = (
        "import sys; import sim.dataset_writer; "
        "print(sorted(m for m in ('torch', 'mujoco', 'deploy', 'policies') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_collectors_and_logs_write_the_same_format(tmp_path: Path) -> None:
    from deploy.logs.mapping import load_mapping
    from deploy.offline.log_dataset import log_to_dataset
    from sim.collect import collect
    from sim.vector_collect import collect_batched

    kw = {"episode_steps": 5}
    paths = {
        "collect": collect("reach", 2, seed=0, out_dir=tmp_path / "a", task_kwargs=kw),
        "navigate": collect("maze", 1, seed=0, out_dir=tmp_path / "b", task_kwargs=kw, mode="navigate"),
        "collect_batched": collect_batched(
            "reach", 3, seed=0, out_dir=tmp_path / "c", task_kwargs=kw, num_envs=2, threads=1
        ),
        "log_to_dataset": log_to_dataset(
            ROOT / "tests" / "artifacts" / "widowx_golden.bag",
            load_mapping(ROOT / "configs" / "replay" / "widowx200.yaml"),
            tmp_path / "d",
        ),
    }
    for producer, path in paths.items():
        meta = json.loads(path.with_suffix(".json").read_text())
        spec = TaskSpec.from_dict(meta["task"])
        dtypes = dataset_dtypes(spec.cost_kinds)
        with np.load(path, allow_pickle=False) as data:
            assert data.files == list(dtypes), producer
            for key, dtype in dtypes.items():
                assert data[key].dtype == dtype, (producer, key)
                assert len(data[key]) == meta["transitions"] > 0, (producer, key)
            for key in ("observation", "next_observation"):
                assert data[key].shape[1:] == (spec.obs_size,), (producer, key)
            for key in ("achieved_goal", "desired_goal", "next_achieved_goal"):
                assert data[key].shape[1:] == (spec.goal.size,), (producer, key)
            assert data["action"].ndim == 2 and data["action"].shape == data["expert_action"].shape
        assert meta["arrays"] == {key: doc for key, (_, doc) in DATASET_KEYS.items()}, producer
        assert meta["cost_arrays"] == [cost_key(kind) for kind in spec.cost_kinds], producer
        assert {"task_kwargs", "mode", "episodes", "elapsed_s"} <= set(meta), producer


def test_a_missing_or_foreign_dataset_is_refused_naming_file_and_task(tmp_path) -> None:
    """No traceback from numpy for a wrong path; a dataset of another task or robot is refused
    before training, naming both (issue 22)."""
    import pytest

    import sim
    from sim.collect import collect
    from sim.dataset_writer import DatasetError, load_dataset

    with pytest.raises(DatasetError, match=r"nowhere\.npz: no such file"):
        load_dataset(tmp_path / "nowhere.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match=r"junk\.npz: not a readable"):
        load_dataset(tmp_path / "junk.npz")
    path = collect("reach", episodes=1, seed=0, out_dir=tmp_path / "data")
    load_dataset(path, sim.make("reach").task_spec)
    with pytest.raises(DatasetError, match=r"collected for task 'reach' on robot 'arm7'.*'widowx_reach'"):
        load_dataset(path, sim.make("widowx_reach").task_spec)
