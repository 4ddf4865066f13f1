"""ROS 2 nodes over a small transport port (see docs/ros.md).

Nodes (console scripts): ``spine-policy-node``, ``spine-safety-node``, ``spine-sim-robot``,
``spine-recorder``, and ``spine-stack`` to run them all over Cyclone DDS without ROS.
Transports: ``ros_nodes.dds`` (Cyclone DDS, ROS 2 wire conventions), ``ros_nodes.inprocess``
(unit tests), ``ros_nodes.rclpy_port`` (a ROS 2 install). No torch anywhere here.
"""
