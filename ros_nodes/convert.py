"""Convert between rosbags messages (Spine's one message representation) and the Cyclone DDS
IDL samples of ``ros_nodes.idl``, driven by the typestore's field definitions (the same ones the
IDL classes are generated from, so field names and order agree by construction).

Numeric sequences and arrays are numpy arrays on the rosbags side and lists (fixed octet arrays:
``bytes`` when decoded) on the IDL side; nested messages recurse. Only the types in
``ros_nodes.idl.IDL_TYPES`` are supported.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rosbags.interfaces import Nodetype

from deploy.logs.messages import TYPESTORE
from ros_nodes.idl import IDL_TYPES

_NUMPY = {
    "bool": np.bool_,
    "byte": np.uint8,
    "char": np.uint8,
    "int8": np.int8,
    "uint8": np.uint8,
    "int16": np.int16,
    "uint16": np.uint16,
    "int32": np.int32,
    "uint32": np.uint32,
    "int64": np.int64,
    "uint64": np.uint64,
    "float32": np.float32,
    "float64": np.float64,
}


def idl_type(msgtype: str) -> type:
    """The IDL class of a ROS message type; a ``KeyError`` names unsupported types."""
    try:
        return IDL_TYPES[msgtype]
    except KeyError:
        raise KeyError(f"no DDS type for {msgtype!r}; supported: {sorted(IDL_TYPES)}") from None


def _fields(msgtype: str) -> list[tuple[str, tuple[Any, Any]]]:
    return TYPESTORE.fielddefs[msgtype][1]


def to_idl(msg: Any) -> Any:
    """A rosbags message -> its IDL sample (same field values)."""
    msgtype = msg.__msgtype__
    kw = {}
    for name, (kind, sub) in _fields(msgtype):
        value = getattr(msg, name)
        if kind == Nodetype.NAME:
            kw[name] = to_idl(value)
        elif kind in (Nodetype.SEQUENCE, Nodetype.ARRAY):
            (inner_kind, _), _ = sub
            if inner_kind == Nodetype.NAME:
                kw[name] = [to_idl(v) for v in value]
            else:
                kw[name] = value.tolist() if isinstance(value, np.ndarray) else list(value)
        else:
            kw[name] = value
    return idl_type(msgtype)(**kw)


def from_idl(sample: Any, msgtype: str) -> Any:
    """An IDL sample -> the rosbags message of type ``msgtype``."""
    kw = {}
    for name, (kind, sub) in _fields(msgtype):
        value = getattr(sample, name)
        if kind == Nodetype.NAME:
            kw[name] = from_idl(value, sub)
        elif kind in (Nodetype.SEQUENCE, Nodetype.ARRAY):
            (inner_kind, inner), _ = sub
            if inner_kind == Nodetype.NAME:
                kw[name] = [from_idl(v, inner) for v in value]
            elif inner[0] == "string":
                kw[name] = list(value)
            elif isinstance(value, bytes | bytearray):  # cyclonedds decodes a fixed octet array as bytes
                kw[name] = np.frombuffer(value, dtype=_NUMPY[inner[0]]).copy()
            else:
                kw[name] = np.asarray(value, dtype=_NUMPY[inner[0]])
        else:
            kw[name] = value
    return TYPESTORE.types[msgtype](**kw)
