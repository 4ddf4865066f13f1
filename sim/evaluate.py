"""Roll a policy out in a task and count successes: used by trainers, the export's sim parity
check and ``spine-run``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.execution import Agent, goal_env_inputs

Actor = Callable[[Mapping[str, np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class EvalResult:
    """Outcome of ``episodes`` rollouts."""

    episodes: int
    success_rate: float  # fraction whose final step had info["is_success"]
    final_distance_mean: float  # goal distance at the last step, averaged (goal units)
    cost_rate: dict[str, float]  # fraction of steps with each cost kind > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "episodes": self.episodes,
            "success_rate": self.success_rate,
            "final_distance_mean": self.final_distance_mean,
            **{f"cost_{k}": v for k, v in self.cost_rate.items()},
        }


def evaluate(
    env: Any, act: Actor, episodes: int, seed: int, reset: Callable[[], None] | None = None
) -> EvalResult:
    """Run ``episodes`` episodes, seeded ``seed, seed+1, ...``; ``act(obs_dict) -> action``.

    ``reset()`` is called before each episode (stateful policies: action chunks, subgoals).
    """
    successes, distances = 0, []
    costs: dict[str, float] = {}
    steps = 0
    for ep in range(episodes):
        obs, info = env.reset(seed=seed + ep)
        if reset is not None:
            reset()
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(act(obs))
            done = terminated or truncated
            steps += 1
            for kind, c in info["cost"].items():
                costs[kind] = costs.get(kind, 0.0) + float(c > 0)
        successes += bool(info["is_success"])
        distances.append(float(info["distance"]))
    return EvalResult(
        episodes=episodes,
        success_rate=successes / max(episodes, 1),
        final_distance_mean=float(np.mean(distances)) if distances else float("nan"),
        cost_rate={k: v / max(steps, 1) for k, v in costs.items()},
    )


def evaluate_agent(env: Any, agent: Agent, episodes: int, seed: int) -> EvalResult:
    """``evaluate`` for an executor over a policy's graphs (``sim.execution``): fed the goal-env
    observation as ``observation`` and ``goal``, reset before each episode."""
    return evaluate(env, lambda obs: agent(**goal_env_inputs(obs)), episodes, seed, reset=agent.reset)
