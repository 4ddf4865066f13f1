"""Offline trainer: sample batches -> update -> log -> evaluate in sim -> checkpoint.

Reads like the algorithm (rsl_rl's runner): everything else lives in small helpers.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

import sim
from policies.checkpoint import save_checkpoint
from policies.metrics import MetricsLog, plot_learning_curves
from policies.registry import make_policy
from sim.collect import load_dataset
from sim.evaluate import evaluate


@dataclass
class TrainConfig:
    """``spine-train``'s own fields; ``task`` and ``policy`` are config groups."""

    dataset: str = ""  # dataset .npz written by spine-collect (required)
    out: str = "runs/train"  # output folder: checkpoint/, metrics.csv, learning_curves.png
    seed: int = 0  # seeds torch, numpy batch sampling and evaluation episodes
    steps: int = 20_000  # gradient steps
    batch_size: int = 256  # transitions per gradient step
    log_every: int = 200  # gradient steps between loss rows in metrics.csv
    eval_every: int = 5_000  # gradient steps between success-rate evaluations in sim
    eval_episodes: int = 20  # episodes per evaluation
    eval_seed: int = 10_000  # first evaluation episode seed (kept apart from data seeds)
    torch_threads: int = 2  # intra-op threads for torch on CPU
    task: Any = field(default=None)  # task config group (set by Hydra)
    policy: Any = field(default=None)  # policy config group (set by Hydra)


def train(
    cfg: TrainConfig, task: str, family: str, task_kwargs: dict[str, Any], policy_cfg: Any
) -> dict[str, Any]:
    """Train ``family`` on ``cfg.dataset`` for task ``task``; returns the final metrics."""
    if not cfg.dataset:
        raise ValueError("train: field 'dataset' is required (a .npz written by spine-collect)")
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.torch_threads)
    out = Path(cfg.out)
    data = load_dataset(Path(cfg.dataset))
    env = sim.make(task, **task_kwargs)
    policy = make_policy(family, env.task_spec, policy_cfg)
    policy.fit_normalizers(data)
    opt = torch.optim.AdamW(policy.parameters(), lr=policy_cfg.lr, weight_decay=policy_cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.steps, 1))
    batches = BatchSampler(data, cfg.batch_size, cfg.seed)
    log = MetricsLog(out / "metrics.csv")
    record = {"task": task, "family": family, "config": _plain(cfg, task_kwargs, policy_cfg)}
    t0, final = time.perf_counter(), {}
    bar = tqdm(range(1, cfg.steps + 1), desc=f"train {family}/{task}", unit="step", mininterval=1.0)
    for step in bar:
        loss, metrics = policy.loss(batches.sample())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % cfg.log_every == 0 or step == cfg.steps:
            log.log(step, **metrics, wall_s=time.perf_counter() - t0)
            bar.set_postfix(loss=f"{metrics['loss']:.2e}")
        if step % cfg.eval_every == 0 or step == cfg.steps:
            final = evaluate_policy(policy, env, cfg.eval_episodes, cfg.eval_seed)
            log.log(step, success_rate=final["success_rate"], wall_s=time.perf_counter() - t0)
            bar.write(
                f"step {step}: success {final['success_rate']:.2f}, "
                f"final distance {final['final_distance_mean'] * 100:.1f} cm"
            )
    final.update(steps=cfg.steps, wall_s=time.perf_counter() - t0)
    save_checkpoint(out / "checkpoint", policy, record, cfg.steps, final)
    plot_learning_curves(out / "metrics.csv", out / "learning_curves.png", f"{family} on {task}")
    (out / "summary.json").write_text(json.dumps(final, indent=2))
    return final


def evaluate_policy(policy: torch.nn.Module, env: Any, episodes: int, seed: int) -> dict[str, float]:
    """Success rate etc. of the torch policy in sim (eval mode, no grad)."""
    policy.eval()

    @torch.no_grad()
    def act(obs: dict[str, np.ndarray]) -> np.ndarray:
        o = torch.as_tensor(obs["observation"], dtype=torch.float32)[None]
        g = torch.as_tensor(obs["desired_goal"], dtype=torch.float32)[None]
        return policy(o, g)[0].numpy().astype(np.float64)

    result = evaluate(env, act, episodes, seed).as_dict()
    policy.train()
    return result


class BatchSampler:
    """Uniform minibatches of the float arrays of a dataset, as torch tensors."""

    KEYS = ("observation", "desired_goal", "action")

    def __init__(self, data: dict[str, np.ndarray], batch_size: int, seed: int) -> None:
        self.tensors = {k: torch.as_tensor(data[k], dtype=torch.float32) for k in self.KEYS}
        self.n = len(self.tensors["action"])
        self.batch_size = batch_size
        self.gen = torch.Generator().manual_seed(seed)

    def sample(self) -> dict[str, torch.Tensor]:
        idx = torch.randint(self.n, (self.batch_size,), generator=self.gen)
        return {k: v[idx] for k, v in self.tensors.items()}


def _plain(cfg: TrainConfig, task_kwargs: dict[str, Any], policy_cfg: Any) -> dict[str, Any]:
    own = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name not in ("task", "policy")}
    return {**own, "task": task_kwargs, "policy": dataclasses.asdict(policy_cfg)}
