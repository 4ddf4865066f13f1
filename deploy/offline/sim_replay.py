"""Sim replay: seed MuJoCo from logged states and replay the logged commands open loop.

Each window starts at a logged tick: joint positions and velocities are written into the
simulation, then the logged commands are applied tick by tick (sample-and-hold, the physics
stepping in between) with no feedback from the log. Joints the log does not command hold the
target they had at the window's start (where the real servo held its last goal). The
difference between simulated and logged joint positions at each step of the horizon is the
sim-to-real gap as a function of horizon.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import mujoco
import numpy as np

from deploy.logs.resample import Ticks


@dataclass(frozen=True)
class SimParams:
    """Factors on the model's nominal values, the same for every joint (as ``sim.randomization``).

    Attributes:
        kp_scale: servo gain (``gainprm[0]`` and ``-biasprm[1]`` of each position actuator).
        damping_scale: passive joint damping (``dof_damping``).
        frictionloss_scale: joint dry friction (``dof_frictionloss``).
    """

    kp_scale: float = 1.0
    damping_scale: float = 1.0
    frictionloss_scale: float = 1.0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


class ParamModel:
    """Writes ``SimParams`` into a model, always relative to the values read at construction."""

    def __init__(self, model: mujoco.MjModel) -> None:
        self.model = model
        self.gain = model.actuator_gainprm[:, 0].copy()
        self.bias = model.actuator_biasprm[:, 1].copy()
        self.damping = model.dof_damping.copy()
        self.frictionloss = model.dof_frictionloss.copy()

    def apply(self, p: SimParams) -> None:
        m = self.model
        m.actuator_gainprm[:, 0] = self.gain * p.kp_scale
        m.actuator_biasprm[:, 1] = self.bias * p.kp_scale
        m.dof_damping[:] = self.damping * p.damping_scale
        m.dof_frictionloss[:] = self.frictionloss * p.frictionloss_scale


def window_starts(
    ticks: Ticks,
    horizon: int,
    stride: int,
    still_tol: float = 0.05,
    limits: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, dict[str, int]]:
    """Start ticks of the windows a sim replay can use, and how many were left out and why.

    A window's ``horizon + 1`` ticks lie in one gap-free segment. It is left out when a joint
    without logged commands moves more than ``still_tol`` (rad) in it (the log lacks the
    commands that moved it: the window would measure missing data, not the sim gap), or when a
    logged position lies beyond the model's joint ``limits`` (rad; the sim cannot be put there).
    """
    seg = ticks.segment
    starts = np.arange(0, len(ticks) - horizon, stride)
    starts = starts[(seg[starts] >= 0) & (seg[starts] == seg[starts + horizon])]
    moved = np.zeros(len(starts), dtype=bool)
    beyond = np.zeros(len(starts), dtype=bool)
    for w, s in enumerate(starts):
        q = ticks.joint_pos[s : s + horizon + 1]
        moved[w] = np.any(np.abs(q - q[0])[~ticks.from_log[s : s + horizon + 1]] > still_tol)
        if limits is not None:
            beyond[w] = np.any((q < limits[0] - 1e-3) | (q > limits[1] + 1e-3))
    keep = ~moved & ~beyond
    return starts[keep], {
        "uncommanded_motion": int(np.sum(moved)),
        "beyond_joint_limits": int(np.sum(beyond & ~moved)),
    }


def replay_windows(physics: object, ticks: Ticks, starts: np.ndarray, horizon: int) -> np.ndarray:
    """Simulated minus logged joint positions ``(W, horizon, J)`` (rad), open loop.

    ``physics`` is a robot physics with ``set_joint_state``, ``set_targets``, ``step`` and
    ``joint_pos`` (e.g. ``WidowXPhysics``); its ``timestep`` must divide the tick period.
    """
    substeps = round(1.0 / (ticks.rate_hz * physics.timestep))
    if abs(substeps * physics.timestep * ticks.rate_hz - 1.0) > 1e-6:
        raise ValueError(f"sim replay: physics step {physics.timestep} s does not divide 1/{ticks.rate_hz} s")
    err = np.empty((len(starts), horizon, ticks.joint_pos.shape[1]))
    for w, s in enumerate(starts):
        q0 = ticks.joint_pos[s]
        physics.reset()
        physics.set_joint_state(q0, ticks.joint_vel[s])
        for h in range(horizon):
            k = s + h
            physics.set_targets(np.where(ticks.from_log[k], ticks.command[k], q0))
            physics.step(substeps)
            err[w, h] = physics.joint_pos() - ticks.joint_pos[k + 1]
    return err


def gap_by_horizon(err: np.ndarray, rate_hz: float, horizons_s: tuple[float, ...]) -> dict[str, list[float]]:
    """Per-joint RMS of ``err`` (W, H, J) at each horizon (s): ``{"horizon_s": [...], "rms": [[J]...]}``."""
    steps = [min(err.shape[1], max(1, round(h * rate_hz))) for h in horizons_s]
    rms = [np.sqrt(np.mean(err[:, k - 1] ** 2, axis=0)).tolist() for k in steps]
    return {"horizon_s": [k / rate_hz for k in steps], "rms": rms}
