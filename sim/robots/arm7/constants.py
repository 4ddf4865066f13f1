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
# Low ready pose: hand pointing down, end effector ~0.38 m ahead and ~0.15 m up (rad).
READY_LOW: tuple[float, ...] = (0.0, -0.15, 0.0, -2.79, 0.0, 2.64, 0.785)

# Goal / end-effector workspace box in the world frame (m); the table top is z = 0 and the
# base sits at the origin facing +x. Every point in it is reachable without collision.
WORKSPACE_LOW: tuple[float, float, float] = (0.30, -0.30, 0.10)
WORKSPACE_HIGH: tuple[float, float, float] = (0.65, 0.30, 0.50)

# --- Scenes built on arm7.xml by sim/robots/arm7/scene.py (MjSpec) ----------------------
# Box obstacles standing on the table: one mocap body and box geom each, moved and
# resized per episode; bodies "obstacle0", ... hold geoms "obstacle0_col", ...
OBSTACLE_PREFIX = "obstacle"
MAX_OBSTACLES = 3
# The pushed object: a free cylinder lying flat on the table, about an ice-hockey puck.
OBJECT_BODY = "object"
OBJECT_JOINT = "object_free"
OBJECT_GEOM = "object_col"
OBJECT_RADIUS = 0.038  # m
OBJECT_HALF_HEIGHT = 0.0125  # m; it rests with its center at this height
OBJECT_MASS = 0.165  # kg
OBJECT_FRICTION: tuple[float, float, float] = (0.4, 0.005, 0.0001)  # sliding, torsion, rolling
# Hand geometry that pushing relies on (arm7.xml, hand pointing down): the fingertips reach
# this far below the end-effector site and the finger boxes this far ahead of it along the
# hand's x axis (m); the palm capsule's underside is 0.0134 m above the site.
FINGERTIP_BELOW_EE = 0.0066
FINGER_HALF_THICKNESS = 0.01


def obstacle_body(index: int) -> str:
    """Name of the ``index``-th obstacle's mocap body."""
    return f"{OBSTACLE_PREFIX}{index}"


def obstacle_geom(index: int) -> str:
    """Name of the ``index``-th obstacle's box geom."""
    return f"{OBSTACLE_PREFIX}{index}_col"
