"""widowx200: the Interbotix WidowX 200 (wx200) arm, MJCF built from the vendor's published kinematics.

``constants`` names everything in ``widowx200.xml``; ``physics.WidowXPhysics`` reads state by name.
"""
