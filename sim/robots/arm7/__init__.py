"""arm7: a 7-joint arm with Franka Panda-like kinematics on a table (MJCF written from scratch).

``constants`` names everything in ``arm7.xml``; ``physics.Arm7Physics`` reads state by name.
"""
