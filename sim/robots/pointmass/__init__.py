"""pointmass: a sphere on two slide joints (x, y) with position servos, in a maze of wall blocks.

``layouts`` parses the maze maps (no MuJoCo), ``model`` writes the MJCF for a layout,
``constants`` names everything in it and ``physics.PointMassPhysics`` reads state by name.
"""
