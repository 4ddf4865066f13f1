"""Gymnasium ids of Spine's reach task on Isaac Lab: ``Spine-Reach-<Arm>-v0``, one per arm.

Importing this module registers them (it imports only gymnasium: the env and its config load
when an id is made). Isaac Lab's own ``isaaclab train`` finds them through
``--external_callback isaac.register.register_tasks``.
"""

from __future__ import annotations

import gymnasium as gym

ARMS = {"Arm7": "arm7", "Panda": "panda", "UR5e": "ur5e"}  # id part -> configs/robot/<name>.yaml


def task_id(robot: str) -> str:
    """The gym id of the reach task on Spine robot config ``robot``."""
    for part, name in ARMS.items():
        if name == robot:
            return f"Spine-Reach-{part}-v0"
    raise KeyError(f"no Isaac Lab reach task for robot {robot!r}; have {sorted(ARMS.values())}")


def register_tasks() -> None:
    """Register every id (idempotent); returns None, as ``--external_callback`` expects."""
    for part in ARMS:
        tid = f"Spine-Reach-{part}-v0"
        if tid in gym.registry:
            continue
        gym.register(
            id=tid,
            entry_point="isaac.reach_env:SpineReachEnv",
            disable_env_checker=True,
            kwargs={
                "env_cfg_entry_point": f"isaac.reach_env:SpineReach{part}EnvCfg",
                "rsl_rl_cfg_entry_point": "isaac.agents:SpineReachPPORunnerCfg",
                "default_agent": "rsl_rl",
            },
        )


register_tasks()
