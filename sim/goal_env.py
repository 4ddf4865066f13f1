"""The goal-env base that the tasks in ``sim/tasks/`` share.

``GoalEnv`` owns what every task did the same way: its config from ``config`` plus keyword
overrides (an unknown field name raises ``TypeError``), the Gymnasium spaces and
``metadata["render_fps"]`` from the task spec, the ``task_spec`` property, the action and
reset-option checks, goal observations and offscreen rendering. ``PhysicsGoalEnv`` adds what
the tasks on Spine's own MuJoCo physics (``sim/robots/``) share: the control rate as a whole
number of physics substeps, starting an episode at rest and holding targets for one control
period. dm_control's adapter (``sim/tasks/dmc.py``) uses ``GoalEnv`` alone.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from sim.observation import build_observation, field_vector
from sim.spec import FieldSpec, TaskSpec


def make_config(config: Any, overrides: dict[str, Any], cls: type) -> Any:
    """``config`` (default ``cls()``) with ``overrides``; an unknown key raises ``TypeError``."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"{cls.__name__} has no field(s) {unknown}; fields are {sorted(known)}")
    return replace(config or cls(), **overrides)


def goal_distance(achieved_goal: Any, desired_goal: Any) -> np.ndarray:
    """``||achieved - desired||`` over the last axis (float64); shapes ``(..., goal size)``."""
    diff = np.asarray(achieved_goal, np.float64) - np.asarray(desired_goal, np.float64)
    return np.linalg.norm(diff, axis=-1)


