"""ROS 2 bags as a physical UR arm's recorder writes them, built with ``rosbags``' Writer.

A UR arm under ``ur_robot_driver``: ``/joint_states`` from joint_state_broadcaster at ~500 Hz
with the joints in its (alphabetical) order, not the URDF's; commands as
``trajectory_msgs/JointTrajectory`` on the scaled joint trajectory controller's topic. Each
connection carries the offered QoS profile ``ros2 bag record`` stores: ROS 2 Humble as integer
enums with the infinite durations as (2147483647 s, 4294967295 ns), in a sqlite3 database of
schema 3 (no message definitions, no type hashes); Jazzy as names with (9223372036 s,
854775807 ns), schema 4. A recorder killed before closing leaves no ``metadata.yaml``.

The tests map these logs onto an existing task (``widowx_reach``'s five joints) with
``joint_states.names`` renames: it is the log tools' behaviour that is tested, not the robot.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

URDF_ORDER = (
    "shoulder_pan_joint",
    "shoulder_lift_joint",
    "elbow_joint",
    "wrist_1_joint",
    "wrist_2_joint",
    "wrist_3_joint",
)
PUBLISHED_ORDER = tuple(sorted(URDF_ORDER))  # joint_state_broadcaster's order: elbow_joint first
ONTO_WIDOWX = dict(
    zip(("waist", "shoulder", "elbow", "wrist_angle", "wrist_rotate"), URDF_ORDER, strict=False)
)
JS_TOPIC = "/joint_states"
TRAJ_TOPIC = "/scaled_joint_trajectory_controller/joint_trajectory"
JOINT_STATE = "sensor_msgs/msg/JointState"
TRAJECTORY = "trajectory_msgs/msg/JointTrajectory"
T0 = 1_700_000_000_000_000_000  # ns: the robot's clock
RATE_HZ = 500.0
CMD_HZ = 10.0
LAG_S = 0.05  # the measured joints follow the commanded targets this much later

HUMBLE_INF = QosTime(2147483647, 4294967295)
JAZZY_INF = QosTime(9223372036, 854775807)
DISTROS = {
    "humble": (Stores.ROS2_HUMBLE, 8, HUMBLE_INF),
    "jazzy": (Stores.ROS2_JAZZY, 9, JAZZY_INF),
}
STORAGES = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}


def offered_qos(distro: str, reliable: bool = True) -> Qos:
    """The offered QoS profile ``ros2 bag record`` stores for a publisher on ``distro``."""
    inf = DISTROS[distro][2]
    return Qos(
        QosHistory.UNKNOWN,
        0,
        QosReliability.RELIABLE if reliable else QosReliability.BEST_EFFORT,
        QosDurability.VOLATILE,
        inf,
        inf,
        QosLiveliness.AUTOMATIC,
        inf,
        False,
    )


def target(t: np.ndarray | float) -> np.ndarray:
    """The commanded pose at ``t`` s (rad, URDF order); within widowx_reach's limits."""
    t = np.asarray(t, dtype=np.float64)[..., None]
    amp = np.array([0.8, 0.3, 0.4, 0.5, 0.6, 0.2])
    base = np.array([0.0, 0.4, -0.3, 0.2, 0.0, 0.1])
    freq = np.array([0.5, 0.7, 0.9, 1.1, 0.6, 0.4])
    return base + amp * np.sin(freq * t)


def write_ur_log(
    path: Path,
    storage: str = "mcap",
    distro: str = "jazzy",
    seconds: float = 4.0,
    commands: bool = True,
    still: bool = False,
    payload_hook: Callable[[int, bytes], bytes] | None = None,
) -> Path:
    """A UR-like rosbag2 folder at ``path``: joint states at ``RATE_HZ`` (velocities included),
    and with ``commands`` one two-point JointTrajectory every 1/``CMD_HZ`` s (the second point
    is replaced by the next trajectory, as joint_trajectory_controller does). ``still``: the arm
    stands still (targets constant). ``payload_hook(i, raw)`` may alter joint state ``i``'s
    serialized bytes (a flipped byte: ``flip``)."""
    store_id, version, _ = DISTROS[distro]
    store = get_typestore(store_id)
    T = store.types
    qos = [offered_qos(distro)]
    pose = (lambda t: target(0.0) + 0 * np.asarray(t)[..., None]) if still else target
    with Writer(path, version=version, storage_plugin=STORAGES[storage]) as w:
        js = w.add_connection(JS_TOPIC, JOINT_STATE, typestore=store, offered_qos_profiles=qos)
        cmd = (
            w.add_connection(TRAJ_TOPIC, TRAJECTORY, typestore=store, offered_qos_profiles=qos)
            if commands
            else None
        )
        order = [URDF_ORDER.index(n) for n in PUBLISHED_ORDER]
        n = round(seconds * RATE_HZ)
        every = round(RATE_HZ / CMD_HZ)
        for i in range(n):
            t_ns = T0 + round(i * 1e9 / RATE_HZ)
            t = i / RATE_HZ
            q = pose(t - LAG_S)[order]
            qd = (pose(t - LAG_S + 1e-3) - pose(t - LAG_S))[order] * 1e3
            msg = T[JOINT_STATE](
                header=_header(T, t_ns),
                name=list(PUBLISHED_ORDER),
                position=q,
                velocity=qd,
                effort=np.zeros(6),
            )
            raw = bytes(store.serialize_cdr(msg, JOINT_STATE))
            w.write(js, t_ns, payload_hook(i, raw) if payload_hook is not None else raw)
            if cmd is not None and i % every == 0:
                traj = trajectory(T, t_ns, URDF_ORDER, [(0.1, pose(t + 0.1)), (0.2, pose(t + 0.2))])
                w.write(cmd, t_ns, store.serialize_cdr(traj, TRAJECTORY))
    return path


