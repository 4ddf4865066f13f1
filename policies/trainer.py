"""One trainer for every family: update -> log -> evaluate in sim -> checkpoint.

Reads like the algorithm (rsl_rl's runner); the family owns its losses, samplers and (for
online families) its environments, behind ``policies.family.PolicyFamily``.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

import sim
from policies import distributed
from policies.checkpoint import load_weights, save_checkpoint
from policies.family import TrainContext
from policies.metrics import MetricsLog, plot_learning_curves
from policies.registry import make_policy
from policies.torch_graph import policy_agent
from policies.train_state import load_train_state, save_train_state
from sim.collect import load_dataset
from sim.evaluate import evaluate_agent


@dataclass
class TrainConfig:
    """``spine-train``'s own fields; ``task`` and ``policy`` are config groups."""

    dataset: str = ""  # dataset .npz written by spine-collect ("" for online families)
    out: str = "runs/train"  # output folder: checkpoint/, metrics.csv, learning_curves.png, tb/
    seed: int = 0  # seeds python, numpy, torch, the family's samplers and evaluation episodes
    steps: int = 20_000  # gradient steps
    batch_size: int = 256  # transitions per gradient step
    log_every: int = 200  # gradient steps between loss rows in metrics.csv / TensorBoard
    eval_every: int = 5_000  # gradient steps between success-rate evaluations in sim
    eval_episodes: int = 20  # episodes per evaluation
    eval_seed: int = 10_000  # first evaluation episode seed (kept apart from data seeds)
    eval_task: dict[str, Any] = field(default_factory=dict)  # task overrides for evaluation only
    save_every: int = 0  # gradient steps between resumable checkpoints (0: only at the end)
    resume: bool = False  # continue from out/checkpoint if it has a training state
    torch_threads: int = 1  # intra-op threads for torch on CPU (2 on a busy 2-core machine: 30x slower)
    extras: dict[str, Any] = field(default_factory=dict)  # family-specific knobs (TrainContext)
    task: Any = field(default=None)  # task config group (set by Hydra)
    robot: Any = field(default=None)  # robot config group: robot=panda (configs/robot/; none: the task's arm)
    policy: Any = field(default=None)  # policy config group (set by Hydra)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002  (libraries that use the global stream)
    torch.manual_seed(seed)


def train(
    cfg: TrainConfig, task: str, family: str, task_kwargs: dict[str, Any], policy_cfg: Any
) -> dict[str, Any]:
    """Train ``family`` on ``task`` (from ``cfg.dataset`` when given); returns final metrics.

    Under ``torchrun`` every rank runs this with the same config (``policies.distributed``):
    the same seed, its slice of each global batch, gradients averaged; rank 0 evaluates, logs
    and saves, the others return rank 0's final metrics unknown (an empty dict)."""
    dist = distributed.init()
    dist.local_batch(cfg.batch_size)  # refuse a global batch the ranks cannot split
    seed_everything(cfg.seed)
    torch.set_num_threads(cfg.torch_threads)
    out = Path(cfg.out)
    eval_env = sim.make(task, **{**task_kwargs, **cfg.eval_task})
    spec = sim.make(task, **task_kwargs).task_spec if cfg.eval_task else eval_env.task_spec
    data = load_dataset(Path(cfg.dataset), spec) if cfg.dataset else None  # for this task and robot
    policy = make_policy(family, eval_env.task_spec, policy_cfg)
    ctx = TrainContext(task, task_kwargs, data, cfg.batch_size, cfg.steps, cfg.seed, dict(cfg.extras))
    policy.setup_training(ctx)
    dist.broadcast_module(policy)
    if not getattr(policy, "syncs_own_gradients", False):  # e.g. ppo: rsl_rl's runner averages them
        dist.attach(policy.optimizers().values())
    try:
        return _run(cfg, task, family, task_kwargs, policy_cfg, policy, eval_env, out)
    finally:  # training envs (online families) and the evaluation env are released on any exit
        if callable(getattr(policy, "close", None)):
            policy.close()
        eval_env.close()


