"""Import an actor trained on Isaac Lab (``isaac.train`` or ``isaaclab train``) as a Spine
checkpoint of the ``ppo`` family, which ``spine-export`` turns into a bundle.

    .venv/bin/python -m isaac.import_policy runs/isaac/arm7 --out runs/isaac/arm7/checkpoint

Runs in Spine's main environment (torch, safetensors; no Isaac Lab, no rsl_rl). Reads the run
folder Isaac Lab writes:

- ``model_<it>.pt``, rsl_rl's checkpoint (the last one unless ``--checkpoint``), with
  ``torch.load(weights_only=True)``: tensors and plain containers only, no code runs;
- ``params/env.yaml``: the task spec the env was built from (Spine's, by name: fields, goal,
  action bound, joints, rates) and the robot;
- ``params/agent.yaml``: the actor's layers, activation and observation groups.

The observation groups must be ``observation`` then ``goal`` and the fields Spine's, in the
spec's order (what ``isaac.reach_env`` produces); the actor's MLP goes into ``PPOPolicy.net``
unchanged and its empirical normalizer ``(x - mean) / (std + eps)`` is split at the field
boundary into the policy's ``obs_norm`` and ``goal_norm`` (``std + eps`` as their std), as the
family's own training does. The actor's distribution must be the family's (rsl_rl's Beta on
[-1, 1], ``policies.ppo.runner_config``), and so is the action map, ``q + max_delta * a``.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import yaml

from policies.checkpoint import save_checkpoint
from policies.ppo import ACTIVATIONS, PPOConfig, runner_config
from policies.registry import make_policy
from sim.spec import TaskSpec

OBS_GROUPS = ["observation", "goal"]
NORMALIZER_EPS = 1e-2  # rsl_rl's EmpiricalNormalization default (rsl-rl-lib 5.5), which MLPModel uses


class RunError(ValueError):
    """The run folder does not hold an actor this importer can map onto Spine's fields."""


class _Loader(yaml.SafeLoader):
    """Safe YAML plus the ``!!python/tuple`` tag Isaac Lab's ``dump_yaml`` writes (as a list)."""


_Loader.add_constructor("tag:yaml.org,2002:python/tuple", _Loader.construct_sequence)


def read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise RunError(f"{path}: missing (a run folder of isaac.train or isaaclab train has it)")
    return yaml.load(path.read_text(), Loader=_Loader)  # a SafeLoader: builds plain data only


def last_checkpoint(run: Path) -> Path:
    """The ``model_<it>.pt`` with the highest iteration in ``run``."""
    found = sorted(run.glob("model_*.pt"), key=lambda p: int(re.sub(r"\D", "", p.stem) or -1))
    if not found:
        raise RunError(f"{run}: no model_<it>.pt (rsl_rl checkpoint)")
    return found[-1]


def actor_config(agent: dict[str, Any], actor_sd: dict[str, torch.Tensor], where: Path) -> PPOConfig:
    """The ``PPOConfig`` of the actor: layers and activation from ``agent.yaml``, checked
    against the weights."""
    actor = agent.get("actor") or {}
    dims, activation = list(actor.get("hidden_dims", [])), actor.get("activation", "")
    groups = (agent.get("obs_groups") or {}).get("actor")
    if groups != OBS_GROUPS:
        raise RunError(f"{where}: actor observation groups {groups}, Spine's are {OBS_GROUPS}")
    if not actor.get("obs_normalization"):
        raise RunError(f"{where}: the actor has no observation normalization (obs_normalization: true)")
    if not dims or len(set(dims)) != 1:
        raise RunError(f"{where}: hidden_dims {dims}: the ppo family has layers of one width")
    if activation not in ACTIVATIONS:
        raise RunError(f"{where}: activation {activation!r}; the ppo family has {sorted(ACTIVATIONS)}")
    config = PPOConfig(hidden=dims[0], layers=len(dims), activation=activation)
    want = runner_config(config)["actor"]["distribution_cfg"]
    have = actor.get("distribution_cfg") or {}
    if {k: _plain(have.get(k)) for k in want} != {k: _plain(v) for k, v in want.items()}:
        raise RunError(f"{where}: actor distribution {have}; the ppo family's is {want}")
    mlp = sorted(k for k in actor_sd if k.startswith("mlp.") and k.endswith(".weight"))
    if len(mlp) != len(dims) + 1:
        layers = f"{len(mlp)} linear layers, agent.yaml says {len(dims) + 1}"
        raise RunError(f"{where}: the actor's MLP has {layers}")
    return config


