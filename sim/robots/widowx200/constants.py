"""widowx200 names, limits and poses: the only place the MJCF's names appear in Python.

Kinematics, masses, limits and joint dynamics (damping 0.1, friction 0.1) are the vendor's
published description, as quoted in the README of
``data/real_logs/widowx200_waist_diagnostics/``. Servo gains, armature and inertias are ours.
"""

from __future__ import annotations

import math
from pathlib import Path

ROBOT_NAME = "widowx200"
XML_PATH = Path(__file__).with_name("widowx200.xml")

JOINT_NAMES: tuple[str, ...] = ("waist", "shoulder", "elbow", "wrist_angle", "wrist_rotate")
ACTUATOR_NAMES: tuple[str, ...] = tuple(f"{n}_servo" for n in JOINT_NAMES)
N_JOINTS = len(JOINT_NAMES)
EE_SITE = "ee"  # the fixed end-effector point, 0.043 m past wrist_rotate
GOAL_MOCAP_BODY = "goal"
CAMERA = "workspace"


def _deg(d: float) -> float:
    return math.radians(d)


# Position limits (rad) as published; the MJCF joint ranges and servo ctrlranges equal them.
JOINT_POS_MIN: tuple[float, ...] = (-math.pi, _deg(-80), _deg(-108), _deg(-100), -math.pi)
JOINT_POS_MAX: tuple[float, ...] = (math.pi, _deg(113), _deg(93), _deg(123), math.pi)
# Velocity limits (rad/s) as published; safety layers enforce them, the model does not.
JOINT_VEL_MAX: tuple[float, ...] = (math.pi, 1.0, math.pi, math.pi, math.pi)
# Effort limits (N m) as published: the servos' forcerange.
JOINT_EFFORT_MAX: tuple[float, ...] = (8.0, 18.0, 13.0, 5.0, 1.0)

# The vendor's "home" pose: upper arm up, forearm and hand level, pointing along +x (rad).
HOME: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)
# Goal / end-effector workspace box, world frame (m); the base sits at the origin facing +x.
WORKSPACE_LOW: tuple[float, float, float] = (0.15, -0.2, 0.1)
WORKSPACE_HIGH: tuple[float, float, float] = (0.35, 0.2, 0.35)
