"""Decoded JointState messages -> the robot's joint position and velocity series, by name.

Each message's arrays are matched to the robot's joints by name (``joint_states.names``
renames), converted to rad and rad/s, and sorted by stamp. What cannot be used is skipped and
said: messages that lack a robot joint (another publisher on the same topic; an error only when
no message has them all), and corrupt ones (``deploy.logs.corrupt``): a payload that does not
decode, arrays shorter than the names, a stamp or a position that spikes away and back.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deploy.logs.corrupt import MAX_ABS, Corrupt, stamp_spikes, value_spikes
from deploy.logs.errors import LogError
from deploy.logs.joint_state_batch import Decoded
from deploy.logs.mapping import UNIT_SCALE, JointStateSource
from deploy.logs.series import Series


@dataclass
class JointSeries:
    """The joint states Spine uses, and the stamps they had in recording order."""

    pos: Series  # (N, J) rad, sorted by stamp
    vel: Series  # (N, J) rad/s
    estimated: bool  # velocities were absent and are estimated from positions
    recorded: np.ndarray  # (N,) stamps (ns) of the messages used, in recording order


def joint_series(
    path: Path,
    stamps: np.ndarray,
    decoded: Decoded,
    names: list[str],
    js: JointStateSource,
    corrupt: Corrupt,
    skipped: list[str],
) -> JointSeries:
    """``stamps`` (N,) ns of the decoded messages in recording order -> the robot's series."""
    topic, wanted = js.topic, [js.name_of(n) for n in names]
    n = len(stamps)
    pos, vel = np.full((n, len(names)), np.nan), np.full((n, len(names)), np.nan)
    ok = np.zeros(n, dtype=bool)
    lacking: Counter[tuple[str, ...]] = Counter()
    example: dict[tuple[str, ...], tuple[int, list[str]]] = {}
    for idx, msg_names, p, v in decoded.groups:
        index = {name: k for k, name in enumerate(msg_names)}
        missing = tuple(w for w in wanted if w not in index)
        if missing:
            lacking[missing] += len(idx)
            example.setdefault(missing, (int(idx.min()), list(msg_names)))
            continue
        if p.shape[1] != len(msg_names):
            for i in idx:
                corrupt.add(topic, f"message {i} has {p.shape[1]} positions for {len(msg_names)} names")
            continue
        cols = [index[w] for w in wanted]
        pos[idx], ok[idx] = p[:, cols], True
        if v is not None and v.shape[1] == len(msg_names):
            vel[idx] = v[:, cols]
    for i, error in decoded.failed:
        corrupt.add(topic, f"message {i} does not decode ({error})")
    if not ok.any():
        if lacking:
            missing, (first, has) = next(iter(example.items()))
            raise LogError(
                f"log {path}: joint(s) {list(missing)} missing from {topic} at message {first} (it has {has})"
            )
        raise LogError(
            f"log {path}: topic {topic} holds no readable message ({corrupt.counts[topic]} corrupt)"
        )
    for missing, k in sorted(lacking.items()):
        first, has = example[missing]
        skipped.append(
            f"{k} message(s) on {topic} without joint(s) {list(missing)} skipped (another publisher on "
            f"the topic? message {first} has {has})"
        )
    _drop_stamp_spikes(stamps, ok, topic, corrupt)
    pos *= UNIT_SCALE[js.position_unit]
    vel *= UNIT_SCALE[js.velocity_unit]
    order = _drop_value_spikes(stamps, pos, vel, ok, names, topic, corrupt)
    s, p, v = stamps[order], pos[order], vel[order]
    estimated = bool(np.all(np.isnan(v)))
    if estimated and len(s) > 1:
        t = (s - s[0]).astype(np.float64) / 1e9
        v = np.gradient(p, t + np.arange(len(s)) * 1e-12, axis=0)  # the tiny ramp guards duplicated stamps
    return JointSeries(Series(s, p), Series(s, v), estimated, stamps[ok])


def _drop_stamp_spikes(stamps: np.ndarray, ok: np.ndarray, topic: str, corrupt: Corrupt) -> None:
    """Unmark (in ``ok``) the messages whose stamp spikes away from its neighbours'."""
    used = np.flatnonzero(ok)
    flagged = stamp_spikes(stamps[used])
    for k in np.flatnonzero(flagged):
        ref = stamps[used[k - 1]] if k else stamps[used[min(1, len(used) - 1)]]
        corrupt.add(
            topic,
            f"message {used[k]}: stamp {(int(stamps[used[k]]) - int(ref)) / 1e9:+.3f} s "
            "off its neighbours' stamps",
        )
    spikes = used[flagged]
    ok[spikes] = False


def _drop_value_spikes(
    stamps: np.ndarray,
    pos: np.ndarray,
    vel: np.ndarray,
    ok: np.ndarray,
    names: list[str],
    topic: str,
    corrupt: Corrupt,
) -> np.ndarray:
    """Indices of the usable messages sorted by stamp, without those whose position spikes or
    whose velocity is beyond ``MAX_ABS`` (unmarked in ``ok``)."""
    used = np.flatnonzero(ok)
    order = used[np.argsort(stamps[used], kind="stable")]
    q, qd = pos[order], vel[order]
    spiked = value_spikes(q)
    with np.errstate(invalid="ignore"):
        fast = np.any(np.abs(qd) > MAX_ABS, axis=1) & ~spiked
    t0 = int(stamps[order[0]])
    for k in np.flatnonzero(spiked | fast):
        i, at = order[k], (int(stamps[order[k]]) - t0) / 1e9
        if fast[k]:
            j = int(np.nanargmax(np.abs(qd[k])))
            corrupt.add(topic, f"message {i} at {at:.3f} s: joint {names[j]!r} velocity {qd[k, j]:.4g} rad/s")
            continue
        j = _worst_joint(q, k)
        corrupt.add(
            topic,
            f"message {i} at {at:.3f} s: joint {names[j]!r} reads {q[k, j]:.4g} rad, "
            "away from its neighbours",
        )
    bad = spiked | fast
    ok[order[bad]] = False
    return order[~bad]


def _worst_joint(q: np.ndarray, k: int) -> int:
    """The joint of row ``k`` that is not finite, or that is farthest from its neighbour's value."""
    row = q[k]
    if not np.isfinite(row).all():
        return int(np.flatnonzero(~np.isfinite(row))[0])
    ref = q[k - 1] if k else q[min(1, len(q) - 1)]
    return int(np.nanargmax(np.abs(row - ref)))