def _plain(value: Any) -> Any:
    """Tuples as lists (YAML has lists only), to compare configs."""
    return list(value) if isinstance(value, tuple) else value


def import_run(run: Path, out: Path, checkpoint: Path | None = None) -> Path:
    """Write the Spine checkpoint of ``run``'s actor to ``out``; returns ``out``."""
    run = Path(run)
    ckpt = Path(checkpoint) if checkpoint else last_checkpoint(run)
    env, agent = read_yaml(run / "params" / "env.yaml"), read_yaml(run / "params" / "agent.yaml")
    saved = torch.load(ckpt, map_location="cpu", weights_only=True)
    actor_sd: dict[str, torch.Tensor] = saved["actor_state_dict"]
    if "task_spec" not in env:
        raise RunError(f"{run / 'params' / 'env.yaml'}: no task_spec (not a Spine-Reach env)")
    spec = TaskSpec.from_dict(env["task_spec"])
    config = actor_config(agent, actor_sd, run / "params" / "agent.yaml")
    policy = make_policy("ppo", spec, config)
    load_actor(policy, actor_sd, spec)
    iteration = int(saved.get("iter", 0))
    isaac = {  # provenance: where and how it was trained
        "run": str(run.resolve()),
        "checkpoint": ckpt.name,
        "iteration": iteration,
        "num_envs": (env.get("scene") or {}).get("num_envs"),
        "num_steps_per_env": agent.get("num_steps_per_env"),
        "seed": agent.get("seed"),
    }
    train_config = {  # the layout of policies.trainer's record: spine-run reads config.task
        "task": spec.name,
        "family": "ppo",
        "source": "isaaclab",
        "config": {"task": {"robot": env.get("robot", "")}, "policy": asdict(config), "isaac": isaac},
    }
    return save_checkpoint(out, policy.eval(), train_config, iteration, {})


@torch.no_grad()
def load_actor(policy: Any, actor_sd: dict[str, torch.Tensor], spec: TaskSpec) -> None:
    """Copy rsl_rl's ``MLPModel`` state into ``policy`` (``PPOPolicy``): the MLP as it is, the
    normalizer split into ``obs_norm`` (the spec's observation) and ``goal_norm``."""
    mlp = {k[len("mlp.") :]: v for k, v in actor_sd.items() if k.startswith("mlp.")}
    policy.net.load_state_dict(mlp)
    mean, std = actor_sd["obs_normalizer._mean"][0].float(), actor_sd["obs_normalizer._std"][0].float()
    n_in = spec.obs_size + spec.goal.size
    if mean.numel() != n_in:
        raise RunError(f"actor input has {mean.numel()} values; {spec.name} on {spec.robot} has {n_in}")
    std = std + NORMALIZER_EPS
    n_obs = spec.obs_size
    for norm, rows in ((policy.obs_norm, slice(0, n_obs)), (policy.goal_norm, slice(n_obs, None))):
        norm.mean.copy_(mean[rows])
        norm.std.copy_(std[rows])
        norm.fitted.fill_(bool(actor_sd["obs_normalizer.count"] > 0))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="isaac.import_policy", description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="Isaac Lab run folder (model_<it>.pt, params/)")
    ap.add_argument("--out", type=Path, required=True, help="Spine checkpoint folder to write")
    ap.add_argument("--checkpoint", type=Path, help="a model_<it>.pt (default: the run's last)")
    args = ap.parse_args(argv)
    try:
        out = import_run(args.run, args.out, args.checkpoint)
    except (RunError, FileNotFoundError, KeyError) as e:
        print(f"isaac.import_policy: {e}", file=sys.stderr)
        return 1
    print(f"wrote {out} (family ppo); export it: spine-export {out} --out <bundle>")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
