"""Split stepping: run a task's physics outside its ``step``, so that threads can do it.

A task's ``step(action)`` mixes Python (checks, observations, costs) with physics. Run on
several Python threads at once, those Python parts fight over the GIL and two threads end up
slower than one. ``SplitStep`` instead cuts a step into three parts:

1. ``prepare(action)`` (caller's thread): write the action as the task would, through
   ``physics.set_targets``, and snapshot the physics state and the inputs
   (``mjSTATE_USER``: controls, applied forces, mocap poses).
2. ``advance()`` (any thread): ``physics.step(substeps)``: only MuJoCo, which releases the GIL.
3. the caller runs the task's own ``env.step(action)``. Its call to ``physics.step`` finds
   the step already done and returns at once, after checking that the task wrote exactly
   the inputs of step 1. Otherwise (the task transforms its action, a wrapper delays it...)
   the physics state is restored, the step is run for real, and split stepping is switched
   off for that env. Either way the result is bit-identical to a plain ``env.step``.

Protocol a task must follow for the split to be used: ``env.unwrapped.physics`` has
``model``/``data`` (``MjModel``/``MjData``), ``set_targets(action)`` and ``step(n)``, and the
task's ``step`` writes its inputs, calls ``physics.step(physics_hz / control_hz)`` once and
only reads the state afterwards. A task that *reads* physics state before ``physics.step``
would see the stepped state: it must not be split (``splittable`` cannot detect that; the
registry-wide test in ``tests/sim/test_vector.py`` compares against plain stepping).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

_USER = int(mujoco.mjtState.mjSTATE_USER)
# What mj_step integrates from: time, qpos, qvel, act, history, plugin state, warm start.
_PHYSICS = int(mujoco.mjtState.mjSTATE_FULLPHYSICS) | int(mujoco.mjtState.mjSTATE_WARMSTART)


def splittable(env: gym.Env) -> bool:
    """Whether ``env``'s physics has the interface that split stepping needs."""
    physics = getattr(env.unwrapped, "physics", None)
    return (
        isinstance(getattr(physics, "model", None), mujoco.MjModel)
        and isinstance(getattr(physics, "data", None), mujoco.MjData)
        and callable(getattr(physics, "set_targets", None))
        and callable(getattr(physics, "step", None))
    )


def applied_action(env: gym.Env, action: np.ndarray) -> np.ndarray:
    """The action that reaches the task under ``env``'s wrappers: each wrapper that has
    ``next_applied_action`` (``sim.randomization.Randomized``, for latency) maps it."""
    while isinstance(env, gym.Wrapper):
        peek = getattr(env, "next_applied_action", None)
        if peek is not None:
            action = peek(action)
        env = env.env
    return action


class SplitStep:
    """Split stepping for one env (see the module docstring). Installs itself as the
    instance attribute ``physics.step`` of the env; ``remove()`` takes it out again.

    Args:
        env: the env (wrappers allowed); ``splittable(env)`` must hold.
        substeps: physics steps per control step, the ``n`` the task passes to
            ``physics.step``.
    """

    def __init__(self, env: gym.Env, substeps: int) -> None:
        self.env = env
        self.substeps = substeps
        self.enabled = True
        """False once the task's step did not match ``prepare`` (then it is never split)."""
        self.pending = False
        """True between ``advance`` and the task's own ``physics.step`` call."""
        self._physics = env.unwrapped.physics
        self._real_step = self._physics.step
        model = self._physics.model
        self._user = np.empty(mujoco.mj_stateSize(model, _USER))
        self._user_now = np.empty_like(self._user)
        self._saved = np.empty(mujoco.mj_stateSize(model, _PHYSICS))
        self._physics.step = self._step

    def prepare(self, action: np.ndarray) -> bool:
        """Write ``action`` as the task would and snapshot the state; returns whether the
        step is split (False: disabled, or an action the task will reject)."""
        if not self.enabled:
            return False
        action = np.asarray(applied_action(self.env, action), dtype=np.float64)
        if not np.all(np.isfinite(action)):
            return False  # the task raises; nothing must have been stepped
        physics = self._physics
        physics.set_targets(action)
        mujoco.mj_getState(physics.model, physics.data, self._user, _USER)
        mujoco.mj_getState(physics.model, physics.data, self._saved, _PHYSICS)
        return True

    def advance(self) -> None:
        """Run the physics of the prepared step (safe on a worker thread)."""
        self._real_step(self.substeps)
        self.pending = True

    def check_consumed(self) -> None:
        """After the task's ``step``: raise if it never called ``physics.step``."""
        if self.pending:
            self.pending = False
            self.enabled = False
            raise RuntimeError(
                f"{type(self.env.unwrapped).__name__}.step did not call physics.step; the "
                "vector env stepped its physics anyway, so this env's state is now wrong"
            )

    def cancel(self) -> None:
        """Forget a prepared or advanced step (e.g. before a reset)."""
        self.pending = False

    def remove(self) -> None:
        """Give the physics its own ``step`` back."""
        if self._physics.__dict__.get("step") == self._step:
            del self._physics.step

    def _step(self, n: int = 1) -> Any:
        """Stands in for ``physics.step``: the already-run step when it matches."""
        if not self.pending:
            return self._real_step(n)
        self.pending = False
        physics = self._physics
        mujoco.mj_getState(physics.model, physics.data, self._user_now, _USER)
        if n == self.substeps and np.array_equal(self._user_now, self._user):
            return None
        # The task stepped with other inputs than prepare() guessed: undo and redo.
        self.enabled = False
        mujoco.mj_setState(physics.model, physics.data, self._saved, _PHYSICS)
        return self._real_step(n)
