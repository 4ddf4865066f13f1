"""ROS 2 nodes over a small transport port (rclpy, Cyclone DDS, in-process): see issue 7."""
