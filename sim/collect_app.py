"""``spine-collect``: record a task's scripted expert into a dataset (Hydra app).

spine-collect task=reach episodes=300 seed=0 out=runs/data
spine-collect task=maze mode=navigate episodes=1000 action_noise=0.2 out=runs/data
spine-collect robot=panda task=reach episodes=300 out=runs/panda/data   # any configured arm
spine-collect task=reach episodes=300 ray_workers=4 out=runs/data   # spread over a Ray cluster
"""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from sim.collect import collect
from sim.config_schema import register_collect_schemas, with_robot
from sim.randomization import RandomizationConfig
from sim.registry import expert_tasks
from sim.vector_collect import collect_batched

register_collect_schemas()


@hydra.main(version_base=None, config_path="../configs", config_name="collect")
def main(cfg: DictConfig) -> None:
    choices = HydraConfig.get().runtime.choices
    task = choices["task"]
    if task not in expert_tasks():  # e.g. dmc: dm_control's tasks come with no scripted expert
        raise SystemExit(
            f"spine-collect: task {task!r} has no scripted expert to record (experts exist for "
            f"{expert_tasks()}); train it online instead: spine-train task={task} policy=sac_her dataset=''"
        )
    task_kwargs = with_robot(OmegaConf.to_container(cfg.task, resolve=True))
    randomization = None
    if choices.get("randomization", "none") != "none":
        randomization = RandomizationConfig.from_dict(OmegaConf.to_container(cfg.randomization, resolve=True))
    common = dict(
        episodes=cfg.episodes,
        seed=cfg.seed,
        out_dir=Path(cfg.out),
        task_kwargs=task_kwargs,
        action_noise=cfg.action_noise,
        randomization=randomization,
    )
    if cfg.ray_workers > 0:
        if cfg.num_envs > 1:
            raise SystemExit("spine-collect: ray_workers and num_envs > 1 do not combine; pick one")
        from sim.ray_collect import collect_on_ray

        path = collect_on_ray(
            task, workers=cfg.ray_workers, ray_address=cfg.ray_address, mode=cfg.mode, **common
        )
    elif cfg.num_envs > 1:
        if cfg.mode != "goal":
            raise SystemExit(
                f"spine-collect: num_envs={cfg.num_envs} supports mode=goal only, not {cfg.mode!r}"
            )
        path = collect_batched(task, num_envs=cfg.num_envs, threads=cfg.threads, **common)
    else:
        path = collect(task, mode=cfg.mode, **common)
    print(f"dataset: {path}")


if __name__ == "__main__":
    main()
