"""Domain randomization for any MuJoCo task, from a config, seeded, without editing the task.

``Randomized(sim.make("reach"), RandomizationConfig(mass_scale=(0.8, 1.2)), seed=0)`` wraps
a task. On every ``reset`` it draws, from its own generator, one factor per body, geom,
actuator and dof and writes ``nominal * factor`` into the task's ``MjModel`` (nominal values
are read once, at wrap time, so factors never compound), plus an action latency for the
episode. Each step it adds Gaussian noise to the observation fields, and applies the action
given ``k`` steps earlier. With every range at 1 (or at 0 for noise and latency) the wrapped
env is bit-identical to the bare one.

Configs: ``configs/randomization/*.yaml`` (schema ``randomization_schema``, registered by
``register_randomization_schema``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from sim.observation import build_observation
from sim.spec import JOINT_POS, TaskSpec

Range = tuple[float, float]


@dataclass(frozen=True)
class RandomizationConfig:
    """What to randomize and how much; factors are drawn uniformly in ``[low, high]``."""

    mass_scale: Range = (1.0, 1.0)
    """Factor on each body's mass and rotational inertia (so its density), per body."""
    friction_scale: Range = (1.0, 1.0)
    """Factor on each geom's friction coefficients (sliding, torsional, rolling), per geom."""
    kp_scale: Range = (1.0, 1.0)
    """Factor on each actuator's gain ``gainprm[0]``; for position servos (affine bias with
    ``biasprm[1] = -kp``) on ``biasprm[1]`` too, so the servo stays centred on its target.
    The damping gain kv is left alone."""
    damping_scale: Range = (1.0, 1.0)
    """Factor on each dof's passive joint damping, per dof."""
    frictionloss_scale: Range = (1.0, 1.0)
    """Factor on each dof's dry joint friction ``dof_frictionloss``, per dof."""
    obs_noise_std: float = 0.0
    """Std of the Gaussian noise added to every observation field, in the field's units."""
    obs_noise_std_fields: dict[str, float] = field(default_factory=dict)
    """Per-field std overriding ``obs_noise_std``, e.g. ``{joint_vel: 0.02}`` (field units);
    the names must be observation fields of the task."""
    action_latency: tuple[int, int] = (0, 0)
    """Control steps by which actions are delayed, an integer drawn uniformly in
    ``[low, high]`` per episode; the first ``k`` steps apply a hold action."""

    def __post_init__(self) -> None:
        for name in (
            "mass_scale",
            "friction_scale",
            "kp_scale",
            "damping_scale",
            "frictionloss_scale",
            "action_latency",
        ):
            value = tuple(getattr(self, name))
            if len(value) != 2 or value[0] > value[1] or value[0] < 0:
                raise ValueError(f"RandomizationConfig.{name} must be (low, high), 0 <= low <= high: {value}")
            object.__setattr__(self, name, value)
        if any(int(v) != v for v in self.action_latency):
            raise ValueError(f"RandomizationConfig.action_latency must be integers: {self.action_latency}")
        object.__setattr__(self, "action_latency", tuple(int(v) for v in self.action_latency))
        object.__setattr__(self, "obs_noise_std_fields", dict(self.obs_noise_std_fields))
        stds = [self.obs_noise_std, *self.obs_noise_std_fields.values()]
        if any(s < 0 for s in stds):
            raise ValueError(f"RandomizationConfig: noise std must be >= 0, got {stds}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RandomizationConfig:
        """Inverse of ``to_dict`` (lists accepted for ranges); an unknown key raises
        ``ValueError`` naming it."""
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"RandomizationConfig: unknown field(s) {unknown}")
        return cls(**data)


def register_randomization_schema(cs: Any = None) -> None:
    """Store ``RandomizationConfig`` as ``randomization/randomization_schema`` for Hydra."""
    from hydra.core.config_store import ConfigStore

    from sim.config_schema import schema_node

    cs = cs or ConfigStore.instance()
    cs.store(group="randomization", name="randomization_schema", node=schema_node(RandomizationConfig))


