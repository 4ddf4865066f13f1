"""Trains every offline family and the critic with tiny settings, once per process group.

    python tests/policies/dist_worker.py DATASET OUT                  # one process
    torchrun --nproc_per_node=2 tests/policies/dist_worker.py DATASET OUT

Run by tests/policies/test_distributed.py both ways: the weights must agree. One script for all
families, so the test pays torchrun's start-up (two interpreters importing torch) once.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from policies import distributed
from policies.critic import CriticConfig, TwinRiskCritic, train_critic
from policies.critic_data import CriticData
from policies.registry import policy_entry
from policies.trainer import TrainConfig, train

STEPS = 40
BATCH = 32  # global batch: 16 per rank with 2 processes
FAMILIES = {
    "gcbc": {"hidden": 32, "layers": 2},
    "gcivl": {"hidden": 32, "layers": 2},
    "hiql": {"hidden": 32, "layers": 2},
    "diffusion": {"chunk_length": 4, "hidden": 32, "sampler_steps": 2},
}


def main(dataset: str, out: str) -> None:
    dist = distributed.init()
    report = {}
    for family, overrides in FAMILIES.items():
        cfg = TrainConfig(
            dataset=dataset,
            out=f"{out}/{family}",
            steps=STEPS,
            batch_size=BATCH,
            log_every=10,
            eval_every=STEPS,
            eval_episodes=1,
        )
        entry = policy_entry(family)
        known = {f for f in entry.config.__dataclass_fields__}
        policy_cfg = entry.config(**{k: v for k, v in overrides.items() if k in known})
        result = train(cfg, "reach", family, {}, policy_cfg)
        report[family] = result.get("max_parameter_difference_between_ranks", 0.0)
    # online: each rank its own envs and replay, so only the ranks' agreement is checked
    sac = TrainConfig(
        out=f"{out}/sac_her", steps=30, batch_size=BATCH, log_every=10, eval_every=30, eval_episodes=1
    )
    entry = policy_entry("sac_her")
    sac_cfg = entry.config(num_envs=2, warmup_steps=40, hidden=32)
    report["sac_her"] = train(sac, "reach", "sac_her", {"episode_steps": 20}, sac_cfg).get(
        "max_parameter_difference_between_ranks", 0.0
    )
    critic_data = CriticData.load(f"{dataset}.critic.npz")
    torch.manual_seed(0)
    import sim

    critic = TwinRiskCritic(sim.make("reach").task_spec, CriticConfig(steps=60, batch_size=BATCH))
    train_critic(critic, critic_data, seed=0, progress=False)
    report["critic_gap"] = dist.max_abs_difference(critic)
    if dist.is_main:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in critic.state_dict().items()}, f"{out}/critic.safetensors")
        Path(f"{out}/report.json").write_text(json.dumps({"world_size": dist.world_size, **report}))
    distributed.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