def trajectory(
    T: dict, stamp_ns: int, names: tuple[str, ...], points: list[tuple[float, np.ndarray]]
) -> object:
    """A JointTrajectory starting at ``stamp_ns`` (0: on arrival) with (time_from_start s, positions)."""
    empty = np.zeros(0)
    pts = []
    for tfs, positions in points:
        sec, nsec = divmod(round(tfs * 1e9), 1_000_000_000)
        pts.append(
            T["trajectory_msgs/msg/JointTrajectoryPoint"](
                positions=np.asarray(positions, dtype=np.float64),
                velocities=empty,
                accelerations=empty,
                effort=empty,
                time_from_start=T["builtin_interfaces/msg/Duration"](sec=sec, nanosec=nsec),
            )
        )
    return T[TRAJECTORY](header=_header(T, stamp_ns), joint_names=list(names), points=pts)


def _header(T: dict, stamp_ns: int) -> object:
    sec, nsec = divmod(int(stamp_ns), 1_000_000_000)
    return T["std_msgs/msg/Header"](
        stamp=T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec), frame_id=""
    )


def as_killed_recorder(path: Path, distro: str) -> Path:
    """``path`` as a recorder killed before closing leaves it: no ``metadata.yaml``; a Humble
    sqlite3 database in schema 3 (topics without type hashes, no message definitions, the
    metadata table empty: rosbag2 fills it when closing)."""
    (path / "metadata.yaml").unlink()
    dbs = list(path.glob("*.db3"))
    if distro == "humble" and dbs:
        con = sqlite3.connect(dbs[0])
        con.executescript(
            """
            CREATE TABLE topics3(id INTEGER PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL,
                                 serialization_format TEXT NOT NULL, offered_qos_profiles TEXT NOT NULL);
            INSERT INTO topics3 SELECT id, name, type, serialization_format, offered_qos_profiles FROM topics;
            DROP TABLE topics;
            ALTER TABLE topics3 RENAME TO topics;
            DROP TABLE message_definitions;
            DELETE FROM metadata;
            UPDATE schema SET schema_version = 3, ros_distro = 'humble';
            """
        )
        con.commit()
        con.close()
    return path


def ur_mapping(commands: bool = True, interpolation: str = "hold", **resample: float | None) -> dict:
    """The UR log mapped onto widowx_reach's five joints by name (wrist_3_joint is left over);
    ``interpolation="hold"``: the trajectory points themselves, at their times."""
    data: dict = {"robot": "widowx_reach", "joint_states": {"topic": JS_TOPIC, "names": dict(ONTO_WIDOWX)}}
    if commands:
        data["command"] = {"topic": TRAJ_TOPIC, "kind": "trajectory", "interpolation": interpolation}
    if resample:
        data["resample"] = dict(resample)
    return data


def flip(at: dict[int, int]) -> Callable[[int, bytes], bytes]:
    """A ``payload_hook`` that flips byte ``at[i]`` (all eight bits) of joint state ``i``."""

    def hook(i: int, raw: bytes) -> bytes:
        if i not in at:
            return raw
        out = bytearray(raw)
        out[at[i]] ^= 0xFF
        return bytes(out)

    return hook


def cdr_offsets(raw: bytes) -> dict[str, int]:
    """Byte offsets of fields in a CDR JointState payload (``deploy.logs.joint_state_batch``)."""
    from deploy.logs.joint_state_batch import parse_layout

    lay = parse_layout(raw, ros1=False)
    return {
        "stamp_sec_high": lay.sec + 3,
        "names_count": lay.names_span[0],
        "first_name": lay.names_span[0] + 8,
        "position_0_high": lay.position[0] + 7,
        "velocity_0_high": lay.velocity[0] + 7,
    }
