"""The scripted reach expert solves the task safely."""

from __future__ import annotations

import numpy as np

import sim
from sim.experts.reach_expert import ReachExpert
from sim.registry import expert_tasks
from sim.tasks.reach import COST_COLLISION, COST_SPEED


def test_reach_expert_succeeds_without_collisions() -> None:
    env = sim.make("reach")
    expert = ReachExpert(env)
    successes, collisions, fast = 0, 0.0, 0.0
    for seed in range(20):
        env.reset(seed=seed)
        truncated = False
        while not truncated:
            action = expert.act(env.state())
            assert action.shape == (env.task_spec.n_joints,)
            assert np.all(np.abs(action - env.state()["joint_pos"]) <= env.config.max_delta + 1e-9)
            _, _, _, truncated, info = env.step(action)
            collisions += info["cost"][COST_COLLISION]
            fast += info["cost"][COST_SPEED]
        successes += info["is_success"]
    assert successes >= 18
    assert collisions == 0
    assert fast == 0


def test_every_task_with_an_expert_is_registered() -> None:
    assert set(expert_tasks()) <= set(sim.names())
