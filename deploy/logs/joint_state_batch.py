"""Batch decoding of sensor_msgs/JointState payloads with numpy, checked against ``rosbags``.

A log's JointState messages nearly always share one layout: the same joint names, the same
array lengths, the same frame id, hence the same byte length. Such a group is decoded at once:
the layout (offsets of the stamp and of the position / velocity arrays) is parsed from the
group's first payload, every payload's name bytes are compared with the first one's, and the
arrays are read with strided numpy views. The first and last payload of each group are also
deserialized by ``rosbags``; a group whose values disagree, or a payload whose names differ, is
decoded by ``rosbags`` one message at a time instead; a payload ``rosbags`` cannot decode either
(a corrupt message) is listed in ``Decoded.failed`` and belongs to no group. Little-endian CDR
(ROS 2) and ROS 1 serialization are supported.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Layout:
    """Where the fields of one JointState payload lie (byte offsets into the payload)."""

    sec: int
    nanosec: int
    names: list[str]
    names_span: tuple[int, int]  # bytes holding the names (compared across a group)
    position: tuple[int, int]  # (offset, count) of the float64 array
    velocity: tuple[int, int]
    size: int


def parse_layout(raw: bytes, ros1: bool) -> Layout:
    """The layout of one JointState payload (``ValueError`` if it is not one)."""
    raw = bytes(raw)
    try:
        return _parse_ros1(raw) if ros1 else _parse_cdr(raw)
    except (struct.error, IndexError, UnicodeDecodeError) as e:
        raise ValueError(f"not a sensor_msgs/JointState payload ({e})") from None


def _parse_cdr(raw: bytes) -> Layout:
    if raw[1] != 1:  # 0x0001 = CDR little endian
        raise ValueError("not little-endian CDR")
    base = 4
    u32 = struct.Struct("<I").unpack_from

    def align(pos: int, a: int) -> int:
        return base + (pos - base + a - 1) // a * a

    pos = base + 8  # stamp: sec, nanosec
    pos = align(pos, 4)
    pos += 4 + u32(raw, pos)[0]  # frame_id, NUL included
    pos = align(pos, 4)
    start = pos
    (n,) = u32(raw, pos)
    pos += 4
    names = []
    for _ in range(n):
        pos = align(pos, 4)
        (k,) = u32(raw, pos)
        names.append(raw[pos + 4 : pos + 3 + k].decode())
        pos += 4 + k
    span = (start, pos)
    arrays = []
    for _ in range(3):
        pos = align(pos, 4)
        (k,) = u32(raw, pos)
        pos = align(pos + 4, 8) if k else pos + 4
        arrays.append((pos, k))
        pos += 8 * k
    return Layout(base, base + 4, names, span, arrays[0], arrays[1], len(raw))


def _parse_ros1(raw: bytes) -> Layout:
    u32 = struct.Struct("<I").unpack_from
    pos = 12  # seq, stamp sec, stamp nsec
    pos += 4 + u32(raw, pos)[0]  # frame_id
    start = pos
    (n,) = u32(raw, pos)
    pos += 4
    names = []
    for _ in range(n):
        (k,) = u32(raw, pos)
        names.append(raw[pos + 4 : pos + 4 + k].decode())
        pos += 4 + k
    span = (start, pos)
    arrays = []
    for _ in range(3):
        (k,) = u32(raw, pos)
        arrays.append((pos + 4, k))
        pos += 4 + 8 * k
    return Layout(4, 8, names, span, arrays[0], arrays[1], len(raw))


@dataclass
class Decoded:
    """JointState messages decoded in order: stamps, names per message, arrays per layout."""

    stamps: np.ndarray  # (N,) int64 header stamps (ns); 0 where the header has none
    groups: list[tuple[np.ndarray, list[str], np.ndarray, np.ndarray | None]]
    """(message indices, names, positions (k, n), velocities (k, n) or None if absent)."""
    fallback: int  # messages decoded one by one by rosbags
    failed: list[tuple[int, str]] = field(default_factory=list)  # (index, error): did not decode


def decode(raws: list[bytes], ros1: bool, deserialize: Callable[[bytes], Any]) -> Decoded:
    """Decode JointState ``raws``; ``deserialize(raw)`` is rosbags' decoder for the check."""
    n = len(raws)
    stamps = np.zeros(n, dtype=np.int64)
    lengths = np.fromiter((len(r) for r in raws), dtype=np.int64, count=n)
    groups: list[tuple[np.ndarray, list[str], np.ndarray, np.ndarray | None]] = []
    slow: list[int] = []
    for size in np.unique(lengths):
        idx = np.flatnonzero(lengths == size)
        first = raws[idx[0]]
        try:
            lay = parse_layout(first, ros1)
        except ValueError:
            slow.extend(idx.tolist())
            continue
        buf = np.frombuffer(b"".join(raws[i] for i in idx), dtype=np.uint8).reshape(len(idx), int(size))
        a, b = lay.names_span
        same = np.all(buf[:, a:b] == buf[0, a:b], axis=1)
        slow.extend(idx[~same].tolist())
        idx, buf = idx[same], buf[same]
        sec = _view(buf, lay.sec, 1, "<i4" if not ros1 else "<u4")[:, 0].astype(np.int64)
        nsec = _view(buf, lay.nanosec, 1, "<u4")[:, 0].astype(np.int64)
        pos = _view(buf, lay.position[0], lay.position[1], "<f8")
        vel = _view(buf, lay.velocity[0], lay.velocity[1], "<f8") if lay.velocity[1] else None
        if not _agrees(deserialize, raws, idx, lay.names, pos, vel, sec, nsec):
            slow.extend(idx.tolist())
            continue
        stamps[idx] = sec * 1_000_000_000 + nsec
        groups.append((idx, lay.names, pos, vel))
    failed: list[tuple[int, str]] = []
    for i in slow:  # odd payloads: rosbags, one at a time
        try:
            msg = deserialize(raws[i])
        except Exception as e:  # a corrupt payload: rosbags raises several types
            failed.append((int(i), f"{type(e).__name__}: {e}"))
            continue
        stamps[i] = int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)
        vel = np.asarray(msg.velocity, dtype=np.float64)[None] if len(msg.velocity) else None
        groups.append((np.array([i]), list(msg.name), np.asarray(msg.position, np.float64)[None], vel))
    return Decoded(stamps, groups, len(slow), sorted(failed))


