"""``spine-train``: train a policy family on a task's dataset (Hydra app).

spine-train task=reach policy=gcbc dataset=runs/data/reach.npz out=runs/train steps=20000
spine-train robot=panda task=reach policy=gcbc dataset=runs/panda/data/reach.npz out=runs/panda/train
"""

from __future__ import annotations

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from policies import distributed
from policies.registry import PolicyTaskError, policy_entry, policy_names
from policies.trainer import TrainConfig, train
from sim.config_schema import register_task_schemas, schema_node, with_robot
from sim.dataset_writer import DatasetError


def register_train_schemas() -> None:
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    register_task_schemas(cs)
    for name in policy_names():
        cs.store(group="policy", name=f"{name}_schema", node=schema_node(policy_entry(name).config))


register_train_schemas()


@hydra.main(version_base=None, config_path="../configs", config_name="train")
def main(cfg: DictConfig) -> None:
    choices = HydraConfig.get().runtime.choices
    task, family = choices["task"], choices["policy"]
    groups = ("task", "policy", "robot")
    own = {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k not in groups}
    task_kwargs = with_robot(OmegaConf.to_container(cfg.task, resolve=True))
    policy_cfg = policy_entry(family).config(**OmegaConf.to_container(cfg.policy, resolve=True))
    try:
        result = train(TrainConfig(**own), task, family, task_kwargs, policy_cfg)
    except (DatasetError, PolicyTaskError) as e:
        raise SystemExit(f"spine-train: {e}") from None
    finally:
        distributed.shutdown()  # every rank leaves the process group before the interpreter tears down
    if result:  # under torchrun only rank 0 evaluates and saves
        print(f"trained {family} on {task}: success {result['success_rate']:.2f} -> {cfg.out}/checkpoint")


if __name__ == "__main__":
    main()
