"""Write a run's ticks to a rosbag2 (MCAP by default) with standard messages only.

Per tick, all stamped with the same time:
  /joint_states           sensor_msgs/JointState          measured joint positions, velocities
  /spine/goal             geometry_msgs/PointStamped      the goal
  /spine/ee_position      geometry_msgs/PointStamped      measured end-effector position
  /spine/policy_command   std_msgs/Float64MultiArray      raw policy output (rad)
  /spine/command          std_msgs/Float64MultiArray      safe command sent to the robot (rad)
  /diagnostics            diagnostic_msgs/DiagnosticArray stages that acted, timings, episode
  /spine/observation      std_msgs/Float64MultiArray      the observation fields (only for a task
                          whose observation the topics above do not carry: ``observation_fields``)

The goal is written when the task has one of 2 or 3 values (a planar goal as a point with z = 0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer

from deploy.logs import messages as m
from sim.spec import FieldSpec

if TYPE_CHECKING:  # the logs stage does not need the runtime's onnxruntime
    from deploy.runtime.controller import TickInfo

STORAGE = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
TOPIC_FIELDS = ("joint_pos", "joint_vel", "ee_pos")  # state fields the standard topics carry


def observation_fields(fields: Sequence[FieldSpec]) -> tuple[FieldSpec, ...]:
    """``fields`` when one of them has no topic of its own (a dm_control task's, push's object
    pose): the log then carries the whole observation on ``/spine/observation``; else ()."""
    return tuple(fields) if any(f.name not in TOPIC_FIELDS for f in fields) else ()


class RunLogWriter:
    """Context manager writing one rosbag2 folder at ``path`` (must not exist yet).

    ``goal_field``: the state field holding the goal. ``observation``: fields written, in
    order and concatenated, on ``/spine/observation`` (``observation_fields``; none: no topic).
    """

    def __init__(
        self,
        path: Path,
        joint_names: Sequence[str],
        storage: str = "mcap",
        goal_field: str = "goal",
        observation: Sequence[FieldSpec] = (),
    ) -> None:
        if storage not in STORAGE:
            raise ValueError(f"storage {storage!r}: choose one of {sorted(STORAGE)}")
        self.path = Path(path)
        self.joint_names = list(joint_names)
        self.goal_field, self.observation = goal_field, tuple(observation)
        self.writer = Writer(self.path, version=9, storage_plugin=STORAGE[storage])
        self.writer.open()
        topics = {
            m.TOPIC_JOINT_STATES: m.JOINT_STATE,
            m.TOPIC_GOAL: m.POINT_STAMPED,
            m.TOPIC_EE: m.POINT_STAMPED,
            m.TOPIC_POLICY_CMD: m.FLOAT64_ARRAY,
            m.TOPIC_COMMAND: m.FLOAT64_ARRAY,
            m.TOPIC_DIAGNOSTICS: m.DIAGNOSTICS,
        }
        if self.observation:
            topics[m.TOPIC_OBSERVATION] = m.FLOAT64_ARRAY
        self._label = ",".join(f"{f.name}:{f.size}" for f in self.observation)  # for people
        self.conns = {t: self.writer.add_connection(t, ty, typestore=m.TYPESTORE) for t, ty in topics.items()}

    def _put(self, topic: str, stamp: int, msg: object) -> None:
        self.writer.write(self.conns[topic], stamp, m.serialize(msg))

    def write_tick(self, stamp: int, state: Mapping[str, np.ndarray], info: TickInfo, episode: int) -> None:
        """Record one tick at ``stamp`` (ns)."""
        self._put(
            m.TOPIC_JOINT_STATES,
            stamp,
            m.joint_state(stamp, self.joint_names, state["joint_pos"], state["joint_vel"]),
        )
        goal = np.asarray(state.get(self.goal_field, ()), dtype=np.float64).reshape(-1)
        if goal.size in (2, 3):  # a task without a goal (size 0) has none to write
            self._put(m.TOPIC_GOAL, stamp, m.point_stamped(stamp, goal))
        if self.observation:
            values = [np.asarray(state[f.name], dtype=np.float64).reshape(-1) for f in self.observation]
            self._put(m.TOPIC_OBSERVATION, stamp, m.float64_array(np.concatenate(values), self._label))
        if "ee_pos" in state:  # tasks without an end effector (the point-mass maze) have none
            self._put(m.TOPIC_EE, stamp, m.point_stamped(stamp, state["ee_pos"]))
        if info.policy_command is not None:
            self._put(m.TOPIC_POLICY_CMD, stamp, m.float64_array(info.policy_command))
        self._put(m.TOPIC_COMMAND, stamp, m.float64_array(info.command))
        values = {
            "episode": episode,
            "stages": int(info.stages),
            "policy_ran": int(info.policy_ran),
            "policy_us": f"{info.policy_us:.2f}",
            "filter_us": f"{info.filter_us:.2f}",
            "risk": f"{info.risk:.4f}",  # critic's Q_risk (nan: no critic)
            "critic_choice": info.choice,
        }
        level = 1 if info.stages else 0  # WARN when a stage changed the command
        message = ",".join(info.stages.names()) or "ok"
        self._put(
            m.TOPIC_DIAGNOSTICS,
            stamp,
            m.diagnostics(stamp, m.SAFETY_STATUS, level, message, values),
        )

    def close(self) -> None:
        self.writer.close()

    def __enter__(self) -> RunLogWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
