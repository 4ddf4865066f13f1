"""The boundary a simulation backend implements to be a Spine task.

Everything above ``sim/`` (trainers, the vector env, collectors, ``spine-run``, replay) talks to
tasks only through ``TaskEnv``: a Gymnasium goal-env plus a ``TaskSpec`` and a named ``state()``.
MuJoCo (``sim/tasks/*``) and dm_control (``sim/tasks/dmc.py``) implement it today. An Isaac Lab or
Isaac Gym backend would implement the same protocol (its batched GPU stepping behind a
``VectorEnv``-shaped class); none is written because neither can be installed on our machines.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from sim.spec import TaskSpec


@runtime_checkable
class TaskEnv(Protocol):
    """What every registered task provides (checked over the registry by the contract tests)."""

    @property
    def task_spec(self) -> TaskSpec:
        """Fields, goal, action, rates, limits and cost kinds of the task."""
        ...

    def state(self) -> dict[str, np.ndarray]:
        """Named raw state (float64): the fields of ``task_spec.observation`` and the goal."""
        ...

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict]: ...

    def step(self, action: np.ndarray) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Gymnasium step; ``info`` has ``cost`` (kind -> 0/1), ``is_success``, ``distance``."""
        ...

    def compute_reward(self, achieved_goal: Any, desired_goal: Any, info: Any) -> Any: ...

    def close(self) -> None: ...


@runtime_checkable
class SteppedPhysics(Protocol):
    """A physics that ``VectorEnv`` can step on a worker thread (it must release the GIL)."""

    def step(self, n: int = 1) -> None: ...
