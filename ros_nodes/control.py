"""The one place where the nodes use ``deploy``'s Controller and SafetyFilter.

``PolicyRunner`` runs only the policy part of a Controller (in the policy node);
``SafetyRunner`` runs the SafetyFilter at the safety node's own rate and adds, node-side,
what the filter does not have yet: the watchdog counted in the node's ticks (hold, then damp)
and the e-stop (hold, overriding everything).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from ruamel.yaml import YAML

from deploy.controller import Controller
from deploy.critic import CriticGuard
from deploy.safety import SafetyFilter, SafetyLimits, Stage
from sim.spec import JOINT_POS, TaskSpec


def load_robot(path: Path | str) -> TaskSpec:
    """The robot config: a YAML file with the fields of ``sim.spec.TaskSpec``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"robot config {path} does not exist")
    data = YAML(typ="safe", pure=True).load(path.read_text())
    try:
        return TaskSpec.from_dict(data)
    except (TypeError, ValueError) as e:
        raise ValueError(f"robot config {path}: {e}") from None


class PolicyRunner:
    """The policy half of a ``deploy.Controller``: state in, raw policy command out.

    Raises ``sim.contract.ContractMismatch`` (naming the field) when the bundle's contract
    does not match ``robot``.
    """

    def __init__(self, bundle: Path | str, robot: TaskSpec) -> None:
        self.controller = Controller(bundle, robot, critic=False)  # the safety node owns safety
        self.contract = self.controller.contract
        self.policy_hz = float(self.contract.policy_hz)
        self._started = False

    def __call__(self, state: Mapping[str, object]) -> tuple[np.ndarray, str]:
        """One policy step: (joint targets (rad), error or ""); NaN targets when it cannot run."""
        if not self._started:
            q = np.asarray(state[JOINT_POS], dtype=np.float64)
            if not np.all(np.isfinite(q)):
                return np.full(self.controller.robot.n_joints, np.nan), "non-finite joint positions"
            self.controller.reset(state)
            self._started = True
        info = self.controller.step_info(state)  # default clock: the policy is due every call
        assert info.policy_command is not None
        return info.policy_command, info.error


class Mode(enum.Enum):
    """What the safety node is doing."""

    WAIT = "wait"  # no policy command yet: hold where the robot is
    TRACK = "track"  # filtering fresh policy commands
    HOLD = "hold"  # policy command stale: hold the last safe command
    DAMP = "damp"  # stale for longer: command the measured position minus a velocity term
    ESTOP = "estop"  # e-stop engaged: repeat the last safe command exactly


class SafetyRunner:
    """SafetyFilter + a tick-counted watchdog + e-stop, for one safety loop.

    Args:
        robot: robot spec (limits, joint order).
        policy_hz: rate of the policy commands (Hz).
        rate_hz: this loop's rate (Hz); the rate limit is per tick of it.
        stale_periods: a policy command older than this many policy periods is stale (hold).
        hold_periods: policy periods to hold before damping.
        damping_s: damping target ``q - damping_s * qdot`` (s); with a PD position servo of
            gains (kp, kd) this adds damping ``kp * damping_s`` and no stiffness.
        critic: the learned safety critic (stage 3 of the filter), judging tracked policy
            commands when ``tick`` is given the critic's observation; None: no critic.
    """

    def __init__(
        self,
        robot: TaskSpec,
        policy_hz: float,
        rate_hz: float,
        stale_periods: float = 3.0,
        hold_periods: float = 12.5,
        damping_s: float = 0.05,
        critic: CriticGuard | None = None,
    ) -> None:
        self.limits = SafetyLimits.from_spec(robot, tick_hz=rate_hz, watchdog_periods=stale_periods)
        self.critic = critic
        self.filter = SafetyFilter(self.limits, critic=critic)
        self.risk = math.nan  # the critic's latest Q_risk of the tracked command (NaN: none)
        self.vetoes = 0  # ticks on which the critic replaced the policy command
        ticks_per_period = rate_hz / policy_hz
        self.stale_ticks = round(stale_periods * ticks_per_period)
        self.hold_ticks = round(hold_periods * ticks_per_period)
        self.damping_s = damping_s
        self.command: np.ndarray | None = None
        self.age_ticks = 0  # ticks since the last policy command arrived
        self.estop = False
        self.mode = Mode.WAIT
        self.started = False

    def reset(self, joint_pos: np.ndarray) -> None:
        self.filter.reset(joint_pos)
        self.started = True

    def policy_command(self, command: np.ndarray) -> None:
        self.command = np.asarray(command, dtype=np.float64)
        self.age_ticks = 0

    def warm(self, q: np.ndarray, observation: np.ndarray | None = None) -> None:
        """Before a tick: the filter's shadow tick on the tracked command (``SafetyFilter.warm``)."""
        self.filter.warm(self.command, q, 0.0, observation=observation)

    def tick(
        self, q: np.ndarray, qd: np.ndarray, observation: np.ndarray | None = None
    ) -> tuple[np.ndarray, Stage]:
        """One safety tick at measured positions ``q`` (rad) and velocities ``qd`` (rad/s);
        ``observation``: the critic's input vector (without it the critic stage is skipped)."""
        self.age_ticks += 1
        if self.estop:
            self.mode = Mode.ESTOP
            assert self.filter.last is not None
            return self.filter.last.copy(), Stage.NONE
        if self.command is None:
            self.mode = Mode.WAIT
            return self.filter(None, q, 0.0)
        if self.age_ticks <= self.stale_ticks:
            self.mode = Mode.TRACK
            report = self.filter.tick(self.command, q, 0.0, observation=observation)
            self.risk = report.risk
            self.vetoes += Stage.CRITIC in report.stages
            return report.command, report.stages
        if self.age_ticks <= self.stale_ticks + self.hold_ticks:
            self.mode = Mode.HOLD
            return self.filter(None, q, 0.0)
        self.mode = Mode.DAMP
        cmd, stages = self.filter(q - self.damping_s * qd, q, 0.0)
        return cmd, stages | Stage.WATCHDOG
