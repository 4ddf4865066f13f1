"""Regenerate ``widowx_golden.bag`` and ``widowx_golden.json`` (see README.md beside this file).

    .venv/bin/python tests/artifacts/make_golden_log.py

A ROS 1 bag laid out like the Interbotix SDK's (the real WidowX log's topics and custom message
types), recorded from Spine's WidowX 200 model with KNOWN dynamics: servo gain x0.5 and joint
damping x3 of the MJCF's (``TRUE_PARAMS``), so system identification can be checked against them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from rosbags.rosbag1 import Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parents[1]))

from deploy.logs.mapped import read_mapped  # noqa: E402
from deploy.logs.mapping import load_mapping  # noqa: E402
from deploy.logs.resample import resample  # noqa: E402
from deploy.offline.sim_replay import ParamModel, SimParams  # noqa: E402
from sim.robots.widowx200 import constants as c  # noqa: E402
from sim.robots.widowx200.physics import WidowXPhysics  # noqa: E402

BAG = HERE / "widowx_golden.bag"
EXPECTED = HERE / "widowx_golden.json"
MAPPING = HERE.parents[1] / "configs" / "replay" / "widowx200.yaml"
TRUE_PARAMS = SimParams(kp_scale=0.5, damping_scale=3.0, frictionloss_scale=1.0)
SINGLE = "interbotix_xs_sdk/msg/JointSingleCommand"
TEMPS = "interbotix_xsarm_diagnostic_tool/msg/JointTemps"
NAMES = [*c.JOINT_NAMES, "gripper", "left_finger", "right_finger"]
T0 = 1_600_000_000_000_000_000  # ns
DURATION_S, STATE_HZ, COMMAND_HZ = 6.0, 100, 10
START_Q = np.array([0.0, -1.1, 0.6, 1.3, 0.0])


def waist_target(t: float) -> float:
    """A chirp: the waist sweeps faster and faster (rad)."""
    return 1.2 * np.sin(2 * np.pi * (0.2 * t + 0.04 * t * t))


def main() -> None:
    ts = get_typestore(Stores.ROS1_NOETIC)
    ts.register(get_types_from_msg("string name\nfloat32 cmd\n", SINGLE))
    ts.register(get_types_from_msg("string[] names\nint32[] temps\n", TEMPS))
    T = ts.types
    physics = WidowXPhysics()
    ParamModel(physics.model).apply(TRUE_PARAMS)
    physics.set_joint_state(START_Q, np.zeros(5))
    target = START_Q.copy()
    physics.set_targets(target)
    substeps = round(1 / (STATE_HZ * physics.timestep))
    per_command = STATE_HZ // COMMAND_HZ
    if BAG.exists():
        BAG.unlink()
    with Writer(BAG) as w:
        js = w.add_connection("/wx200/joint_states", "sensor_msgs/msg/JointState", typestore=ts)
        cmd = w.add_connection("/wx200/commands/joint_single", SINGLE, typestore=ts)
        temps = w.add_connection("/wx200/temperatures/joint_group", TEMPS, typestore=ts)

        def put(conn, t_ns: int, msg) -> None:
            w.write(conn, t_ns, ts.serialize_ros1(msg, msg.__msgtype__))

        for i in range(int(DURATION_S * STATE_HZ) + 1):
            t_s = i / STATE_HZ
            stamp = T0 + i * 10_000_000
            if i >= 30 and i % per_command == 0:  # commands start at 0.3 s, at 10 Hz
                target[0] = waist_target(t_s)
                physics.set_targets(target)
                put(cmd, stamp, T[SINGLE](name="waist", cmd=np.float32(target[0])))
            if i == 40:  # a command for a joint Spine does not drive: reported, not used
                put(cmd, stamp, T[SINGLE](name="gripper", cmd=np.float32(0.5)))
            if i % 200 == 0:
                put(
                    temps,
                    stamp,
                    T[TEMPS](names=list(c.JOINT_NAMES), temps=np.array([41, 33, 31, 31, 39], np.int32)),
                )
            q, qd = physics.joint_pos(), physics.joint_vel()
            # defects, all after 5.5 s: a duplicated stamp (i=560), a stamp that goes back (i=570)
            # and a 0.2 s hole in the joint states (i=580..599)
            if not 580 <= i < 600:
                header_stamp = stamp - (10_000_000 if i == 560 else 0) - (15_000_000 if i == 570 else 0)
                sec, nsec = divmod(header_stamp, 1_000_000_000)
                header = T["std_msgs/msg/Header"](
                    seq=i, stamp=T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec), frame_id=""
                )
                msg = T["sensor_msgs/msg/JointState"](
                    header=header,
                    name=NAMES,
                    position=np.r_[q, 0.84, 0.03, -0.03],
                    velocity=np.r_[qd, 0.0, 0.0, 0.0],
                    effort=np.zeros(len(NAMES)),
                )
                put(js, stamp, msg)
            physics.step(substeps)
    _write_expected()


def _write_expected() -> None:
    """What the reader must find in the bag (checked by tests/deploy/test_log_golden.py)."""
    import sim

    spec = sim.make("widowx_reach").task_spec
    mapping = load_mapping(MAPPING)
    log = read_mapped(BAG, mapping, spec.joint_names, spec.joint_pos_min, spec.joint_pos_max)
    ticks = resample(log, 25.0, mapping.resample.max_gap_s)
    expected = {
        "true_params": TRUE_PARAMS.to_dict(),
        "joint_states": len(log.joint_pos),
        "stamps": {t: s.to_dict() for t, s in log.stamps.items()},
        "commanded": log.commanded.tolist(),
        "skipped": log.skipped,
        "ticks_25hz": len(ticks),
        "gaps_s": ticks.gaps(),
        "joint_pos_first": log.joint_pos.values[0].tolist(),
        "joint_pos_last": log.joint_pos.values[-1].tolist(),
        "ticks_joint_pos_sum": float(ticks.joint_pos.sum()),
        "ticks_command_sum": float(ticks.command.sum()),
    }
    EXPECTED.write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
