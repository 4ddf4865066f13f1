"""ROS 2 launch file for Spine's nodes on a machine with ROS 2 (rclpy):

    ros2 launch launch/spine.launch.py [params_file:=configs/ros/stack.yaml] [sim:=true] [record:=true]

Starts one process per rate, each on rclpy (``--transport rclpy``): the policy node (the
contract's rate), the safety node (500-1000 Hz, owning the command topic) and, unless turned
off, the MuJoCo sim robot and the recorder. The parameter file is ROS 2's format, the same one
``spine-stack`` uses over Cyclone DDS without ROS. On a real robot: ``sim:=false`` and point
``command_topic`` at the forward_command_controller (``/forward_position_controller/commands``).
Spine's console scripts must be on PATH (``pip install -e .[ros]`` in ROS 2's Python).

Security: ``keystore:=/path/to/keystore`` (``spine-keystore create``) runs every node with its
own enclave (``--enclave /spine/safety`` ...) under ``ROS_SECURITY_ENABLE=true`` and
``ROS_SECURITY_STRATEGY=Enforce``, as SROS2 does; without it the nodes warn that anyone on the
domain can command the robot (docs/security.md). Not run here: no ROS 2 on our machines.
"""

from pathlib import Path

from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PythonExpression

from launch import LaunchDescription

REPO = Path(__file__).resolve().parents[1]
NODES = (  # (console script, node name, launch argument that turns it on or None, enclave)
    ("spine-recorder", "spine_recorder", "record", "/spine/recorder"),
    ("spine-sim-robot", "spine_sim_robot", "sim", "/spine/sim_robot"),
    ("spine-safety-node", "spine_safety", None, "/spine/safety"),
    ("spine-policy-node", "spine_policy", None, "/spine/policy"),
)


def ros_args(name: str) -> list[str]:
    return ["-r", f"__node:={name}", "--params-file"]


def generate_launch_description() -> LaunchDescription:
    params = LaunchConfiguration("params_file")
    keystore = LaunchConfiguration("keystore")
    actions = [
        DeclareLaunchArgument("params_file", default_value=str(REPO / "configs/ros/stack.yaml")),
        DeclareLaunchArgument("sim", default_value="true", description="run the MuJoCo sim robot"),
        DeclareLaunchArgument("record", default_value="true", description="record every topic (MCAP)"),
        DeclareLaunchArgument(
            "keystore", default_value="", description="DDS Security keystore (empty: none)"
        ),
    ]
    secure = PythonExpression(["'true' if '", keystore, "' else 'false'"])
    env = {
        "ROS_SECURITY_ENABLE": secure,
        "ROS_SECURITY_STRATEGY": "Enforce",
        "ROS_SECURITY_KEYSTORE": keystore,
    }
    for script, name, switch, enclave in NODES:
        actions.append(
            ExecuteProcess(
                cmd=[
                    script,
                    "--transport",
                    "rclpy",
                    "--ros-args",
                    "--enclave",
                    enclave,
                    *ros_args(name),
                    params,
                ],
                name=name,
                output="screen",
                cwd=str(REPO),
                additional_env=env,
                condition=IfCondition(LaunchConfiguration(switch)) if switch else None,
            )
        )
    return LaunchDescription(actions)
