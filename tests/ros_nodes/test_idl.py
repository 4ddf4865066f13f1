"""The DDS types of ``ros_nodes.idl`` are generated from rosbags' ROS 2 definitions: their fields
follow the typestore's, and a rosbags message survives ``to_idl``/``from_idl`` with its CDR bytes,
which cyclonedds' serializer of the generated struct reproduces."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from rosbags.interfaces import Nodetype

from deploy.logs.messages import TYPESTORE
from ros_nodes.convert import _NUMPY, from_idl, idl_type, to_idl
from ros_nodes.idl import IDL_TYPES, dds_type_name, idl_struct

SPINE = {
    "builtin_interfaces/msg/Time",
    "builtin_interfaces/msg/Duration",
    "std_msgs/msg/Header",
    "std_msgs/msg/Bool",
    "std_msgs/msg/MultiArrayDimension",
    "std_msgs/msg/MultiArrayLayout",
    "std_msgs/msg/Float64MultiArray",
    "sensor_msgs/msg/JointState",
    "trajectory_msgs/msg/JointTrajectoryPoint",
    "trajectory_msgs/msg/JointTrajectory",
    "geometry_msgs/msg/Point",
    "geometry_msgs/msg/PointStamped",
    "diagnostic_msgs/msg/KeyValue",
    "diagnostic_msgs/msg/DiagnosticStatus",
    "diagnostic_msgs/msg/DiagnosticArray",
}
# Beyond Spine's types: fixed arrays (float64[9], octet[16]), bounded strings/sequences, char, int8..64.
EXOTIC = (
    "sensor_msgs/msg/CameraInfo",
    "unique_identifier_msgs/msg/UUID",
    "action_msgs/msg/GoalStatusArray",
    "sensor_msgs/msg/Image",
    "rcl_interfaces/msg/ParameterValue",
    "std_msgs/msg/Char",
    "sensor_msgs/msg/NavSatStatus",
    "rmw_dds_common/msg/NodeEntitiesInfo",
    "rcl_interfaces/msg/ParameterDescriptor",
    "shape_msgs/msg/SolidPrimitive",
)


def _value(base: str, i: int) -> Any:
    if base == "string":
        return f"v{i}·é"  # multi-byte UTF-8
    if base == "bool":
        return i % 2 == 1
    if base.startswith("float"):
        return -1.25 + i
    return 1 + i % 100


def sample_message(msgtype: str) -> Any:
    """A rosbags message of ``msgtype`` with every field set to something other than its default."""
    kw: dict[str, Any] = {}
    for i, (name, (kind, sub)) in enumerate(TYPESTORE.fielddefs[msgtype][1]):
        if kind == Nodetype.NAME:
            kw[name] = sample_message(sub)
        elif kind == Nodetype.BASE:
            kw[name] = _value(sub[0], i)
        else:
            (inner_kind, inner), length = sub
            n = length if kind == Nodetype.ARRAY else min(length, 2) if length else 3
            if inner_kind == Nodetype.NAME:
                kw[name] = [sample_message(inner) for _ in range(n)]
            elif inner[0] == "string":
                kw[name] = [_value("string", i + j) for j in range(n)]
            else:
                kw[name] = np.array([_value(inner[0], i + j) for j in range(n)], dtype=_NUMPY[inner[0]])
    return TYPESTORE.types[msgtype](**kw)


def test_spine_types_and_their_nested_types() -> None:
    assert set(IDL_TYPES) == SPINE
    for msgtype, cls in IDL_TYPES.items():
        assert cls.__idl_typename__ == dds_type_name(msgtype)
        assert cls.__name__ == msgtype.rsplit("/", 1)[1]


@pytest.mark.parametrize("msgtype", sorted(SPINE))
def test_fields_follow_the_typestore(msgtype: str) -> None:
    cls = idl_type(msgtype)
    fields = TYPESTORE.fielddefs[msgtype][1]
    assert list(cls.__dataclass_fields__) == [name for name, _ in fields]
    for name, (kind, sub) in fields:
        if kind == Nodetype.NAME:  # nested messages are the generated classes themselves
            assert cls.__annotations__[name] is IDL_TYPES[sub]
    cls()  # every field has a default


def _round_trip(msgtype: str) -> None:
    msg = sample_message(msgtype)
    cdr = bytes(TYPESTORE.serialize_cdr(msg, msgtype))
    sample = to_idl(msg)
    assert type(sample) is idl_type(msgtype)
    raw = sample.serialize()  # cyclonedds' serializer: XCDR1 LE, padded to 4 bytes
    assert raw[: len(cdr)] == cdr
    assert raw[len(cdr) :] == b"\x00" * (len(raw) - len(cdr))
    assert bytes(TYPESTORE.serialize_cdr(from_idl(sample, msgtype), msgtype)) == cdr
    decoded = idl_type(msgtype).deserialize(raw)
    assert bytes(TYPESTORE.serialize_cdr(from_idl(decoded, msgtype), msgtype)) == cdr


@pytest.mark.parametrize("msgtype", sorted(SPINE))
def test_round_trip_keeps_the_cdr_bytes(msgtype: str) -> None:
    _round_trip(msgtype)


@pytest.mark.parametrize("msgtype", EXOTIC)
def test_generator_covers_other_field_kinds(msgtype: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The generator is not tailored to Spine's types: arrays, octets, bounds, ... round-trip too."""
    structs = dict(IDL_TYPES)
    cls = idl_struct(msgtype, structs)
    assert cls.__idl_typename__ == dds_type_name(msgtype)
    for msgtype_, cls_ in structs.items():
        monkeypatch.setitem(IDL_TYPES, msgtype_, cls_)
    _round_trip(msgtype)
