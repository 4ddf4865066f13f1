"""``spine-collect``: record a task's scripted expert into a dataset (Hydra app).

spine-collect task=reach episodes=300 seed=0 out=runs/data
"""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from sim.collect import collect
from sim.config_schema import register_collect_schemas

register_collect_schemas()


@hydra.main(version_base=None, config_path="../configs", config_name="collect")
def main(cfg: DictConfig) -> None:
    task = HydraConfig.get().runtime.choices["task"]
    task_kwargs = OmegaConf.to_container(cfg.task, resolve=True)
    path = collect(
        task,
        episodes=cfg.episodes,
        seed=cfg.seed,
        out_dir=Path(cfg.out),
        task_kwargs=task_kwargs,
        action_noise=cfg.action_noise,
    )
    print(f"dataset: {path}")


if __name__ == "__main__":
    main()