def _view(buf: np.ndarray, offset: int, count: int, dtype: str) -> np.ndarray:
    """``(k, count)`` values of ``dtype`` at ``offset`` of every row of ``buf`` (copied)."""
    width = np.dtype(dtype).itemsize * count
    return np.ascontiguousarray(buf[:, offset : offset + width]).view(dtype).reshape(len(buf), count)


def _agrees(
    deserialize: Callable[[bytes], Any],
    raws: list[bytes],
    idx: np.ndarray,
    names: list[str],
    pos: np.ndarray,
    vel: np.ndarray | None,
    sec: np.ndarray,
    nsec: np.ndarray,
) -> bool:
    """rosbags' decoding of the group's first and last payloads equals the batch decoding."""
    for k in {0, len(idx) - 1}:
        try:
            msg = deserialize(raws[idx[k]])
        except Exception:  # a corrupt payload: the group is decoded one by one, which finds it
            return False
        if list(msg.name) != names or not np.array_equal(np.asarray(msg.position), pos[k], equal_nan=True):
            return False
        if vel is not None and not np.array_equal(np.asarray(msg.velocity), vel[k], equal_nan=True):
            return False
        if (int(msg.header.stamp.sec), int(msg.header.stamp.nanosec)) != (sec[k], nsec[k]):
            return False
    return True
