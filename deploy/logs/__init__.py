"""Logs: ROS message types, reading rosbag2 (sqlite3, MCAP) and ROS 1 bags, mapping a foreign
log's topics onto a task, salvaging damaged files, resampling, and writing Spine's run logs.
rosbags + mcap (the ``[logs]`` extra)."""
