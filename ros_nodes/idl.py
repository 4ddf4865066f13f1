"""ROS 2 standard messages as Cyclone DDS IDL types, under ROS 2's DDS type names.

ROS 2 (rmw_cyclonedds) names the DDS type of ``pkg/msg/Type`` ``pkg::msg::dds_::Type_`` and
serializes it as XCDR1 (plain CDR), little-endian. These ``IdlStruct`` dataclasses mirror the
``.msg`` definitions field by field, so a sample written with them is byte-identical to what
``rosbags`` serializes for the same message (``tests/ros_nodes/test_wire.py`` checks it).

``IDL_TYPES`` maps a ROS message type name (``sensor_msgs/msg/JointState``) to its class;
``ros_nodes.convert`` turns rosbags messages into these and back.
"""

from dataclasses import dataclass, field

from cyclonedds.idl import IdlStruct
from cyclonedds.idl.types import float64, int32, sequence, uint32

try:
    from cyclonedds.idl.types import byte
except ImportError:  # cyclonedds 0.10 (the binding of Debian's Cyclone DDS): no byte, one octet all the same
    from cyclonedds.idl.types import uint8 as byte


def dds_type_name(msgtype: str) -> str:
    """``sensor_msgs/msg/JointState`` -> ``sensor_msgs::msg::dds_::JointState_``."""
    pkg, kind, name = msgtype.split("/")
    return f"{pkg}::{kind}::dds_::{name}_"


@dataclass
class Time(IdlStruct, typename=dds_type_name("builtin_interfaces/msg/Time")):
    sec: int32 = 0
    nanosec: uint32 = 0


@dataclass
class Duration(IdlStruct, typename=dds_type_name("builtin_interfaces/msg/Duration")):
    sec: int32 = 0
    nanosec: uint32 = 0


@dataclass
class Header(IdlStruct, typename=dds_type_name("std_msgs/msg/Header")):
    stamp: Time = field(default_factory=Time)
    frame_id: str = ""


@dataclass
class Bool(IdlStruct, typename=dds_type_name("std_msgs/msg/Bool")):
    data: bool = False


@dataclass
class MultiArrayDimension(IdlStruct, typename=dds_type_name("std_msgs/msg/MultiArrayDimension")):
    label: str = ""
    size: uint32 = 0
    stride: uint32 = 0


@dataclass
class MultiArrayLayout(IdlStruct, typename=dds_type_name("std_msgs/msg/MultiArrayLayout")):
    dim: sequence[MultiArrayDimension] = field(default_factory=list)
    data_offset: uint32 = 0


@dataclass
class Float64MultiArray(IdlStruct, typename=dds_type_name("std_msgs/msg/Float64MultiArray")):
    layout: MultiArrayLayout = field(default_factory=MultiArrayLayout)
    data: sequence[float64] = field(default_factory=list)


@dataclass
class JointState(IdlStruct, typename=dds_type_name("sensor_msgs/msg/JointState")):
    header: Header = field(default_factory=Header)
    name: sequence[str] = field(default_factory=list)
    position: sequence[float64] = field(default_factory=list)
    velocity: sequence[float64] = field(default_factory=list)
    effort: sequence[float64] = field(default_factory=list)


@dataclass
class JointTrajectoryPoint(IdlStruct, typename=dds_type_name("trajectory_msgs/msg/JointTrajectoryPoint")):
    positions: sequence[float64] = field(default_factory=list)
    velocities: sequence[float64] = field(default_factory=list)
    accelerations: sequence[float64] = field(default_factory=list)
    effort: sequence[float64] = field(default_factory=list)
    time_from_start: Duration = field(default_factory=Duration)


@dataclass
class JointTrajectory(IdlStruct, typename=dds_type_name("trajectory_msgs/msg/JointTrajectory")):
    header: Header = field(default_factory=Header)
    joint_names: sequence[str] = field(default_factory=list)
    points: sequence[JointTrajectoryPoint] = field(default_factory=list)


@dataclass
class Point(IdlStruct, typename=dds_type_name("geometry_msgs/msg/Point")):
    x: float64 = 0.0
    y: float64 = 0.0
    z: float64 = 0.0


@dataclass
class PointStamped(IdlStruct, typename=dds_type_name("geometry_msgs/msg/PointStamped")):
    header: Header = field(default_factory=Header)
    point: Point = field(default_factory=Point)


@dataclass
class KeyValue(IdlStruct, typename=dds_type_name("diagnostic_msgs/msg/KeyValue")):
    key: str = ""
    value: str = ""


@dataclass
class DiagnosticStatus(IdlStruct, typename=dds_type_name("diagnostic_msgs/msg/DiagnosticStatus")):
    level: byte = 0
    name: str = ""
    message: str = ""
    hardware_id: str = ""
    values: sequence[KeyValue] = field(default_factory=list)


@dataclass
class DiagnosticArray(IdlStruct, typename=dds_type_name("diagnostic_msgs/msg/DiagnosticArray")):
    header: Header = field(default_factory=Header)
    status: sequence[DiagnosticStatus] = field(default_factory=list)


IDL_TYPES: dict[str, type[IdlStruct]] = {
    "builtin_interfaces/msg/Time": Time,
    "builtin_interfaces/msg/Duration": Duration,
    "std_msgs/msg/Header": Header,
    "std_msgs/msg/Bool": Bool,
    "std_msgs/msg/MultiArrayDimension": MultiArrayDimension,
    "std_msgs/msg/MultiArrayLayout": MultiArrayLayout,
    "std_msgs/msg/Float64MultiArray": Float64MultiArray,
    "sensor_msgs/msg/JointState": JointState,
    "trajectory_msgs/msg/JointTrajectoryPoint": JointTrajectoryPoint,
    "trajectory_msgs/msg/JointTrajectory": JointTrajectory,
    "geometry_msgs/msg/Point": Point,
    "geometry_msgs/msg/PointStamped": PointStamped,
    "diagnostic_msgs/msg/KeyValue": KeyValue,
    "diagnostic_msgs/msg/DiagnosticStatus": DiagnosticStatus,
    "diagnostic_msgs/msg/DiagnosticArray": DiagnosticArray,
}
