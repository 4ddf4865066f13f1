"""Domain randomization over Warp worlds: ``sim.randomization.RandomizationConfig``, batched.

Every field of the config is supported:

- ``mass_scale``, ``friction_scale``, ``kp_scale``, ``damping_scale``, ``frictionloss_scale``:
  one factor per body / geom / actuator / dof and world, written into per-world rows of MuJoCo
  Warp's model arrays at each world's reset (masses then re-derive their constants per world,
  ``mujoco_warp.set_const``, as ``mj_setConst`` on the CPU). World ``i`` draws them from the
  stream that ``Randomized(env, config, seed=i)`` draws from on the CPU backend, in the same
  order, so both backends give world ``i`` the same parameters.
- ``action_latency``: drawn from that stream too; the delay runs on the device (a ring of the
  last actions per world, the first ``k`` steps apply the hold action, as on the CPU).
- ``obs_noise_std``, ``obs_noise_std_fields``: Gaussian noise drawn on the device from a torch
  generator: the same distribution as the CPU wrapper's, not the same numbers; and because the
  CPU wrapper draws its noise from the parameter stream, with noise on, parameters of the
  episodes after the first differ between the backends.

A field this module does not know (a config from a newer Spine) is refused by name.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import mujoco
import numpy as np

from sim.randomization import RandomizationConfig
from sim.spec import TaskSpec
from sim.warp.backend import WarpPhysics, torch

Tensor = Any  # torch.Tensor (torch is optional at import time)

MODEL_SCALES: dict[str, tuple[str, ...]] = {
    "mass_scale": ("body_mass", "body_inertia"),
    "friction_scale": ("geom_friction",),
    "kp_scale": ("actuator_gainprm", "actuator_biasprm"),
    "damping_scale": ("dof_damping",),
    "frictionloss_scale": ("dof_frictionloss",),
}
# the constants ``set_const`` derives from masses: per world too when masses are
MASS_DERIVED = ("body_subtreemass", "body_invweight0", "dof_invweight0", "tendon_invweight0", "actuator_acc0")
SUPPORTED = (*MODEL_SCALES, "action_latency", "obs_noise_std", "obs_noise_std_fields")


def check_supported(config: RandomizationConfig) -> None:
    """Refuse a config with a field this backend does not apply (named in the error)."""
    unknown = [f.name for f in fields(config) if f.name not in SUPPORTED]
    if unknown:
        raise NotImplementedError(
            f"backend='warp' does not apply RandomizationConfig field(s) {unknown}; "
            f"it applies {list(SUPPORTED)}"
        )


def batched_fields(config: RandomizationConfig | None) -> tuple[str, ...]:
    """The ``Model`` fields that need one row per world under ``config``."""
    if config is None:
        return ()
    check_supported(config)
    out = [name for key, names in MODEL_SCALES.items() if _active(getattr(config, key)) for name in names]
    if _active(config.mass_scale):
        out += MASS_DERIVED
    return tuple(out)


def _active(scale: tuple[float, float]) -> bool:
    return tuple(scale) != (1.0, 1.0)


class WarpRandomization:
    """Per-world parameters, latency and observation noise of ``config`` on ``physics``
    (built with ``batched_fields(config)``).

    Args:
        config: what to randomize.
        physics: the worlds.
        spec: the task spec (observation fields for the noise, action size for the latency).
    """

    def __init__(self, config: RandomizationConfig, physics: WarpPhysics, spec: TaskSpec) -> None:
        check_supported(config)
        names = {f.name for f in spec.observation}
        unknown = sorted(set(config.obs_noise_std_fields) - names)
        if unknown:
            raise ValueError(f"RandomizationConfig.obs_noise_std_fields: {unknown} not in {sorted(names)}")
        self.config, self.physics, n = config, physics, physics.num_worlds
        m = physics.mj_model
        self._rngs = [np.random.default_rng(i) for i in range(n)]  # as Randomized(seed=i)
        self._sizes = (m.nbody, m.ngeom, m.nu, m.nv)
        dev = physics.device
        t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32, device=dev)  # noqa: E731
        self._nominal = {
            "body_mass": t(m.body_mass),
            "body_inertia": t(m.body_inertia),
            "geom_friction": t(m.geom_friction),
            "gain": t(m.actuator_gainprm[:, 0]),
            "bias": t(m.actuator_biasprm[:, 1]),
            "dof_damping": t(m.dof_damping),
            "dof_frictionloss": t(m.dof_frictionloss),
        }
        affine = m.actuator_biastype == int(mujoco.mjtBias.mjBIAS_AFFINE)
        gain, bias = m.actuator_gainprm[:, 0], m.actuator_biasprm[:, 1]
        self._servo = torch.as_tensor(np.flatnonzero(affine & (bias == -gain) & (gain != 0)), device=dev)
        self._noise_std = [
            (f.name, config.obs_noise_std_fields.get(f.name, config.obs_noise_std)) for f in spec.observation
        ]
        self._noise_std = [(name, std) for name, std in self._noise_std if std > 0]
        self._noise: dict[str, torch.Tensor] = {}
        self._generator = torch.Generator(device=dev)
        self._generator.manual_seed(int(np.random.SeedSequence().entropy % 2**63))
        self.latency = torch.zeros(n, dtype=torch.long, device=dev)
        """Action latency of each world's episode (control steps), ``(N,)``."""
        self._max_latency = config.action_latency[1]
        self._history = torch.zeros(n, self._max_latency + 1, spec.n_joints, device=dev)
        self.scales: dict[str, np.ndarray] = {}
        """This episode's factors per world: ``body`` (N, nbody), ``geom`` (N, ngeom),
        ``actuator`` (N, nu), ``dof`` (N, nv), ``dof_frictionloss`` (N, nv)."""

    def seed(self, rows: np.ndarray, seeds: list[int]) -> None:
        """Restart world ``rows[k]``'s stream from ``(rows[k], seeds[k])`` (the CPU wrapper's
        ``reset(seed=...)``) and the noise generator from ``seeds[0]``."""
        for i, s in zip(rows, seeds, strict=True):
            self._rngs[i] = np.random.default_rng([int(i), int(s)])
        if len(seeds):
            self._generator.manual_seed(int(seeds[0]))

    def resample(self, rows: np.ndarray) -> None:
        """Draw the parameters and latency of a new episode for worlds ``rows`` and write them."""
        cfg, (nbody, ngeom, nu, nv) = self.config, self._sizes
        draws = []
        for i in rows:  # the draws, in order, of ``Randomized._resample`` on the CPU backend
            rng = self._rngs[i]
            body = rng.uniform(*cfg.mass_scale, nbody)
            body[0] = 1.0
            geom, act = rng.uniform(*cfg.friction_scale, ngeom), rng.uniform(*cfg.kp_scale, nu)
            dof = rng.uniform(*cfg.damping_scale, nv)
            latency = int(rng.integers(cfg.action_latency[0], cfg.action_latency[1] + 1))
            loss = rng.uniform(*cfg.frictionloss_scale, nv)
            draws.append((body, geom, act, dof, latency, loss))
        keys = ("body", "geom", "actuator", "dof", "latency", "dof_frictionloss")
        stacked = {k: np.array([d[j] for d in draws]) for j, k in enumerate(keys)}
        self.scales = {k: v for k, v in stacked.items() if k != "latency"}
        idx = torch.as_tensor(rows, device=self.physics.device)
        self.latency[idx] = torch.as_tensor(stacked["latency"], device=self.physics.device)
        self._write(idx, {k: self._tensor(v) for k, v in self.scales.items()})

    def start(self, rows: np.ndarray, hold: torch.Tensor) -> None:
        """New episodes in ``rows``: the delayed actions start as ``hold`` ``(len(rows), n)``."""
        idx = torch.as_tensor(rows, device=self.physics.device)
        self._history[idx] = hold[:, None, :].to(self._history.dtype)

    def delay(self, actions: torch.Tensor) -> torch.Tensor:
        """The actions to apply now ``(N, n)``: each world's, ``latency`` steps old."""
        if self._max_latency == 0:
            return actions
        self._history = torch.cat([actions[:, None, :].to(self._history.dtype), self._history[:, :-1]], 1)
        return self._history[torch.arange(len(actions), device=actions.device), self.latency]

    def noisy(self, state: dict[str, Tensor], rows: Tensor | None = None) -> dict[str, Tensor]:
        """``state`` plus this step's Gaussian noise on the observation fields that have a std;
        fresh noise is drawn for worlds ``rows`` (all when None; an empty tensor: none, the
        noise of the last observation, as the CPU wrapper's ``state()``)."""
        if not self._noise_std:
            return state
        out = dict(state)
        for name, std in self._noise_std:
            value = state[name]
            if name not in self._noise:
                self._noise[name] = torch.zeros_like(value)
            fresh = std * torch.randn(value.shape, generator=self._generator, device=value.device)
            if rows is None:
                self._noise[name] = fresh
            elif len(rows):
                self._noise[name][rows] = fresh[rows]
            out[name] = value + self._noise[name]
        return out

    # --- internals -----------------------------------------------------------------------
    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=torch.float32, device=self.physics.device)

    def _write(self, idx: torch.Tensor, f: dict[str, torch.Tensor]) -> None:
        """``nominal * factor`` into the batched model rows ``idx`` (as ``Randomized``)."""
        cfg, p, nom = self.config, self.physics, self._nominal
        if _active(cfg.mass_scale):
            p.model_field("body_mass")[idx] = nom["body_mass"] * f["body"]
            p.model_field("body_inertia")[idx] = nom["body_inertia"] * f["body"][..., None]
        if _active(cfg.friction_scale):
            p.model_field("geom_friction")[idx] = nom["geom_friction"] * f["geom"][..., None]
        if _active(cfg.kp_scale):
            gain, bias = p.model_field("actuator_gainprm"), p.model_field("actuator_biasprm")
            gain[idx, :, 0] = nom["gain"] * f["actuator"]
            servo = self._servo
            bias[idx[:, None], servo[None, :], 1] = nom["bias"][servo] * f["actuator"][:, servo]
        if _active(cfg.damping_scale):
            p.model_field("dof_damping")[idx] = nom["dof_damping"] * f["dof"]
        if _active(cfg.frictionloss_scale):
            p.model_field("dof_frictionloss")[idx] = nom["dof_frictionloss"] * f["dof_frictionloss"]
        if _active(cfg.mass_scale):
            p.set_const()

    def parameters(self) -> dict[str, Any]:
        """This episode's per-world model values (torch, (N, ...)) of the randomized fields."""
        return {name: self.physics.model_field(name).clone() for name in batched_fields(self.config)}
