"""WidowX reach: move the wx200's end effector to a goal point sampled in its workspace box.

The reach task (``sim.tasks.reach``) on the WidowX 200: goal-env observations
(``observation``, ``achieved_goal``, ``desired_goal``); actions are absolute joint-position
targets (rad) for the five arm joints, held by position servos. No collision cost (the scene
is the bare arm). The robot spec of this task (joint names, limits, fields) is what WidowX
bundles and replays of real WidowX logs are checked against.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.registry import register
from sim.robots.widowx200 import constants as c
from sim.robots.widowx200.physics import WidowXPhysics
from sim.spec import FieldSpec
from sim.tasks.reach import COST_JOINT_LIMIT, COST_SPEED, EE_POS, GOAL_FIELD, ReachConfig, ReachEnv

TASK_NAME = "widowx_reach"
JOINT_POS = FieldSpec("joint_pos", c.N_JOINTS, "rad", "measured joint positions")
JOINT_VEL = FieldSpec("joint_vel", c.N_JOINTS, "rad/s", "measured joint velocities")
OBSERVATION_FIELDS: tuple[FieldSpec, ...] = (JOINT_POS, JOINT_VEL, EE_POS)
COST_KINDS: tuple[str, ...] = (COST_JOINT_LIMIT, COST_SPEED)


@dataclass(frozen=True)
class WidowXReachConfig(ReachConfig):
    """WidowX reach settings (``ReachConfig``'s fields, WidowX defaults);
    ``WidowXReachEnv(**overrides)`` replaces fields by name."""

    success_threshold: float = 0.02
    """End-effector to goal distance counted as success (m)."""
    max_delta: float = 1.0
    """Largest target change from the measured position per control step and joint (rad),
    declared in the action spec for policies to scale by. Position-mode servos are commanded
    well ahead of where the joint is (the vendor's sweep leads by up to ~0.9 rad)."""
    init_noise: float = 0.3
    """Half-width of the uniform noise added to HOME at reset, per joint (rad)."""
    workspace_low: tuple[float, float, float] = c.WORKSPACE_LOW
    """Lower corner of the goal sampling box, world frame (m)."""
    workspace_high: tuple[float, float, float] = c.WORKSPACE_HIGH
    """Upper corner of the goal sampling box, world frame (m)."""


@register(TASK_NAME, config=WidowXReachConfig)
class WidowXReachEnv(ReachEnv):
    """wx200 reaching with absolute joint-position targets, 25 Hz control over 500 Hz physics."""

    task_name = TASK_NAME
    robot = c
    config_class = WidowXReachConfig
    observation_fields = OBSERVATION_FIELDS
    goal_field = GOAL_FIELD
    achieved_field = EE_POS
    cost_kinds = COST_KINDS
    start_pose = c.HOME

    def _make_physics(self) -> WidowXPhysics:
        return WidowXPhysics()
