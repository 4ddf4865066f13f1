"""The one safety configuration (``configs/safety/<name>.yaml``): what the filter enforces
beyond the robot's own limits, read by the Controller, spine-run, spine-replay, the ROS safety
node and every safety benchmark. No torch, no Hydra, no MuJoCo: a robot reads it with numpy.

    cfg = load_safety_config("default")            # or a path to a YAML file
    limits = cfg.limits(robot_spec, tick_hz=1000.0)  # -> SafetyLimits for that robot

A YAML file holds any subset of ``SafetyConfig``'s fields; a field that does not exist is
refused with its name and the file. The ROS safety node's parameters ``safety.<field>`` map onto
the same fields (``ros_nodes/safety_node.py``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from deploy.safety.kinematics import SerialChain
from deploy.safety.limits import SafetyLimits
from sim.spec import TaskSpec

SAFETY_DIR = Path(__file__).resolve().parents[2] / "configs" / "safety"
DEFAULT = "default"


@dataclass(frozen=True)
class SafetyConfig:
    """The safety filter's settings; the robot's spec supplies joint limits, velocity limits
    and rates. Every field is documented where it is declared (``configs/safety/default.yaml``
    repeats the shipped values)."""

    margin: float = 0.05
    """Distance kept inside each joint position limit (rad)."""
    tick_hz: float | None = None
    """Filter rate (Hz). None: the caller's loop rate (the ROS node's ``rate_hz``; the sim's
    control rate)."""
    watchdog_periods: float = 3.0
    """A policy command older than this many policy periods is stale: hold the last safe command."""
    damp_periods: float = 10.0
    """Older than this many policy periods, hold turns into damping: the command follows the
    measured position (no spring force stored in the position loop)."""
    cbf_alpha: float = 10.0
    """Envelope gain (1/s): the commanded velocity toward a limit is at most ``cbf_alpha`` times
    the distance to it."""
    sensor_timeout: float = 0.05
    """A joint state older than this (s) counts as missing: hold."""
    frozen_ticks: int = 25
    """A joint state bit-identical for this many ticks while the command is more than
    ``frozen_tolerance`` away from it counts as frozen: hold. 0 turns the check off."""
    frozen_tolerance: float = 0.05
    """See ``frozen_ticks`` (rad)."""
    interpolate: bool = False
    """Ramp from one policy command to the next over a policy period instead of holding each."""
    workspace_low: tuple[float, float, float] | None = None
    """Lower corner of the end-effector box (m, robot base frame); None: no box. Needs the arm's
    kinematic chain (from MuJoCo in sim, from a chain JSON on a robot)."""
    workspace_high: tuple[float, float, float] | None = None
    """Upper corner of that box (m)."""
    ee_speed_max: float | None = None
    """Cartesian rate limit on the commanded end effector (m/s); None: off. Needs the chain."""
    critic_threshold: float | None = None
    """Q_risk above which the learned critic replaces the command; None: the critic file's own."""
    estop_latch: bool = True
    """An engaged e-stop stays engaged until an explicit release (``false`` on the e-stop topic
    from an identity allowed to release it); a publisher going away never releases it."""
    action_rate: float = 25.0
    """Normalized commands only (dm_control tasks; deploy/safety/normalized.py): rate limit in
    half-ranges per second, i.e. at most ``action_rate * max_delta / tick_hz`` of change per
    tick (0.5 of the half-range per tick at 50 Hz: a full swing takes 4 ticks)."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.action_rate) and self.action_rate > 0):
            raise ValueError(
                f"safety config field 'action_rate' must be finite and > 0, got {self.action_rate}"
            )
        for name in ("margin", "watchdog_periods", "damp_periods", "sensor_timeout", "frozen_tolerance"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"safety config field {name!r} must be finite and >= 0, got {value}")
        if self.tick_hz is not None and not (math.isfinite(self.tick_hz) and self.tick_hz > 0):
            raise ValueError(f"safety config field 'tick_hz' must be > 0, got {self.tick_hz}")
        if self.frozen_ticks < 0:
            raise ValueError(f"safety config field 'frozen_ticks' must be >= 0, got {self.frozen_ticks}")
        if self.critic_threshold is not None and not 0.0 <= self.critic_threshold <= 1.0:
            raise ValueError(
                f"safety config field 'critic_threshold' must be in [0, 1], got {self.critic_threshold}"
            )
        for name in ("workspace_low", "workspace_high"):
            value = getattr(self, name)
            if value is not None and len(value) != 3:
                raise ValueError(f"safety config field {name!r} needs 3 values (x, y, z in m), got {value}")

    @property
    def needs_chain(self) -> bool:
        """Whether the limits need the arm's kinematic chain (a box or a Cartesian limit)."""
        return self.workspace_low is not None or self.ee_speed_max is not None

    def limits(
        self, robot: TaskSpec, tick_hz: float | None = None, chain: SerialChain | None = None
    ) -> SafetyLimits:
        """The ``SafetyLimits`` of ``robot`` under this configuration.

        Args:
            robot: the robot's spec (joint limits, velocity limits, policy rate).
            tick_hz: the loop's rate (Hz) when the configuration does not fix one.
            chain: the arm's kinematics, required when ``needs_chain``.
        """
        if self.needs_chain and chain is None:
            raise ValueError(
                "the safety config sets a workspace box or ee_speed_max, which need the arm's "
                "kinematic chain: pass chain= (sim: deploy.safety.model_limits.sim_chain; "
                "robot: a chain JSON)"
            )
        box = {}
        if self.workspace_low is not None:
            box = {"workspace_low": tuple(self.workspace_low), "workspace_high": tuple(self.workspace_high)}
        return SafetyLimits.from_spec(
            robot,
            margin=self.margin,
            tick_hz=self.tick_hz or tick_hz,
            watchdog_periods=self.watchdog_periods,
            damp_periods=self.damp_periods,
            cbf_alpha=self.cbf_alpha,
            sensor_timeout=self.sensor_timeout,
            frozen_ticks=self.frozen_ticks,
            frozen_tolerance=self.frozen_tolerance,
            interpolate=self.interpolate,
            ee_speed_max=self.ee_speed_max,
            chain=chain if self.needs_chain else None,
            **box,
        )

    def replace(self, **changes: Any) -> SafetyConfig:
        """A copy with ``changes`` (field names checked)."""
        return from_mapping({**dataclasses.asdict(self), **changes}, "overrides")


