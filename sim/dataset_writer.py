"""Spine's dataset format in one place: its arrays, the one writer every producer uses, the reader.

A dataset is ``<name>.npz`` (flat arrays, one row per transition, no pickle) plus a
``<name>.json`` sidecar (the task spec, how the data was made, and the array docs).
``sim.collect.collect``, ``sim.vector_collect.collect_batched`` and
``deploy.offline.log_dataset.log_to_dataset`` all write through ``write_dataset``, so the three
produce the same keys and dtypes; ``policies`` reads them with ``load_dataset``.

Numpy only (no torch, no MuJoCo): ``deploy`` may import it on a robot.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from sim.spec import TaskSpec

# Arrays in every dataset: name -> (dtype, what it holds); N = transitions. Each of the
# task's cost kinds adds a float32 ``cost_<kind>`` array (0 or 1, after the action).
DATASET_KEYS: dict[str, tuple[type, str]] = {
    "observation": (np.float32, "(N, obs) observation before the action"),
    "achieved_goal": (np.float32, "(N, goal) achieved goal before the action"),
    "desired_goal": (np.float32, "(N, goal) desired goal (navigate: the expert's temporary target)"),
    "action": (np.float32, "(N, act) executed absolute joint targets (action unit)"),
    "expert_action": (np.float32, "(N, act) expert's targets before action noise (action unit)"),
    "next_observation": (np.float32, "(N, obs) observation after the action"),
    "next_achieved_goal": (np.float32, "(N, goal) achieved goal after the action"),
    "reward": (np.float32, "(N,) reward of the transition toward desired_goal"),
    "episode": (np.int32, "(N,) episode index"),
    "step": (np.int32, "(N,) control step within the episode"),
    "done": (np.bool_, "(N,) last transition of its episode"),
    "expert_mode": (
        np.int32,
        "(N,) the expert's strategy this episode (push: 0 near, 1 far side), -1 if none",
    ),
}
NO_MODE = -1
"""``expert_mode`` of a transition whose expert has no strategies (or no expert at all)."""
COST_DTYPE = np.float32
"""dtype of every ``cost_<kind>`` array."""


def cost_key(kind: str) -> str:
    """Dataset array name of the cost ``kind``, e.g. ``"cost_collision"``."""
    return f"cost_{kind}"


def dataset_dtypes(cost_kinds: Iterable[str]) -> dict[str, type]:
    """Every array of a dataset with these cost kinds -> its dtype, in the order they are written."""
    dtypes = {key: dtype for key, (dtype, _) in DATASET_KEYS.items()}
    dtypes.update({cost_key(kind): COST_DTYPE for kind in cost_kinds})
    return dtypes


def write_dataset(
    out_dir: Path, name: str, spec: TaskSpec, arrays: Mapping[str, ArrayLike], meta: Mapping[str, Any]
) -> Path:
    """Write ``<out_dir>/<name>.npz`` and its ``.json`` sidecar; the one way datasets are written.

    Args:
        out_dir: folder; created if missing.
        name: file stem, e.g. the task name.
        spec: the task's spec; its ``cost_kinds`` name the cost arrays.
        arrays: every key of ``DATASET_KEYS`` and one ``cost_<kind>`` per cost kind, each with
            N rows (arrays or nested lists); cast here to the format's dtypes.
        meta: how the data was made (mode, seed, episodes, ...). The writer adds ``task``
            (``spec.to_dict()``), ``transitions`` (N), ``arrays`` (the docs of
            ``DATASET_KEYS``) and ``cost_arrays`` (the cost array names).

    Returns:
        Path of the ``.npz`` file.

    Raises:
        KeyError: an array of the format is missing.
        ValueError: an array is not part of the format, or the arrays disagree on N.
    """
    dtypes = dataset_dtypes(spec.cost_kinds)
    missing = [key for key in dtypes if key not in arrays]
    if missing:
        raise KeyError(f"write_dataset {name!r}: no array for {missing}")
    extra = sorted(set(arrays) - set(dtypes))
    if extra:
        raise ValueError(f"write_dataset {name!r}: arrays {extra} are not in the dataset format")
    out = {key: np.asarray(arrays[key], dtype=dtype) for key, dtype in dtypes.items()}
    n = len(out["reward"])
    rows = {key: len(value) for key, value in out.items() if len(value) != n}
    if rows:
        raise ValueError(f"write_dataset {name!r}: {n} rewards but rows {rows}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.npz"
    np.savez_compressed(path, **out)
    sidecar = {
        **meta,
        "task": spec.to_dict(),
        "transitions": n,
        "arrays": {key: doc for key, (_, doc) in DATASET_KEYS.items()},
        "cost_arrays": [cost_key(kind) for kind in spec.cost_kinds],
    }
    path.with_suffix(".json").write_text(json.dumps(sidecar, indent=2, sort_keys=True))
    return path


class DatasetError(ValueError):
    """A dataset file is missing, unreadable or for another task; the message names the file."""


def load_dataset(path: Path, spec: Any = None) -> dict[str, np.ndarray]:
    """Load a dataset ``.npz`` without pickle; check its arrays against ``DATASET_KEYS``
    and, when the JSON sidecar is there, the task's cost arrays and (with ``spec``, the task
    spec it is for) that it was collected for that task and robot.

    Raises:
        DatasetError: no such file, not a dataset, or collected for another task / robot.
        KeyError: an array is missing (the message names the file and the key).
        ValueError: arrays disagree on the number of transitions.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"dataset {path}: no such file (spine-collect writes <out>/<task>.npz)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError) as e:
        raise DatasetError(f"dataset {path}: not a readable .npz dataset ({type(e).__name__}: {e})") from None
    if spec is not None:
        check_dataset_task(path, spec)
    required = list(DATASET_KEYS)
    sidecar = path.with_suffix(".json")
    if sidecar.exists():
        required += json.loads(sidecar.read_text()).get("cost_arrays", [])
    for key in required:
        if key not in arrays:
            raise KeyError(f"dataset {path} has no array {key!r} (has {sorted(arrays)})")
    n = len(arrays["reward"])
    for key, value in arrays.items():
        if len(value) != n:
            raise ValueError(f"dataset {path}: array {key!r} has {len(value)} rows, expected {n}")
    return arrays


def check_dataset_task(path: Path, spec: Any) -> None:
    """``DatasetError`` when the sidecar says the dataset was collected for another task,
    robot, joints or observation than ``spec`` (a ``TaskSpec``); nothing without a sidecar."""
    sidecar = Path(path).with_suffix(".json")
    if not sidecar.is_file():
        return
    theirs = json.loads(sidecar.read_text()).get("task")
    if not isinstance(theirs, dict):
        return
    mine = json.loads(json.dumps(spec.to_dict()))  # lists, as the sidecar holds them
    for key in ("name", "robot", "joint_names", "observation", "goal"):
        if key in theirs and theirs[key] != mine.get(key):
            raise DatasetError(
                f"dataset {path} was collected for task {theirs.get('name')!r} on robot "
                f"{theirs.get('robot')!r}; training is for task {mine['name']!r} on robot "
                f"{mine['robot']!r} ({key} differs: {theirs[key]!r} vs {mine.get(key)!r})"
            )
