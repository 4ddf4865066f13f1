"""Fault injection for safety tests and benchmarks: what a broken policy or sensor does.

A ``FaultInjector`` sits between the robot and the policy (``sensor``) and between the
policy and the safety filter (``policy``), active during ``[start, start + duration)`` s
of an episode. Policy faults (``POLICY_FAULTS``):

- ``scale10``: uniform targets over ten times each joint's range around its middle
- ``nan`` / ``inf``: every command non-finite (one joint NaN / +-Inf)
- ``frozen_policy``: the command at the fault's start, repeated with fresh timestamps
- ``stall``: no new command at all (its timestamp ages); 0.5 s by default
- ``sign_flip``: the step ``cmd - q`` reversed
- ``max_jump``: every policy tick, the opposite joint limit of the previous one

Sensor faults (``SENSOR_FAULTS``), seen by the policy and the filter alike:

- ``nan_sensor``: joint positions NaN
- ``frozen_sensor``: the whole state frozen at the fault's start (fresh timestamps)
- ``dropout``: no state arrives (the last one ages)

Numpy only: used by ``deploy`` tests and benchmarks with real MuJoCo underneath.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

POLICY_FAULTS = ("scale10", "nan", "inf", "frozen_policy", "stall", "sign_flip", "max_jump")
SENSOR_FAULTS = ("nan_sensor", "frozen_sensor", "dropout")
FAULTS = ("none", *POLICY_FAULTS, *SENSOR_FAULTS)
JOINT_POS = "joint_pos"


@dataclass(frozen=True)
class FaultSpec:
    """One fault and when it is active.

    Attributes:
        kind: one of ``FAULTS``.
        start: seconds after the episode's start.
        duration: seconds it lasts (``stall`` defaults to 0.5 s through ``for_kind``).
    """

    kind: str = "none"
    start: float = 1.0
    duration: float = 1.5

    def __post_init__(self) -> None:
        if self.kind not in FAULTS:
            raise ValueError(f"unknown fault {self.kind!r}; known: {', '.join(FAULTS)}")
        if self.start < 0 or self.duration < 0:
            raise ValueError(f"fault {self.kind!r}: start and duration must be >= 0 s")

    @classmethod
    def for_kind(cls, kind: str, start: float = 1.0, duration: float = 1.5) -> FaultSpec:
        """The benchmark's default window for ``kind`` (a stall lasts 0.5 s)."""
        return cls(kind, start, 0.5 if kind == "stall" else duration)


class FaultInjector:
    """Applies one ``FaultSpec`` to commands and states; ``reset`` per episode.

    Args:
        spec: the fault.
        q_min: lower joint limits ``(n,)`` (rad), for ``scale10`` and ``max_jump``.
        q_max: upper joint limits ``(n,)`` (rad).
        seed: seeds ``scale10``'s draws.
    """

    def __init__(self, spec: FaultSpec, q_min: np.ndarray, q_max: np.ndarray, seed: int = 0) -> None:
        self.spec = spec
        self.q_min, self.q_max = np.asarray(q_min, float), np.asarray(q_max, float)
        self.seed = seed
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(self.seed if seed is None else seed)
        self._frozen_cmd: np.ndarray | None = None
        self._frozen_state: dict[str, np.ndarray] | None = None
        self._jump_high = True

    def active(self, t: float) -> bool:
        s = self.spec
        return s.kind != "none" and s.start <= t < s.start + s.duration

    def policy(self, t: float, command: np.ndarray, q: np.ndarray) -> np.ndarray | None:
        """The command the filter receives at a policy tick at time ``t`` (s); None: the
        policy produced nothing (``stall``)."""
        kind = self.spec.kind
        if not self.active(t) or kind not in POLICY_FAULTS:
            self._frozen_cmd = None
            return command
        cmd = np.array(command, dtype=np.float64)
        if kind == "scale10":
            mid, half = (self.q_min + self.q_max) / 2, (self.q_max - self.q_min) / 2
            return mid + self.rng.uniform(-10.0, 10.0, cmd.size) * half
        if kind in ("nan", "inf"):
            cmd[int(self.rng.integers(cmd.size))] = (
                np.nan if kind == "nan" else self.rng.choice([np.inf, -np.inf])
            )
            return cmd
        if kind == "frozen_policy":
            if self._frozen_cmd is None:
                self._frozen_cmd = cmd
            return self._frozen_cmd.copy()
        if kind == "stall":
            return None
        if kind == "sign_flip":
            return 2.0 * np.asarray(q, dtype=np.float64) - cmd
        self._jump_high = not self._jump_high  # max_jump
        return (self.q_max if self._jump_high else self.q_min).copy()

    def sensor(self, t: float, state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray] | None:
        """The state the policy and filter see at time ``t`` (s); None: nothing arrived."""
        kind = self.spec.kind
        if not self.active(t) or kind not in SENSOR_FAULTS:
            self._frozen_state = None
            return dict(state)
        if kind == "nan_sensor":
            return {**state, JOINT_POS: np.full_like(np.asarray(state[JOINT_POS], float), np.nan)}
        if kind == "frozen_sensor":
            if self._frozen_state is None:
                self._frozen_state = {k: np.array(v, copy=True) for k, v in state.items()}
            return {k: v.copy() for k, v in self._frozen_state.items()}
        return None  # dropout