def from_mapping(data: dict[str, Any], source: str) -> SafetyConfig:
    """A ``SafetyConfig`` from a mapping; unknown fields are refused, naming ``source``."""
    known = {f.name for f in fields(SafetyConfig)}
    data = {k: v for k, v in data.items() if k != "defaults"}  # a Hydra defaults list, if any
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"safety config {source}: unknown field(s) {unknown}; fields: {sorted(known)}")
    for name in ("workspace_low", "workspace_high"):
        if data.get(name) is not None:
            data[name] = tuple(float(v) for v in data[name])
    try:
        return SafetyConfig(**data)
    except (TypeError, ValueError) as e:
        raise ValueError(f"safety config {source}: {e}") from None


def load_safety_config(name_or_path: str | Path | None = None) -> SafetyConfig:
    """``configs/safety/<name>.yaml`` (``name`` without ``.yaml``) or a YAML file's path;
    None: the shipped default."""
    from ruamel.yaml import YAML

    ref = str(name_or_path or DEFAULT)
    path = Path(ref) if ref.endswith((".yaml", ".yml")) or "/" in ref else SAFETY_DIR / f"{ref}.yaml"
    if not path.is_file():
        shipped = sorted(p.stem for p in SAFETY_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"safety config {path} does not exist (shipped: {shipped})")
    data = YAML(typ="safe", pure=True).load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"safety config {path}: expected a mapping of fields, got {type(data).__name__}")
    return from_mapping(data, str(path))
