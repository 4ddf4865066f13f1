"""``spine-train-critic``: collect risk data in sim, train the twin Q_risk critic, check its
calibration on held-out episodes and save it (Hydra app). ``spine-export`` turns the checkpoint
into ``critic.onnx`` (alone, or into a policy bundle with ``--critic``).

    spine-train-critic task=reach_obstacles out=runs/critic data.episodes=300 critic.steps=3000
    spine-train-critic robot=panda task=reach out=runs/panda/critic     # any configured arm

``task`` is the task config group (``configs/task/``), as for ``spine-train``.

Writes to ``out``: ``data.npz`` (the transitions), ``checkpoint/`` (``critic.safetensors`` +
``critic.json``, with ``calibration.png`` and ``calibration.json`` next to them) and
``report.json`` (losses, calibration scores).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from policies import distributed
from policies.critic import CriticConfig, TwinRiskCritic, predict_risk, save_critic, train_critic
from policies.critic_data import CriticData, CriticDataConfig, collect_critic_data
from policies.critic_report import calibration, plot_calibration
from sim.config_schema import register_task_schemas, with_robot
from sim.registry import expert_tasks


@dataclass
class CriticTrainConfig:
    """``spine-train-critic``'s fields; ``data`` and ``critic`` are nested groups of fields."""

    out: str = "runs/critic"  # output folder
    dataset: str = ""  # reuse this data.npz instead of collecting ("" collects)
    seed: int = 0  # seeds data sampling, the networks and the split
    val_fraction: float = 0.2  # held-out episodes for calibration
    critic_hz: float = 1000.0  # rate the filter judges the command (contract field; >= tick rate: every tick)
    torch_threads: int = 1  # torch intra-op threads
    data: CriticDataConfig = field(default_factory=CriticDataConfig)
    critic: CriticConfig = field(default_factory=CriticConfig)
    task: Any = field(default=None)  # task config group (set by Hydra: task=reach_obstacles)
    robot: Any = field(default=None)  # robot config group: robot=panda (configs/robot/; none: the task's arm)


def run(
    cfg: CriticTrainConfig,
    task: str = "reach_obstacles",
    task_kwargs: dict[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Collect (or load) -> train -> calibrate -> save on ``task`` (a registered
    task, with ``task_kwargs`` overrides); returns the report."""
    task_kwargs = dict(task_kwargs or {})
    dist = distributed.init()  # under torchrun: rank 0 collects, every rank trains on its slice
    torch.set_num_threads(cfg.torch_threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if cfg.dataset:
        data = CriticData.load(cfg.dataset)
    else:
        if dist.is_main:
            data = collect_critic_data(task, cfg.data, task_kwargs)
            data.save(str(out / "data.npz"))
        dist.barrier()
        if not dist.is_main:
            data = CriticData.load(str(out / "data.npz"))
    t_data = time.perf_counter() - t0
    train, val = data.split(cfg.val_fraction, cfg.seed)
    import sim

    spec = sim.make(task, **task_kwargs).task_spec
    torch.manual_seed(cfg.seed)  # the networks' initial weights too
    critic = TwinRiskCritic(spec, cfg.critic)
    log = train_critic(critic, train, cfg.seed, progress and dist.is_main)
    if not dist.is_main:
        return {}
    horizon = max(1, round(1.0 / (1.0 - cfg.critic.gamma)))
    table = calibration(predict_risk(critic.eval(), val.obs, val.act), val.violation_within(horizon))
    table["horizon_steps"] = horizon
    ckpt = out / "checkpoint"
    train_config = {**dataclasses.asdict(cfg), "task": task, "task_kwargs": task_kwargs}
    save_critic(
        ckpt,
        critic,
        {
            "calibration": {k: v for k, v in table.items() if k != "bins"},
            "critic_hz": cfg.critic_hz,
            "train_config": train_config,
        },
    )
    (ckpt / "calibration.json").write_text(json.dumps(table, indent=2))
    plot_calibration(ckpt / "calibration.png", table, f"Q_risk on {task}, {horizon}-step horizon")
    report: dict[str, Any] = {
        "task": task,
        "transitions": len(data),
        "violation_rate": float(data.cost.mean()),
        "collect_s": t_data,
        "train_s": time.perf_counter() - t0 - t_data,
        "final_loss": log[-1]["loss"],
        "calibration": {k: v for k, v in table.items() if k != "bins"},
        "checkpoint": str(ckpt),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "losses.json").write_text(json.dumps(log))
    return report


def register_critic_schemas() -> None:
    cs = ConfigStore.instance()
    cs.store(name="critic_schema", node=CriticTrainConfig)
    register_task_schemas(cs)


register_critic_schemas()


@hydra.main(version_base=None, config_path="../configs", config_name="critic")
def main(cfg: DictConfig) -> None:
    task = HydraConfig.get().runtime.choices["task"]
    if not cfg.dataset and task not in expert_tasks():  # the data comes from the task's expert
        raise SystemExit(
            f"spine-train-critic: task {task!r} has no scripted expert to collect the critic's data "
            f"from (experts exist for {expert_tasks()}); give dataset=<critic data.npz> instead"
        )
    plain = OmegaConf.to_container(cfg, resolve=True)
    task_kwargs = with_robot(plain.pop("task"))
    plain.pop("robot", None)
    data, critic = CriticDataConfig(**plain.pop("data")), CriticConfig(**plain.pop("critic"))
    typed = CriticTrainConfig(**plain, data=data, critic=critic)
    try:
        report = run(typed, task, task_kwargs)
    finally:
        distributed.shutdown()  # every rank leaves the process group before the interpreter tears down
    if not report:  # a torchrun rank other than 0: rank 0 calibrates, saves and reports
        return
    c = report["calibration"]
    print(
        f"critic on {task}: {report['transitions']} transitions, violation rate "
        f"{report['violation_rate']:.2f}; held-out ECE {c['ece']:.3f} AUC {c['auc']:.3f} -> {typed.out}\n"
        f"export: spine-export {report['checkpoint']} --out <dir> (alone) or "
        f"spine-export <policy checkpoint> --out <bundle> --critic {report['checkpoint']}"
    )


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
