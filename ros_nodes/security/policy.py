"""Who may publish and subscribe what: Spine's permissions table, one enclave per node.

The point of it: only the safety node writes the robot command, only the policy node the
policy command, and only the operator raises or releases the e-stop. Topic names are ROS names
(``/spine/command``); the permissions documents carry their DDS names (``rt/spine/command``).
Every enclave may also use ``ros_discovery_info`` (as SROS2 grants it for rmw_cyclonedds and the
other rmws that publish the ROS graph) and, so the same enclave works for a node run by rclpy,
``/rosout`` and ``/parameter_events``. Parameter services (``rq/``, ``rr/``) are not granted:
Spine's nodes take their parameters at start and serve none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deploy.logs import messages as m
from ros_nodes.security import documents
from ros_nodes.security.keystore import create_enclave, create_keystore, enclave_dir, is_keystore
from ros_nodes.topics import TOPIC_ESTOP

ROS_DISCOVERY = "ros_discovery_info"
ROS_NODE_PUBLISH = ("/rosout", "/parameter_events")
ROS_NODE_SUBSCRIBE = ("/parameter_events",)


@dataclass(frozen=True)
class Grant:
    """What one enclave may do: ROS topic names (or fnmatch patterns such as ``/*``)."""

    enclave: str
    publish: tuple[str, ...] = ()
    subscribe: tuple[str, ...] = ()
    node: str | None = None
    """The Spine node that runs with this enclave, if any."""
    ros_node: bool = field(default=True)
    """Also grant what any ROS 2 node uses (``/rosout``, ``/parameter_events``)."""

    def dds_publish(self) -> list[str]:
        """DDS topic names this enclave may write."""
        extra = ROS_NODE_PUBLISH if self.ros_node else ()
        return [*(dds_topic(t) for t in (*self.publish, *extra)), ROS_DISCOVERY]

    def dds_subscribe(self) -> list[str]:
        """DDS topic names this enclave may read."""
        extra = ROS_NODE_SUBSCRIBE if self.ros_node else ()
        return [*(dds_topic(t) for t in (*self.subscribe, *extra)), ROS_DISCOVERY]


OPERATOR = "/spine/operator"


def dds_topic(topic: str) -> str:
    """ROS topic name (or pattern) -> DDS topic name: ``/spine/command`` -> ``rt/spine/command``
    (as ``ros_nodes.dds.dds_topic``; here without importing cyclonedds)."""
    if not topic.startswith("/"):
        raise ValueError(f"topic {topic!r}: use an absolute ROS 2 name starting with '/'")
    return "rt" + topic


def spine_grants(command_topic: str = m.TOPIC_COMMAND) -> list[Grant]:
    """The enclaves of Spine's nodes and of the e-stop operator.

    ``command_topic``: the robot command topic (ROS name) when it is remapped, e.g. to
    ``/forward_position_controller/commands``."""
    cmd, policy, js, ee, goal, obs = (
        command_topic,
        m.TOPIC_POLICY_CMD,
        m.TOPIC_JOINT_STATES,
        m.TOPIC_EE,
        m.TOPIC_GOAL,
        m.TOPIC_OBSERVATION,  # tasks whose observed fields have no topic of their own
    )
    diag = m.TOPIC_DIAGNOSTICS
    return [
        Grant("/spine/safety", (cmd, diag), (js, policy, TOPIC_ESTOP, ee, obs), node="spine_safety"),
        Grant("/spine/policy", (policy,), (js, goal, ee, obs), node="spine_policy"),
        Grant("/spine/sim_robot", (js, ee, goal, obs, diag), (cmd, policy), node="spine_sim_robot"),
        Grant("/spine/recorder", (), ("/*",), node="spine_recorder"),
        Grant(OPERATOR, (TOPIC_ESTOP,), (diag,)),
    ]


def grant_for_node(node: str, grants: Sequence[Grant] | None = None) -> Grant:
    """The grant of Spine node ``node`` (``spine_safety`` ...)."""
    for g in grants if grants is not None else spine_grants():
        if g.node == node:
            return g
    raise KeyError(f"no enclave for node {node!r} in Spine's permissions table")


def node_enclave(keystore: Path, node: str) -> Path:
    """The enclave folder Spine node ``node`` (``spine_safety`` ...) runs with, in ``keystore``."""
    return enclave_dir(Path(keystore), grant_for_node(node).enclave)


def make_grant(keystore: Path, grant: Grant, domains: tuple[int, int] = documents.DOMAINS) -> Path:
    """Make (or remake) ``grant``'s enclave in ``keystore``; returns its folder."""
    return create_enclave(Path(keystore), grant.enclave, grant.dds_publish(), grant.dds_subscribe(), domains)


def create_spine_keystore(
    keystore: Path,
    command_topic: str = m.TOPIC_COMMAND,
    domains: tuple[int, int] = documents.DOMAINS,
) -> list[Path]:
    """A keystore at ``keystore`` (made unless it is one already) with the enclaves of
    ``spine_grants(command_topic)``; returns their folders."""
    keystore = Path(keystore)
    if not is_keystore(keystore):
        create_keystore(keystore, domains)
    return [make_grant(keystore, g, domains) for g in spine_grants(command_topic)]