class _Nominal:
    """The model parameters that randomization scales, as compiled, and their names."""

    def __init__(self, model: mujoco.MjModel) -> None:
        self.body_mass = model.body_mass.copy()
        self.body_inertia = model.body_inertia.copy()
        self.geom_friction = model.geom_friction.copy()
        self.gain = model.actuator_gainprm[:, 0].copy()
        self.bias = model.actuator_biasprm[:, 1].copy()
        affine = model.actuator_biastype == int(mujoco.mjtBias.mjBIAS_AFFINE)
        self.servo = np.flatnonzero(affine & (self.bias == -self.gain) & (self.gain != 0))
        self.dof_damping = model.dof_damping.copy()
        self.dof_frictionloss = model.dof_frictionloss.copy()
        self.names = {
            kind: [mujoco.mj_id2name(model, obj, i) or f"{kind}{i}" for i in range(count)]
            for kind, obj, count in (
                ("body", mujoco.mjtObj.mjOBJ_BODY, model.nbody),
                ("geom", mujoco.mjtObj.mjOBJ_GEOM, model.ngeom),
                ("actuator", mujoco.mjtObj.mjOBJ_ACTUATOR, model.nu),
                ("joint", mujoco.mjtObj.mjOBJ_JOINT, model.njnt),
            )
        }
        # A dof is named by its joint; the dofs of a ball or free joint get ":k" appended.
        dofs_of = np.bincount(model.dof_jntid, minlength=model.njnt)
        self.names["dof"] = [
            self.names["joint"][j] + (f":{i - model.jnt_dofadr[j]}" if dofs_of[j] > 1 else "")
            for i, j in enumerate(model.dof_jntid)
        ]


