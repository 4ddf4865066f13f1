"""benchmarks/push_modes.py: a rollout is classified by the side of the block the puck passed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

import sim
from sim.experts.push_expert import PushExpert
from sim.tasks.push import MODE_FAR, MODE_NEAR

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from push_modes import rollout_side


class ExpertActor:
    """The scripted expert behind the policy interface ``act(obs)``/``reset()``."""

    def __init__(self, env: Any) -> None:
        self.env, self.expert = env, PushExpert(env)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.expert.act(self.env.state())

    def reset(self) -> None:
        pass


class Still:
    """Holds the arm where it starts: the puck never passes the block."""

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(obs["observation"][:7])

    def reset(self) -> None:
        pass


def test_the_expert_s_mode_is_the_side_found() -> None:
    env = sim.make("push", late_fork=True)
    actor = ExpertActor(env)
    for mode, side in ((MODE_NEAR, "near"), (MODE_FAR, "far")):
        rollout = rollout_side(env, actor, seed=3, options={"mode": mode})
        assert (rollout.side, rollout.success) == (side, True)
        assert rollout.path[0, 1] > 0 > rollout.path[-1, 1]  # block frame: start at +y, goal past it
    still = rollout_side(env, Still(), seed=3)
    assert still.side == "not passed" and not still.success
    assert np.allclose(still.path, still.path[0], atol=0.01)
