"""The one place where the nodes use ``deploy``'s Controller and SafetyFilter.

``PolicyRunner`` runs only the policy part of a Controller (in the policy node);
``SafetyRunner`` runs the SafetyFilter at the safety node's own rate under the one safety
configuration (``configs/safety/``): watchdog, damping and e-stop are the filter's stages,
fed with ages from a monotonic clock.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from ruamel.yaml import YAML

from deploy.runtime.bundle import load_bundle, spec_kwargs
from deploy.runtime.controller import Controller
from deploy.safety.config import SafetyConfig
from deploy.safety.critic import CriticGuard
from deploy.safety.engines import limits_for, make_filter
from deploy.safety.filter import Stage, TickReport
from deploy.safety.kinematics import SerialChain
from deploy.safety.normalized import NORMALIZED
from sim.spec import JOINT_POS, TaskSpec


def trained_task_kwargs(task: str, bundle: Path | str = "") -> dict[str, Any]:
    """The config fields that shape ``task``'s spec as ``bundle`` was trained on it
    (dm_control's domain, task and action repeat: ``deploy.runtime.bundle.spec_kwargs``, as
    ``spine-run`` builds its sim); {} without a bundle, or for one trained on another task."""
    if not bundle:
        return {}
    contract = load_bundle(bundle).contract
    return spec_kwargs(contract) if contract.task.name == task else {}


def load_robot(path: Path | str, bundle: Path | str = "") -> TaskSpec:
    """The robot the nodes serve, as a ``sim.spec.TaskSpec``: a YAML file with its fields
    (``configs/ros/arm7_reach.yaml``; no MuJoCo needed), or a robot config (a name in
    ``configs/robot/`` or a YAML with a ``model:``), whose spec is derived through MuJoCo as
    ``task=reach robot=<it>`` (docs/robots.md), or a registered task's name (``push``, ``maze``,
    ``dmc``: the task's spec through MuJoCo, as registered or, with ``bundle`` trained on it, in
    the configuration it was trained in: ``trained_task_kwargs``)."""
    path = Path(path)
    data = YAML(typ="safe", pure=True).load(path.read_text()) if path.is_file() else None
    if data is None or (isinstance(data, dict) and "model" in data):
        from sim.registry import names as task_names
        from sim.robot_config import known_robots
        from sim.robot_env import make_robot_env

        if not path.is_file() and str(path) in task_names():
            import sim

            return sim.make(str(path), **trained_task_kwargs(str(path), bundle)).task_spec
        if not path.is_file() and str(path) not in known_robots():
            raise FileNotFoundError(
                f"robot config {path} does not exist (nor is it a robot in configs/robot/: "
                f"{known_robots()}, nor a registered task: {task_names()})"
            )
        return make_robot_env(str(path)).task_spec
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
    """What the safety node is doing (from the filter's stages on the latest tick)."""

    WAIT = "wait"  # no policy command yet: hold where the robot is
    TRACK = "track"  # filtering fresh policy commands
    GUARD = "guard"  # the joint state is missing, stale, out of order or frozen: hold
    HOLD = "hold"  # policy command stale (watchdog): hold the last safe command
    DAMP = "damp"  # stale for longer: the command follows the measured position
    ESTOP = "estop"  # e-stop engaged: stop where the arm is


class SafetyRunner:
    """The ROS safety loop's use of ``SafetyFilter``: every safety stage (input guard,
    watchdog, damping, critic, envelope, e-stop, the last stage) is the filter's own, fed with
    ages measured on a monotonic clock; this class only keeps the latest inputs and the
    e-stop's latch.

    Args:
        robot: robot spec (limits, joint order, policy rate).
        config: the safety configuration (``configs/safety/``).
        rate_hz: this loop's rate (Hz), unless the configuration fixes ``tick_hz``.
        critic: the learned safety critic (stage 3), or None.
        chain: the arm's kinematic chain, when the configuration has a box or a Cartesian limit.
    """

    def __init__(
        self,
        robot: TaskSpec,
        config: SafetyConfig,
        rate_hz: float,
        critic: CriticGuard | None = None,
        chain: SerialChain | None = None,
    ) -> None:
        self.config = config
        self.limits = limits_for(config, robot, tick_hz=rate_hz, chain=chain)
        self.normalized = robot.action.kind == NORMALIZED  # dm_control: starts from a zero command
        self.critic = critic
        self.filter = make_filter(self.limits, critic=critic)
        self.risk = math.nan  # the critic's latest Q_risk of the tracked command (NaN: none)
        self.vetoes = 0  # ticks on which the critic replaced the policy command
        self.command: np.ndarray | None = None
        self.command_ns = 0  # monotonic receipt time of ``command``
        self.estop = False
        self.estop_seen_ns = 0  # monotonic time of the latest engaging e-stop message
        self.mode = Mode.WAIT
        self.started = False

    def reset(self, joint_pos: np.ndarray) -> None:
        """Start filtering: hold ``joint_pos`` (normalized commands: start from zero)."""
        self.filter.reset(np.zeros_like(joint_pos) if self.normalized else joint_pos)
        self.started = True

    def policy_command(self, command: np.ndarray, now_ns: int) -> None:
        """A policy command arrived at monotonic time ``now_ns``."""
        self.command = np.asarray(command, dtype=np.float64)
        self.command_ns = now_ns

    def estop_message(self, engage: bool, now_ns: int) -> None:
        """An e-stop message (true engages, false releases) at monotonic time ``now_ns``."""
        if engage:
            self.estop, self.estop_seen_ns = True, now_ns
        else:
            self.estop = False

    def estop_active(self, now_ns: int) -> bool:
        """Latched (default): engaged until an explicit release. Unlatched: a dead-man's
        e-stop, engaged while ``true`` keeps arriving within the watchdog's age."""
        if not self.estop or self.config.estop_latch:
            return self.estop
        return (
            now_ns - self.estop_seen_ns
        ) * 1e-9 <= self.limits.watchdog_periods * self.limits.policy_period

    def command_age(self, now_ns: int) -> float:
        """Seconds since the policy command arrived (inf: none yet)."""
        return math.inf if self.command is None else (now_ns - self.command_ns) * 1e-9

    def warm(self, q: np.ndarray, now_ns: int, observation: np.ndarray | None = None) -> None:
        """Before a tick: the filter's shadow tick on the tracked command (``FilterEngine.warm``)."""
        self.filter.warm(self.command, q, self.command_age(now_ns), observation=observation)

    def tick(
        self, q: np.ndarray | None, state_age: float, now_ns: int, observation: np.ndarray | None = None
    ) -> TickReport:
        """One safety tick at monotonic time ``now_ns`` with measured positions ``q`` (rad, None
        when there are none) that are ``state_age`` seconds old; ``observation``: the critic's
        input vector (without it the critic stage is skipped)."""
        estop = self.estop_active(now_ns)
        report = self.filter.tick(
            self.command,
            q,
            self.command_age(now_ns),
            observation=observation,
            estop=estop,
            state_age=state_age,
        )
        self.mode = self._mode(report.stages, estop)
        if report.critic_ran or Stage.CRITIC in report.stages:
            self.risk = report.risk
        self.vetoes += Stage.CRITIC in report.stages
        return report

    def _mode(self, stages: Stage, estop: bool) -> Mode:
        if estop:
            return Mode.ESTOP
        if Stage.INPUT_GUARD in stages:
            return Mode.GUARD
        if self.command is None:
            return Mode.WAIT
        if Stage.DAMP in stages:
            return Mode.DAMP
        if Stage.WATCHDOG in stages:
            return Mode.HOLD
        return Mode.TRACK