class Randomized(gym.Wrapper):
    """A task with randomized dynamics, observation noise and action latency.

    Args:
        env: a task built by ``sim.make`` whose ``physics.model`` is an ``MjModel`` (or
            dm_control's wrapper of one).
        config: what to randomize.
        seed: seeds the randomization stream; ``reset(seed=s)`` restarts it from
            ``(seed, s)``, so an episode is reproducible from the reset seed alone.
    """

    def __init__(self, env: gym.Env, config: RandomizationConfig, seed: int = 0) -> None:
        super().__init__(env)
        self.config = config
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._nominal = _Nominal(self._model_data()[0])
        spec = self.task_spec
        names = {f.name for f in spec.observation}
        unknown = sorted(set(config.obs_noise_std_fields) - names)
        if unknown:
            raise ValueError(f"RandomizationConfig.obs_noise_std_fields: {unknown} not in {sorted(names)}")
        stds = [
            (f.name, f.size, config.obs_noise_std_fields.get(f.name, config.obs_noise_std))
            for f in spec.observation
        ]
        self._noise_std = [(name, size, std) for name, size, std in stds if std > 0]
        self._noise: dict[str, np.ndarray] = {}
        self._queue: deque[np.ndarray] = deque()
        self.latency = 0
        """Action latency of the current episode (control steps)."""
        self.scales: dict[str, np.ndarray] = {}
        """Factors of the current episode: ``body`` (nbody,), ``geom`` (ngeom,),
        ``actuator`` (nu,), ``dof`` (nv,), in model order (world body: 1)."""

    # --- what trainers and experts read --------------------------------------------------
    @property
    def task_spec(self) -> TaskSpec:
        return self.env.get_wrapper_attr("task_spec")

    @property
    def physics(self) -> Any:
        return self.env.get_wrapper_attr("physics")

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        return self.env.get_wrapper_attr("compute_reward")(achieved_goal, desired_goal, info)

    def state(self) -> dict[str, np.ndarray]:
        """The task's named state with this step's observation noise added (float64)."""
        state = self.env.get_wrapper_attr("state")()
        for name, noise in self._noise.items():
            state[name] = state[name] + noise
        return state

    def parameters(self) -> dict[str, dict[str, float]]:
        """This episode's randomized values by kind and name: ``body_mass`` (kg),
        ``geom_friction`` (sliding), ``actuator_gain``, ``dof_damping`` (N m s/rad),
        ``dof_frictionloss`` (N m)."""
        m, names = self._model_data()[0], self._nominal.names
        return {
            "body_mass": dict(zip(names["body"], m.body_mass.tolist(), strict=True)),
            "geom_friction": dict(zip(names["geom"], m.geom_friction[:, 0].tolist(), strict=True)),
            "actuator_gain": dict(zip(names["actuator"], m.actuator_gainprm[:, 0].tolist(), strict=True)),
            "dof_damping": dict(zip(names["dof"], m.dof_damping.tolist(), strict=True)),
            "dof_frictionloss": dict(zip(names["dof"], m.dof_frictionloss.tolist(), strict=True)),
        }

    def next_applied_action(self, action: np.ndarray) -> np.ndarray:
        """The action the next ``step(action)`` passes to the task (no state change)."""
        return self._queue[0] if self._queue else action

    # --- gymnasium API -------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Resample the parameters and latency, then reset the task (``seed`` goes to both)."""
        if seed is not None:
            self._rng = np.random.default_rng([self.seed, seed])
        self._resample()
        obs, info = self.env.reset(seed=seed, options=options)
        hold = self._hold_action()
        self._queue = deque(hold.copy() for _ in range(self.latency))
        return self._noisy(obs), info

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Step the task with the action given ``latency`` steps ago."""
        if self.latency:
            self._queue.append(np.array(action, copy=True))
            action = self._queue.popleft()
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._noisy(obs), reward, terminated, truncated, info

    # --- internals -----------------------------------------------------------------------
    def _resample(self) -> None:
        cfg, nom, rng = self.config, self._nominal, self._rng
        model, data = self._model_data()
        body = rng.uniform(*cfg.mass_scale, model.nbody)
        body[0] = 1.0  # the world
        geom = rng.uniform(*cfg.friction_scale, model.ngeom)
        actuator = rng.uniform(*cfg.kp_scale, model.nu)
        dof = rng.uniform(*cfg.damping_scale, model.nv)
        self.latency = int(rng.integers(cfg.action_latency[0], cfg.action_latency[1] + 1))
        # drawn last, so the streams of the older fields stay as they were for a given seed
        loss = rng.uniform(*cfg.frictionloss_scale, model.nv)
        self.scales = {"body": body, "geom": geom, "actuator": actuator, "dof": dof, "dof_frictionloss": loss}
        model.body_mass[:] = nom.body_mass * body
        model.body_inertia[:] = nom.body_inertia * body[:, None]
        model.geom_friction[:] = nom.geom_friction * geom[:, None]
        model.actuator_gainprm[:, 0] = nom.gain * actuator
        model.actuator_biasprm[nom.servo, 1] = nom.bias[nom.servo] * actuator[nom.servo]
        model.dof_damping[:] = nom.dof_damping * dof
        model.dof_frictionloss[:] = nom.dof_frictionloss * loss
        mujoco.mj_setConst(model, data)  # masses changed: derived constants follow

    def _model_data(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        """The task's ``MjModel`` and ``MjData`` (unwrapped from dm_control's wrappers)."""
        physics = self.physics
        return getattr(physics.model, "ptr", physics.model), getattr(physics.data, "ptr", physics.data)

    def _hold_action(self) -> np.ndarray:
        """What the first ``latency`` steps apply: joint-position targets at the measured
        joint positions (no motion; float64, the task clips them), else zeros."""
        state = self.env.get_wrapper_attr("state")()
        if self.task_spec.action.kind == "joint_position" and JOINT_POS in state:
            return np.array(state[JOINT_POS], dtype=np.float64)
        return np.zeros(self.action_space.shape, dtype=np.float64)

    def _noisy(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Draw this step's noise and rebuild ``observation`` from the noisy state."""
        self._noise = {name: std * self._rng.standard_normal(size) for name, size, std in self._noise_std}
        if not self._noise:
            return obs
        return {**obs, "observation": build_observation(self.state(), self.task_spec.observation)}