class GoalEnv(gym.Env):
    """Base of the Spine goal-envs: ``Env(config=None, render_mode=None, **overrides)``.

    ``__init__`` sets ``config`` (a ``config_class``), calls ``_load`` (the simulation) and
    ``_build_spec``, then builds the spaces: ``action_space`` from ``_action_bounds``, and a
    ``Dict`` of ``observation`` / ``achieved_goal`` / ``desired_goal`` boxes sized by the spec.
    Subclasses also define ``reset``, ``step``, ``compute_reward``, ``state`` and
    ``_render_scene``; ``achieved_field`` and ``goal_field`` name the state fields that the
    goals report.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 25}  # noqa: RUF012
    task_name: ClassVar[str]
    config_class: ClassVar[type]
    goal_field: FieldSpec
    achieved_field: FieldSpec

    def __init__(self, config: Any = None, render_mode: str | None = None, **overrides: Any) -> None:
        self.config = make_config(config, overrides, self.config_class)
        self.render_mode = render_mode
        self._steps = 0
        self._renderer: Any = None
        self._load()
        self._spec = self._build_spec()
        self.metadata = {**self.metadata, "render_fps": self._spec.control_hz}
        low, high = self._action_bounds()
        self.action_space = gym.spaces.Box(low, high, dtype=np.float32)
        goal_box = gym.spaces.Box(-np.inf, np.inf, (self._spec.goal.size,), np.float32)
        self.observation_space = gym.spaces.Dict(
            {
                "observation": gym.spaces.Box(-np.inf, np.inf, (self._spec.obs_size,), np.float32),
                "achieved_goal": goal_box,
                "desired_goal": goal_box,
            }
        )

    def _load(self) -> None:
        """Build the simulation from ``self.config`` (before the spec and the spaces)."""
        raise NotImplementedError

    def _build_spec(self) -> TaskSpec:
        """The task spec of the loaded simulation."""
        raise NotImplementedError

    def _action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper action bounds, float32 arrays of the action's shape."""
        raise NotImplementedError

    @property
    def task_spec(self) -> TaskSpec:
        """The task spec: fields, goal, action, rates, limits, workspace and cost kinds.

        Named ``task_spec`` because Gymnasium keeps its own ``EnvSpec`` in ``env.spec``;
        through a Gymnasium wrapper use ``env.unwrapped.task_spec``.
        """
        return self._spec

    def _check_action(self, action: np.ndarray) -> np.ndarray:
        """``action`` as float64; raises ``ValueError`` unless it has the action space's
        shape and is finite."""
        target, shape = np.asarray(action, dtype=np.float64), self.action_space.shape
        if target.shape != shape:
            raise ValueError(f"{self.task_name}: action must have shape {shape}, got {target.shape}")
        if not np.all(np.isfinite(target)):
            raise ValueError(f"{self.task_name}: action is not finite: {target}")
        return target

    def _reject_options(self, options: dict[str, Any], allowed: tuple[str, ...] = ()) -> None:
        """Raise ``ValueError`` naming the reset options left in ``options`` beyond ``allowed``."""
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise ValueError(f"{self.task_name} reset: unknown option(s) {unknown}")

    def state(self) -> dict[str, np.ndarray]:
        """Named raw state (float64 arrays), a superset of the observation and goal fields."""
        raise NotImplementedError

    def _observe(self, state: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """The goal-env observation of ``state`` (default: ``self.state()``)."""
        state = self.state() if state is None else state
        return {
            "observation": build_observation(state, self._spec.observation),
            "achieved_goal": field_vector(state, self.achieved_field).astype(np.float32),
            "desired_goal": field_vector(state, self.goal_field).astype(np.float32),
        }

    def render(self, width: int = 640, height: int = 480) -> np.ndarray | None:
        """An ``(height, width, 3)`` uint8 image of the task's camera in ``"rgb_array"``
        mode (offscreen; ``sim.video.ensure_gl`` picks the GL backend), else None."""
        if self.render_mode != "rgb_array":
            return None
        if self._renderer is None or (self._renderer.height, self._renderer.width) != (height, width):
            from sim.video import offscreen_renderer

            self.close()
            self._renderer = offscreen_renderer(self._render_model(), height, width)
        data, camera = self._render_scene()
        self._renderer.update_scene(data, camera=camera)
        return self._renderer.render()

    def _render_model(self) -> Any:
        """The ``MjModel`` that ``render`` draws."""
        raise NotImplementedError

    def _render_scene(self) -> tuple[Any, Any]:
        """The up-to-date ``MjData`` to draw and the camera (id or name), for each frame."""
        raise NotImplementedError

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


class PhysicsGoalEnv(GoalEnv):
    """A ``GoalEnv`` on one of Spine's MuJoCo physics (``self.physics``: ``timestep``,
    ``ctrl_min/max``, ``reset``, ``set_joint_state``, ``set_targets``, ``step``, ``model``,
    ``data``) with position targets held for ``substeps`` physics steps per control step.
    Its config has ``control_hz``; ``_load`` sets ``self.physics`` and calls ``_set_rates``."""

    def _set_rates(self) -> None:
        """Set ``physics_hz`` (from the physics timestep) and ``substeps`` (physics steps per
        control step); raises ``ValueError`` if ``config.control_hz`` does not divide it."""
        self.physics_hz = round(1.0 / self.physics.timestep, 6)
        substeps = self.physics_hz / self.config.control_hz
        if abs(substeps - round(substeps)) > 1e-9:
            raise ValueError(
                f"{self.config_class.__name__}.control_hz={self.config.control_hz} does not "
                f"divide the physics rate {self.physics_hz} Hz"
            )
        self.substeps = round(substeps)

    def _action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.physics.ctrl_min.astype(np.float32), self.physics.ctrl_max.astype(np.float32)

    def _start(self, q0: np.ndarray, goal: np.ndarray) -> None:
        """Reset the physics, put the joints at rest at ``q0`` ``(n,)`` with targets there,
        and set the goal ``(goal size,)``; subclasses place the rest of their scene after."""
        self.physics.reset()
        self.physics.set_joint_state(q0, np.zeros(q0.shape))
        self.physics.set_targets(q0)
        self._goal = goal
        self._steps = 0

    def _advance(self, target: np.ndarray) -> None:
        """Hold the joint targets ``target`` for one control period (``substeps`` physics steps)."""
        self.physics.set_targets(target)
        self.physics.step(self.substeps)
        self._steps += 1

    def _render_model(self) -> Any:
        return self.physics.model
