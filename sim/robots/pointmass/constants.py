"""pointmass names, sizes and gains: the only place the generated MJCF's names appear in Python."""

from __future__ import annotations

ROBOT_NAME = "pointmass"

JOINT_NAMES: tuple[str, ...] = ("agent_x", "agent_y")  # slide joints along world x and y
ACTUATOR_NAMES: tuple[str, ...] = ("act_x", "act_y")  # position servos, one per slide joint
N_JOINTS = len(JOINT_NAMES)

AGENT_BODY = "agent"
AGENT_GEOM = "agent"  # the sphere; its contacts with walls are collisions
WALL_PREFIX = "wall_"  # wall box geoms are named wall_0, wall_1, ...
FLOOR_GEOM = "floor"  # visual only: the agent slides above it without touching
GOAL_MOCAP_BODY = "goal"  # visual-only goal marker, moved by the task
CAMERA = "top"  # looks straight down on the whole maze

CELL_SIZE = 1.0  # side of a maze cell (m)
WALL_HEIGHT = 0.4  # (m), visual: the agent moves in the plane
AGENT_RADIUS = 0.15  # (m)
AGENT_MASS = 1.0  # (kg)
# Agent-wall contacts are reported within this distance (m) but only push once they touch
# (MuJoCo margin = gap = CONTACT_MARGIN): "touching a wall" with a 5 mm tolerance.
CONTACT_MARGIN = 0.005

# Position servos: force = kp (target - x) - kv xdot, clipped to +-FORCE_LIMIT.
# kp / kv = 7.5 1/s: a target kept d metres ahead drives the agent at about 7.5 d m/s.
# sqrt(kp / m) = 15 rad/s and kv = 2 sqrt(kp m): critically damped, settles in ~0.3 s.
KP = 225.0  # (N/m)
KV = 30.0  # (N s/m)
FORCE_LIMIT = 30.0  # (N): bounds the acceleration to 30 m/s^2 under wild commands

TIMESTEP = 0.002  # physics step (s): 500 Hz
VEL_MAX = 2.5  # per-axis velocity limit declared to safety layers (m/s); not enforced by the model
