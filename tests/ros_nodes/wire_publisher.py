"""Publishes the wire test's messages from its own process, through ``ros_nodes.dds.DdsPort``.

python -m tests.ros_nodes.wire_publisher cdr|idl   (domain and CYCLONEDDS_URI from the test)
"""

from __future__ import annotations

import os
import sys

import numpy as np

from deploy.logs import messages as m
from ros_nodes.dds import DdsPort
from ros_nodes.params import ParameterStore
from ros_nodes.port import QoS
from ros_nodes.topics import JOINT_TRAJECTORY

STAMP = 1_763_700_000_123_456_789
JOINTS = ["joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "joint7"]


def wire_messages() -> dict[str, tuple[str, object]]:
    """topic -> (type, message): the messages both sides build."""
    T = m.T
    q = np.linspace(-1.0, 1.0, 7)
    point = T["trajectory_msgs/msg/JointTrajectoryPoint"](
        positions=q,
        velocities=np.zeros(7),
        accelerations=np.zeros(0),
        effort=np.zeros(0),
        time_from_start=T["builtin_interfaces/msg/Duration"](sec=0, nanosec=40_000_000),
    )
    traj = T[JOINT_TRAJECTORY](header=m.header(STAMP, "base"), joint_names=JOINTS, points=[point, point])
    return {
        "/wire/joint_states": (m.JOINT_STATE, m.joint_state(STAMP, JOINTS, q, -q)),
        "/wire/command": (m.FLOAT64_ARRAY, m.float64_array(q[:5])),  # 5 doubles: odd padding case
        "/wire/trajectory": (JOINT_TRAJECTORY, traj),
    }


def main(wire: str) -> None:
    port = DdsPort("wire_publisher", ParameterStore("wire_publisher"), wire=wire)
    assert port.domain_id == int(os.environ["ROS_DOMAIN_ID"])
    qos = QoS(reliable=True, depth=1, transient_local=True)
    pubs = [(port.publisher(t, ty, qos), msg) for t, (ty, msg) in wire_messages().items()]
    for _ in range(40):  # keep publishing until the test has read them (it kills us)
        for pub, msg in pubs:
            pub.publish(msg)
        port.spin_for(0.25)


if __name__ == "__main__":
    main(sys.argv[1])
