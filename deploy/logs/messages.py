"""Standard ROS 2 messages Spine reads and writes, built with ``rosbags``' typestore.

Only standard types: sensor_msgs/JointState, std_msgs/Float64MultiArray (ros2_control's
forward_command_controller), geometry_msgs/PointStamped, diagnostic_msgs/DiagnosticArray.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from rosbags.typesys import Stores, get_typestore

TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
T = TYPESTORE.types

JOINT_STATE = "sensor_msgs/msg/JointState"
FLOAT64_ARRAY = "std_msgs/msg/Float64MultiArray"
POINT_STAMPED = "geometry_msgs/msg/PointStamped"
DIAGNOSTICS = "diagnostic_msgs/msg/DiagnosticArray"

# Topics of a Spine run log. /spine/command is what a forward_command_controller consumes.
TOPIC_JOINT_STATES = "/joint_states"
TOPIC_GOAL = "/spine/goal"
TOPIC_EE = "/spine/ee_position"
TOPIC_POLICY_CMD = "/spine/policy_command"
TOPIC_COMMAND = "/spine/command"
TOPIC_DIAGNOSTICS = "/diagnostics"
TOPIC_OBSERVATION = "/spine/observation"  # tasks whose observation the topics above do not carry
SAFETY_STATUS = "spine/safety"


def header(stamp_ns: int, frame_id: str = "") -> Any:
    sec, nsec = divmod(int(stamp_ns), 1_000_000_000)
    return T["std_msgs/msg/Header"](
        stamp=T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec), frame_id=frame_id
    )


def stamp_ns(msg: Any) -> int:
    """``header.stamp`` of a message in integer nanoseconds."""
    return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)


def joint_state(stamp: int, names: Sequence[str], pos: np.ndarray, vel: np.ndarray) -> Any:
    return T[JOINT_STATE](
        header=header(stamp),
        name=list(names),
        position=np.asarray(pos, dtype=np.float64),
        velocity=np.asarray(vel, dtype=np.float64),
        effort=np.zeros(0, dtype=np.float64),
    )


def float64_array(values: np.ndarray, label: str = "joints") -> Any:
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    dim = T["std_msgs/msg/MultiArrayDimension"](label=label, size=values.size, stride=values.size)
    layout = T["std_msgs/msg/MultiArrayLayout"](dim=[dim], data_offset=0)
    return T[FLOAT64_ARRAY](layout=layout, data=values)


def joint_trajectory(stamp: int, names: Sequence[str], positions: np.ndarray, time_from_start_ns: int) -> Any:
    """A one-point ``trajectory_msgs/JointTrajectory`` (joint_trajectory_controller's input):
    reach ``positions`` (rad) ``time_from_start_ns`` after ``stamp`` (0: when it arrives)."""
    empty = np.zeros(0, dtype=np.float64)
    sec, nsec = divmod(int(time_from_start_ns), 1_000_000_000)
    point = T["trajectory_msgs/msg/JointTrajectoryPoint"](
        positions=np.asarray(positions, dtype=np.float64).reshape(-1),
        velocities=empty,
        accelerations=empty,
        effort=empty,
        time_from_start=T["builtin_interfaces/msg/Duration"](sec=sec, nanosec=nsec),
    )
    return T["trajectory_msgs/msg/JointTrajectory"](
        header=header(stamp), joint_names=list(names), points=[point]
    )


def point_stamped(stamp: int, xyz: np.ndarray, frame_id: str = "world") -> Any:
    """A point of 3 values, or of 2 (a planar goal: z = 0)."""
    p = np.asarray(xyz, dtype=np.float64).reshape(-1)
    if p.size not in (2, 3):
        raise ValueError(f"a PointStamped holds 2 or 3 values, got {p.size}")
    x, y, z = (float(v) for v in (*p, 0.0)[:3])
    return T[POINT_STAMPED](header=header(stamp, frame_id), point=T["geometry_msgs/msg/Point"](x=x, y=y, z=z))


def diagnostics(stamp: int, name: str, level: int, message: str, values: Mapping[str, object]) -> Any:
    kv = [T["diagnostic_msgs/msg/KeyValue"](key=str(k), value=str(v)) for k, v in values.items()]
    status = T["diagnostic_msgs/msg/DiagnosticStatus"](
        level=int(level), name=name, message=message, hardware_id="spine", values=kv
    )
    return T[DIAGNOSTICS](header=header(stamp), status=[status])


def serialize(msg: Any) -> bytes:
    return TYPESTORE.serialize_cdr(msg, msg.__msgtype__)
