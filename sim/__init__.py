"""Simulation: MuJoCo tasks, robot models, scripted experts, dataset collection.

Importing ``sim`` (or ``sim.spec``, ``sim.observation``, ``sim.contract``) does not import
MuJoCo, so the robot-side runtime can use the specs without a physics engine.
"""

from sim.make_vec import make_vec
from sim.registry import expert_class, make, names, register, register_expert

__all__ = ["expert_class", "make", "make_vec", "names", "register", "register_expert"]
