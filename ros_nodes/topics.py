"""Topic names, message types and small message helpers shared by the nodes.

Topic names of ``deploy.logs.messages`` (the run log's) plus the e-stop; standard types only.

QoS per topic (``ros_nodes.port`` profiles; the table with each standard peer's source is in
docs/ros.md "Topics and QoS"):

- ``/joint_states``: read ``SENSOR_DATA`` (serves joint_state_broadcaster's reliable writer and
  any best-effort one); the sim robot writes ``SYSTEM_DEFAULT`` as joint_state_broadcaster does,
  which robot_state_publisher (``SensorDataQoS``) reads;
- the command topic (``Float64MultiArray`` for forward_command_controller, ``JointTrajectory``
  for joint_trajectory_controller): ``SYSTEM_DEFAULT`` (reliable) plus a deadline, because
  both controllers subscribe with ``SystemDefaultsQoS`` and never match a best-effort writer;
- e-stop and goal readers: ``DEFAULT`` (reliable, volatile), which ``ros2 topic pub`` (reliable,
  volatile, keep last 10) reaches; a transient-local reader never matches it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from deploy.logs import messages as m

BOOL = "std_msgs/msg/Bool"
JOINT_TRAJECTORY = "trajectory_msgs/msg/JointTrajectory"
TOPIC_ESTOP = "/spine/estop"  # std_msgs/Bool, true engages; read reliable + volatile (ros2 topic pub)
SAFETY_STATUS = m.SAFETY_STATUS
SIM_STATUS = "spine/sim_robot"


def bool_msg(value: bool) -> Any:
    return m.T[BOOL](data=bool(value))


class JointOrder:
    """Reorders a JointState's arrays into ``joint_names`` order (matched by name, cached)."""

    def __init__(self, joint_names: Sequence[str]) -> None:
        self.joint_names = list(joint_names)
        self._names: list[str] | None = None
        self._index: np.ndarray | None = None

    def __call__(self, msg: Any) -> tuple[np.ndarray, np.ndarray]:
        """(positions (rad), velocities (rad/s)) in our order; NaN where the message lacks them."""
        if msg.name != self._names:
            where = {n: i for i, n in enumerate(msg.name)}
            missing = [n for n in self.joint_names if n not in where]
            if missing:
                raise ValueError(f"joint_states lacks joint(s) {missing} (has {list(msg.name)})")
            self._names = list(msg.name)
            self._index = np.array([where[n] for n in self.joint_names])
        idx = self._index
        pos = np.asarray(msg.position, dtype=np.float64)
        vel = np.asarray(msg.velocity, dtype=np.float64)
        q = pos[idx] if pos.size == len(msg.name) else np.full(idx.size, np.nan)
        qd = vel[idx] if vel.size == len(msg.name) else np.zeros(idx.size)
        return q, qd


def diagnostic(port: Any, name: str, level: int, message: str, values: dict[str, object]) -> Any:
    return m.diagnostics(port.now_ns(), name, level, message, values)
