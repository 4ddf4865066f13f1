"""A task's state fields from their topics, for the nodes that run its networks.

The joint states come from ``/joint_states`` (each node reads them itself); the rest of what a
policy or a critic observes comes from:

- ``/spine/goal`` (``geometry_msgs/PointStamped``): the goal, its first ``goal.size`` values (a
  planar goal is published as a point with z = 0); a task without a goal needs none;
- ``/spine/ee_position`` (``PointStamped``): the end effector, when observed;
- ``/spine/observation`` (``std_msgs/Float64MultiArray``): the whole observation, concatenated
  in the spec's field order, for a task with a field no standard topic carries (push's puck,
  dm_control's observations: ``deploy.logs.writer.observation_fields``); its fields take
  precedence over the joint states, as in ``spine-replay``, so the policy sees one snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from deploy.logs.writer import observation_fields
from sim.spec import FieldSpec, TaskSpec


class TaskInputs:
    """The goal, end effector and observation topics of ``spec`` for the fields ``fields``.

    ``wants_goal``, ``wants_ee`` and ``wants_observation`` say which topics to subscribe;
    ``on_goal``, ``on_ee`` and ``on_observation`` are their callbacks (``received_ns``: the
    receipt time the node measured); ``fields(state)`` adds what arrived to a state dict.
    """

    def __init__(self, spec: TaskSpec, fields: Sequence[FieldSpec]) -> None:
        self.goal_name, self.goal_size = spec.goal.name, spec.goal.size
        self.observed = observation_fields(fields)
        names = {f.name for f in fields}
        self.wants_goal = self.goal_size > 0
        self.wants_observation = bool(self.observed)
        self.wants_ee = "ee_pos" in names and not self.observed
        self.obs_size = sum(f.size for f in self.observed)
        self.bounds = np.cumsum([0] + [f.size for f in self.observed])
        self.values: dict[str, np.ndarray] = {} if self.wants_goal else {self.goal_name: np.zeros(0)}
        self.observation: dict[str, np.ndarray] = {}
        self.observation_ns = 0
        self.rejected = 0  # observations of the wrong size

    def on_goal(self, msg: Any) -> None:
        point = np.array([msg.point.x, msg.point.y, msg.point.z])
        self.values[self.goal_name] = point[: self.goal_size]

    def on_ee(self, msg: Any) -> None:
        self.values["ee_pos"] = np.array([msg.point.x, msg.point.y, msg.point.z])

    def on_observation(self, msg: Any, received_ns: int) -> str:
        """Split one observation by field; returns why it was dropped ("" when it was not)."""
        row = np.asarray(msg.data, dtype=np.float64)
        if row.size != self.obs_size:
            self.rejected += 1
            names = [f"{f.name}:{f.size}" for f in self.observed]
            return f"observation of {row.size} values dropped: the task's is {self.obs_size} ({names})"
        b = self.bounds
        self.observation = {f.name: row[b[i] : b[i + 1]] for i, f in enumerate(self.observed)}
        self.observation_ns = received_ns
        return ""

    def missing(self) -> list[str]:
        """Topics nothing has arrived on yet."""
        out = []
        if self.goal_name not in self.values:
            out.append("goal")
        if self.wants_ee and "ee_pos" not in self.values:
            out.append("ee_pos")
        if self.wants_observation and not self.observation:
            out.append("observation")
        return out

    def fields(self, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``state`` (the joint states) with the goal, end effector and observation fields."""
        return {**state, **self.values, **self.observation}
