"""A ROS 2 bag of a Panda or a UR5e as its own driver's recorder writes it, made without Spine.

    .venv/bin/python tests/artifacts/foreign_arm_bag.py ur5e runs/ur5e/bag            # MCAP, Jazzy
    .venv/bin/python tests/artifacts/foreign_arm_bag.py panda runs/panda/bag --storage sqlite3 --distro humble
    .venv/bin/python tests/artifacts/foreign_arm_bag.py ur5e runs/ur5e/states --no-commands

The worked example of docs/replay.md ("Your arm's bag") uses it in place of a bag from a physical
arm. Nothing here is Spine's: the arm is MuJoCo Menagerie's MJCF (through ``mujoco-menagerie``,
``MENAGERIE_ROOT`` for a local copy) simulated with plain ``mujoco``, and the bag is written with
``rosbags``' Writer as ``ros2 bag record`` stores it:

- ``/joint_states`` (sensor_msgs/JointState) at 500 Hz, header stamps on the robot's clock, the
  joints under the driver's names in joint_state_broadcaster's (alphabetical) order, not the
  URDF's: ``elbow_joint`` first on the UR5e (``ur_robot_driver``); on the Panda ``panda_joint1..7``
  after the gripper's two finger joints (which Spine does not drive);
- commands as ``trajectory_msgs/JointTrajectory`` at 10 Hz, two points 0.1 and 0.2 s ahead and a
  zero header stamp (start on arrival), on the topic of the arm's joint_trajectory_controller
  (the UR driver's ``/scaled_joint_trajectory_controller/joint_trajectory``, franka_ros2's
  ``/panda_arm_controller/joint_trajectory``); ``--no-commands``: joint states only, as
  ``ros2 bag record /joint_states`` leaves it;
- each connection with the offered QoS profile the distro's recorder stores (Humble: integer
  enums; Jazzy: names), as ``tests/deploy/ros2_bags.py`` writes them.

The simulated arm is not the model Spine simulates: its position servos have 0.6x the MJCF's
stiffness (``KP_SCALE``), as a real arm's tuned controller differs from a model's, so the
sim-to-real gap that ``spine-log-sim`` measures is real and its fit has something to find. The
controller follows each trajectory as joint_trajectory_controller does: from where the setpoint
is on arrival, linearly to the first point, replaced by the next trajectory. Deterministic.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import mujoco
import mujoco_menagerie
import numpy as np
from rosbags.rosbag2 import Writer
from rosbags.typesys import get_typestore

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.deploy.ros2_bags import DISTROS, STORAGES, offered_qos, trajectory

JOINT_STATE = "sensor_msgs/msg/JointState"
TRAJECTORY = "trajectory_msgs/msg/JointTrajectory"
T0 = 1_750_000_000_000_000_000  # ns: the robot's clock at the first message
STATE_HZ, COMMAND_HZ = 500, 10
KP_SCALE = 0.6  # the simulated arm's servo stiffness, relative to the MJCF's


@dataclass(frozen=True)
class Arm:
    """One arm: where its model is, how its driver names the joints, where it takes commands."""

    menagerie: tuple[str, str | None]  # (robot, entry) in MuJoCo Menagerie
    names: dict[str, str]  # MJCF joint -> the driver's name, in the URDF's order
    extra: dict[str, float]  # joints the driver also publishes (not in the model), fixed values
    command_topic: str
    amplitude: tuple[float, ...]  # rad, per joint, around the model's home keyframe


ARMS = {
    "ur5e": Arm(
        ("universal_robots_ur5e", None),
        {
            j: f"{j}_joint"
            for j in ("shoulder_pan", "shoulder_lift", "elbow", "wrist_1", "wrist_2", "wrist_3")
        },
        {},
        "/scaled_joint_trajectory_controller/joint_trajectory",
        (0.6, 0.35, 0.4, 0.5, 0.5, 0.6),
    ),
    "panda": Arm(
        ("franka_emika_panda", "panda_nohand"),
        {f"joint{i}": f"panda_joint{i}" for i in range(1, 8)},
        {"panda_finger_joint1": 0.04, "panda_finger_joint2": 0.04},
        "/panda_arm_controller/joint_trajectory",
        (0.5, 0.3, 0.4, 0.4, 0.5, 0.4, 0.6),
    ),
}


def pose(arm: Arm, home: np.ndarray, t: float) -> np.ndarray:
    """The commanded pose at ``t`` s (rad, MJCF order): slow sines around home, within limits."""
    n = len(home)
    freq = 0.25 + 0.07 * np.arange(n)  # Hz, one per joint: no two joints in step
    return home + np.asarray(arm.amplitude) * np.sin(2 * np.pi * freq * t) * min(1.0, t / 1.0)


def write_bag(
    robot: str,
    out: Path,
    storage: str = "mcap",
    distro: str = "jazzy",
    seconds: float = 20.0,
    commands: bool = True,
) -> Path:
    """Simulate ``robot`` following its commands for ``seconds`` and write the bag to ``out``."""
    arm = ARMS[robot]
    sim = ArmSim(arm)
    published = sorted([*arm.names.values(), *arm.extra])  # joint_state_broadcaster's order
    driver_names = tuple(arm.names[j] for j in sim.joints)
    store_id, version, _ = DISTROS[distro]
    store = get_typestore(store_id)
    qos = [offered_qos(distro)]
    setpoint, start, goal, arrived = sim.home.copy(), sim.home.copy(), sim.home.copy(), 0.0
    with Writer(out, version=version, storage_plugin=STORAGES[storage]) as w:
        js = w.add_connection("/joint_states", JOINT_STATE, typestore=store, offered_qos_profiles=qos)
        cmd = None
        if commands:
            cmd = w.add_connection(arm.command_topic, TRAJECTORY, typestore=store, offered_qos_profiles=qos)
        for i in range(round(seconds * STATE_HZ)):
            t = i / STATE_HZ
            t_ns = T0 + i * (1_000_000_000 // STATE_HZ)
            if i % (STATE_HZ // COMMAND_HZ) == 0:  # a new trajectory replaces the last one
                points = [(0.1, pose(arm, sim.home, t + 0.1)), (0.2, pose(arm, sim.home, t + 0.2))]
                start, goal, arrived = setpoint.copy(), points[0][1], t  # from the setpoint, linearly
                if cmd is not None:
                    msg = trajectory(store.types, 0, driver_names, points)
                    w.write(cmd, t_ns, store.serialize_cdr(msg, TRAJECTORY))
            setpoint = start + (goal - start) * min(1.0, (t - arrived) / 0.1)
            q, qd = sim.state()
            position = {**arm.extra, **dict(zip(driver_names, q, strict=True))}
            velocity = dict(zip(driver_names, qd, strict=True))
            msg = joint_state(store.types, t_ns, published, position, velocity)
            w.write(js, t_ns, store.serialize_cdr(msg, JOINT_STATE))
            sim.step(setpoint)
    return out


class ArmSim:
    """The arm's Menagerie MJCF in plain MuJoCo, its servos at ``KP_SCALE`` of the model's."""

    def __init__(self, arm: Arm) -> None:
        xml = mujoco_menagerie.get(arm.menagerie[0]).xml(arm.menagerie[1])
        self.model = m = mujoco.MjModel.from_xml_path(str(xml))
        m.actuator_gainprm[:, 0] *= KP_SCALE
        m.actuator_biasprm[:, 1] *= KP_SCALE
        m.body_gravcomp[:] = 1.0  # the arm's controller holds it against gravity
        self.data = mujoco.MjData(m)
        self.joints = list(arm.names)
        ids = [m.joint(j).id for j in self.joints]
        self.qadr = m.jnt_qposadr[ids]
        self.dadr = m.jnt_dofadr[ids]
        self.act = np.array([int(np.flatnonzero(m.actuator_trnid[:, 0] == i)[0]) for i in ids])
        self.home = m.key("home").qpos[self.qadr].copy()
        self.data.qpos[self.qadr] = self.home
        mujoco.mj_forward(m, self.data)
        self.substeps = round(1.0 / (STATE_HZ * m.opt.timestep))

    def state(self) -> tuple[np.ndarray, np.ndarray]:
        """Joint positions (rad) and velocities (rad/s), MJCF order."""
        return self.data.qpos[self.qadr].copy(), self.data.qvel[self.dadr].copy()

    def step(self, setpoint: np.ndarray) -> None:
        """One joint-state period with the servos at ``setpoint`` (rad)."""
        self.data.ctrl[self.act] = setpoint
        for _ in range(self.substeps):
            mujoco.mj_step(self.model, self.data)


def joint_state(
    T: dict, stamp_ns: int, names: list[str], position: dict[str, float], velocity: dict[str, float]
) -> object:
    """A sensor_msgs/JointState of ``names`` (velocity 0 where not given, effort 0)."""
    sec, nsec = divmod(stamp_ns, 1_000_000_000)
    stamp = T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec)
    return T[JOINT_STATE](
        header=T["std_msgs/msg/Header"](stamp=stamp, frame_id=""),
        name=names,
        position=np.array([position[n] for n in names], dtype=np.float64),
        velocity=np.array([velocity.get(n, 0.0) for n in names], dtype=np.float64),
        effort=np.zeros(len(names)),
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("robot", choices=sorted(ARMS))
    ap.add_argument("out", type=Path, help="bag folder to write (must not exist)")
    ap.add_argument("--storage", choices=sorted(STORAGES), default="mcap")
    ap.add_argument(
        "--distro", choices=sorted(DISTROS), default="jazzy", help="QoS metadata as this distro stores it"
    )
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--no-commands", action="store_true", help="joint states only")
    args = ap.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_bag(args.robot, args.out, args.storage, args.distro, args.seconds, not args.no_commands)
    what = "joint states only" if args.no_commands else f"joint states + {ARMS[args.robot].command_topic}"
    print(f"wrote {args.out}: {args.robot}, {args.seconds:g} s, {what} ({args.storage}, {args.distro})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
