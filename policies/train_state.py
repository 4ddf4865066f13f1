"""Resumable training state next to a checkpoint: optimizer and scheduler states as
``train_state.safetensors`` (tensors) + ``train_state.json`` (step, scalars, param groups).

No pickle: every tensor goes to safetensors, everything else to JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

TENSORS = "train_state.safetensors"
META = "train_state.json"


def save_train_state(
    directory: Path, step: int, optimizers: dict[str, Any], schedulers: dict[str, Any]
) -> None:
    """Write optimizer and scheduler states for ``step`` into ``directory``."""
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {"step": step, "optimizers": {}, "schedulers": {}}
    for name, opt in optimizers.items():
        sd = opt.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for idx, st in sd["state"].items():
            for key, value in st.items():
                if torch.is_tensor(value):
                    tensors[f"{name}/{idx}/{key}"] = value.detach().cpu().contiguous()
                else:
                    scalars.setdefault(str(idx), {})[key] = value
        meta["optimizers"][name] = {"param_groups": sd["param_groups"], "scalars": scalars}
    for name, sched in schedulers.items():
        meta["schedulers"][name] = sched.state_dict()
    save_file(tensors, str(Path(directory) / TENSORS))
    (Path(directory) / META).write_text(json.dumps(meta, indent=1))


def load_train_state(directory: Path, optimizers: dict[str, Any], schedulers: dict[str, Any]) -> int:
    """Restore states saved by ``save_train_state``; returns the step they were saved at."""
    directory = Path(directory)
    if not (directory / META).is_file():
        raise FileNotFoundError(f"{directory}: no {META} to resume from")
    meta = json.loads((directory / META).read_text())
    tensors = load_file(str(directory / TENSORS))
    for name, opt in optimizers.items():
        if name not in meta["optimizers"]:
            raise ValueError(f"{directory / META}: no state for optimizer {name!r}")
        saved = meta["optimizers"][name]
        state: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            opt_name, idx, field = key.split("/", 2)
            if opt_name == name:
                state.setdefault(int(idx), {})[field] = value
        for idx, scalars in saved["scalars"].items():
            state.setdefault(int(idx), {}).update(scalars)
        opt.load_state_dict({"state": state, "param_groups": saved["param_groups"]})
    for name, sched in schedulers.items():
        sched.load_state_dict(meta["schedulers"][name])
    return int(meta["step"])