def _run(
    cfg: TrainConfig,
    task: str,
    family: str,
    task_kwargs: dict[str, Any],
    policy_cfg: Any,
    policy: Any,
    eval_env: Any,
    out: Path,
) -> dict[str, Any]:
    """The training loop of :func:`train` (resume, updates, logs, evaluations, checkpoints)."""
    dist = distributed.current()
    if not dist.is_main:
        return _follow(cfg, policy, out)
    start = 0
    if cfg.resume:
        start = resume(policy, out / "checkpoint")
        dist.barrier()  # the others load the checkpoint once it is read here
    log, tb = MetricsLog(out / "metrics.csv", keep=start > 0), _tensorboard(out / "tb")
    record = {"task": task, "family": family, "config": _plain(cfg, task_kwargs, policy_cfg)}
    t0, final = time.perf_counter(), {}
    bar = tqdm(range(start + 1, cfg.steps + 1), desc=f"train {family}/{task}", unit="step", mininterval=1.0)
    for step in bar:
        metrics = policy.update(step)
        if step % cfg.log_every == 0 or step == cfg.steps:
            metrics = dist.mean_metrics(metrics)
            log.log(step, **metrics, wall_s=time.perf_counter() - t0)
            _tb_write(tb, step, metrics)
            bar.set_postfix({k: f"{v:.2e}" for k, v in list(metrics.items())[:2]})
        if step % cfg.eval_every == 0 or step == cfg.steps:
            final = evaluate_policy(policy, eval_env, cfg.eval_episodes, cfg.eval_seed)
            log.log(step, success_rate=final["success_rate"], wall_s=time.perf_counter() - t0)
            _tb_write(tb, step, {"eval/success_rate": final["success_rate"]})
            bar.write(
                f"step {step}: success {final['success_rate']:.2f}, "
                f"final distance {final['final_distance_mean']:.3f}"
            )
        if cfg.save_every and step % cfg.save_every == 0 and step < cfg.steps:
            _save(out / "checkpoint", policy, record, step, final)
    final.update(steps=cfg.steps, wall_s=time.perf_counter() - t0)
    if dist.active:  # the ranks' weights must agree (they took the same averaged steps)
        gap = dist.max_abs_difference(policy)
        final.update(ranks=dist.world_size, max_parameter_difference_between_ranks=gap)
    _save(out / "checkpoint", policy, record, cfg.steps, final)
    plot_learning_curves(out / "metrics.csv", out / "learning_curves.png", f"{family} on {task}")
    (out / "summary.json").write_text(json.dumps(final, indent=2))
    if tb is not None:
        tb.close()
    return final


def _follow(cfg: TrainConfig, policy: Any, out: Path) -> dict[str, Any]:
    """The loop of a rank other than 0: the same updates, metrics averaged at the same steps,
    no evaluation, logs or checkpoints."""
    dist = distributed.current()
    start = 0
    if cfg.resume:
        dist.barrier()  # rank 0 has read the checkpoint (and may have refused it)
        start = resume(policy, out / "checkpoint")
    for step in range(start + 1, cfg.steps + 1):
        metrics = policy.update(step)
        if step % cfg.log_every == 0 or step == cfg.steps:
            dist.mean_metrics(metrics)
    dist.max_abs_difference(policy)
    return {}


def evaluate_policy(policy: Any, env: Any, episodes: int, seed: int) -> dict[str, float]:
    """Success rate etc. of the torch policy in sim (eval mode, no grad, averaged weights), run by
    the executor that ships (``policies.torch_graph.policy_agent``: chunk queue, subgoal hold),
    its chunk noise seeded from ``seed``, the first episode's seed."""
    policy.eval()
    with torch.no_grad(), _averaged(policy):
        result = evaluate_agent(env, policy_agent(policy, seed), episodes, seed).as_dict()
    policy.train()
    return result


def resume(policy: Any, checkpoint: Path) -> int:
    """Load weights, optimizer/scheduler states and the family's own state (``load_state``,
    e.g. SAC+HER's replay); returns the step to continue after."""
    load_weights(policy, checkpoint)
    step = load_train_state(checkpoint, policy.optimizers(), _schedulers(policy))
    if callable(getattr(policy, "load_state", None)):  # e.g. an online family's replay
        policy.load_state(checkpoint)
    print(f"resumed {checkpoint} at step {step}")
    return step


def _save(directory: Path, policy: Any, record: dict[str, Any], step: int, metrics: dict[str, Any]) -> None:
    with _averaged(policy):  # a checkpoint holds the averaged weights (the family keeps the live ones)
        save_checkpoint(directory, policy, record, step, metrics)
        save_train_state(directory, step, policy.optimizers(), _schedulers(policy))
        if callable(getattr(policy, "save_state", None)):
            policy.save_state(directory)


def _averaged(policy: Any) -> AbstractContextManager[None]:
    """The family's moving-average block (``AdamWCosine.averaged``), or a no-op."""
    return policy.averaged() if callable(getattr(policy, "averaged", None)) else nullcontext()


def _schedulers(policy: Any) -> dict[str, Any]:
    return policy.schedulers() if hasattr(policy, "schedulers") else {}


def _tensorboard(path: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is in the train extra; training works without it
        return None
    return SummaryWriter(str(path))


def _tb_write(tb: Any, step: int, metrics: dict[str, float]) -> None:
    if tb is not None:
        for k, v in metrics.items():
            tb.add_scalar(k if "/" in k else f"train/{k}", v, step)


def _plain(cfg: TrainConfig, task_kwargs: dict[str, Any], policy_cfg: Any) -> dict[str, Any]:
    own = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name not in ("task", "policy")}
    return {**own, "task": task_kwargs, "policy": dataclasses.asdict(policy_cfg)}
