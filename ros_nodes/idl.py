"""ROS 2 standard messages as Cyclone DDS IDL types, under ROS 2's DDS type names.

ROS 2 (rmw_cyclonedds) names the DDS type of ``pkg/msg/Type`` ``pkg::msg::dds_::Type_`` and
serializes it as XCDR1 (plain CDR), little-endian. The ``IdlStruct`` dataclasses here are not
written out: they are generated from the ROS 2 (Jazzy) definitions in ``rosbags``' typestore
(``deploy.logs.messages.TYPESTORE``), field by field and nested types first, so a sample written with
them is byte-identical to what ``rosbags`` serializes for the same message
(``tests/ros_nodes/test_wire.py`` checks it).

``IDL_TYPES`` maps a ROS message type name (``sensor_msgs/msg/JointState``) to its class, for the
types Spine uses (``SPINE_TYPES``) and those they nest; ``ros_nodes.convert`` turns rosbags
messages into these and back. Look a class up there by its ROS name.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Any

from cyclonedds.idl import IdlStruct
from cyclonedds.idl.types import (
    array,
    bounded_str,
    float32,
    float64,
    int8,
    int16,
    int32,
    int64,
    sequence,
    uint8,
    uint16,
    uint32,
    uint64,
)
from rosbags.interfaces import Nodetype

from deploy.logs.messages import TYPESTORE

try:
    from cyclonedds.idl.types import byte
except ImportError:  # cyclonedds 0.10 (the binding of Debian's Cyclone DDS): no byte, one octet all the same
    byte = uint8

# ROS 2 base type -> (IDL annotation, default). ROS 2's ``char`` is an unsigned octet (uint8 in IDL).
_BASE: dict[str, tuple[Any, Any]] = {
    "bool": (bool, False),
    "byte": (byte, 0),
    "char": (uint8, 0),
    "int8": (int8, 0),
    "uint8": (uint8, 0),
    "int16": (int16, 0),
    "uint16": (uint16, 0),
    "int32": (int32, 0),
    "uint32": (uint32, 0),
    "int64": (int64, 0),
    "uint64": (uint64, 0),
    "float32": (float32, 0.0),
    "float64": (float64, 0.0),
    "string": (str, ""),
}

# The message types Spine reads and writes (``IDL_TYPES`` adds what they nest).
SPINE_TYPES = (
    "std_msgs/msg/Bool",
    "std_msgs/msg/Float64MultiArray",
    "sensor_msgs/msg/JointState",
    "trajectory_msgs/msg/JointTrajectory",
    "geometry_msgs/msg/PointStamped",
    "diagnostic_msgs/msg/DiagnosticArray",
)


def dds_type_name(msgtype: str) -> str:
    """``sensor_msgs/msg/JointState`` -> ``sensor_msgs::msg::dds_::JointState_``."""
    pkg, kind, name = msgtype.split("/")
    return f"{pkg}::{kind}::dds_::{name}_"


def _element(desc: tuple[Any, Any], structs: dict[str, type[IdlStruct]]) -> tuple[Any, Any]:
    """(IDL annotation, default factory) of a base or named element type (a ``FieldDesc``)."""
    kind, sub = desc
    if kind == Nodetype.NAME:
        cls = idl_struct(sub, structs)
        return cls, cls
    name, bound = sub  # base type: (name, string bound; 0 = unbounded)
    if name == "string" and bound:
        return bounded_str[bound], str
    if name not in _BASE:
        raise NotImplementedError(f"ROS base type {name!r} has no Cyclone DDS Python equivalent")
    annotation, default = _BASE[name]
    return annotation, type(default)


def _member(desc: tuple[Any, Any], structs: dict[str, type[IdlStruct]]) -> tuple[Any, Any]:
    """(IDL annotation, ``dataclasses.field``) of one field of a typestore definition."""
    kind, sub = desc
    if kind in (Nodetype.BASE, Nodetype.NAME):
        annotation, factory = _element(desc, structs)
    else:
        inner, length = sub  # ARRAY: fixed length; SEQUENCE: bound, 0 = unbounded
        element, element_factory = _element(inner, structs)
        if kind == Nodetype.ARRAY:
            annotation = array[element, length]
            factory = lambda: [element_factory() for _ in range(length)]  # noqa: E731
        else:
            annotation = sequence[element, length] if length else sequence[element]
            factory = list
    if factory in (bool, int, float, str):
        return annotation, field(default=factory())
    return annotation, field(default_factory=factory)


def idl_struct(msgtype: str, structs: dict[str, type[IdlStruct]]) -> type[IdlStruct]:
    """The ``IdlStruct`` dataclass of ROS type ``msgtype``, built from ``TYPESTORE.fielddefs``
    (its nested types first); ``structs`` caches the built classes by ROS type name."""
    if msgtype in structs:
        return structs[msgtype]
    members = {name: _member(desc, structs) for name, desc in TYPESTORE.fielddefs[msgtype][1]}

    def body(ns: dict[str, Any]) -> None:
        ns["__module__"] = __name__
        ns["__qualname__"] = msgtype.rsplit("/", 1)[1]
        ns["__doc__"] = f"``{msgtype}`` as the DDS type ``{dds_type_name(msgtype)}``."
        for name, (annotation, default) in members.items():
            ns["__annotations__"][name] = annotation
            ns[name] = default

    cls = types.new_class(msgtype.rsplit("/", 1)[1], (IdlStruct,), {"typename": dds_type_name(msgtype)}, body)
    structs[msgtype] = dataclass(cls)
    return structs[msgtype]


def _build(msgtypes: tuple[str, ...]) -> dict[str, type[IdlStruct]]:
    structs: dict[str, type[IdlStruct]] = {}
    for msgtype in msgtypes:
        idl_struct(msgtype, structs)
    return structs


IDL_TYPES: dict[str, type[IdlStruct]] = _build(SPINE_TYPES)
