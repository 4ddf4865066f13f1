"""arm7 names, limits and poses: the only place the MJCF's names appear in Python."""

from __future__ import annotations

from pathlib import Path

ROBOT_NAME = "arm7"
XML_PATH = Path(__file__).with_name("arm7.xml")

JOINT_NAMES: tuple[str, ...] = tuple(f"joint{i}" for i in range(1, 8))
ACTUATOR_NAMES: tuple[str, ...] = tuple(f"act{i}" for i in range(1, 8))
N_JOINTS = len(JOINT_NAMES)

# Bodies that make up the arm, base included; contacts among them are self-collisions.
ARM_BODY_NAMES: tuple[str, ...] = (
    "link0",
    "link1",
    "link2",
    "link3",
    "link4",
    "link5",
    "link6",
    "link7",
    "hand",
)
EE_SITE = "ee"  # end-effector point between the fingertips
TABLE_GEOM = "table"  # box whose top surface is the plane z = 0
FLOOR_GEOM = "floor"
GOAL_MOCAP_BODY = "goal"  # visual-only goal marker, moved by the task
CAMERA = "workspace"

# Joint position limits (rad), same as the MJCF joint ranges and actuator ctrlranges.
JOINT_POS_MIN: tuple[float, ...] = (-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973)
JOINT_POS_MAX: tuple[float, ...] = (2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973)
# Joint velocity limits (rad/s); the model does not enforce them, safety layers do.
JOINT_VEL_MAX: tuple[float, ...] = (2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61)

# Ready pose: elbow up, hand pointing down, end effector ~0.31 m ahead and ~0.49 m up (rad).
HOME: tuple[float, ...] = (0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785)

# Goal / end-effector workspace box in the world frame (m); the table top is z = 0 and the
# base sits at the origin facing +x. Every point in it is reachable without collision.
WORKSPACE_LOW: tuple[float, float, float] = (0.30, -0.30, 0.10)
WORKSPACE_HIGH: tuple[float, float, float] = (0.65, 0.30, 0.50)
