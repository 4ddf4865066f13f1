"""WidowX reach expert: the reach expert's damped least-squares IK on the WidowX 200 (5 joints);
HOME, joint limits and the Jacobian come from the WidowX env. It also lets ``spine-train-critic``
build its expert + adversary data on the WidowX."""

from __future__ import annotations

from sim.experts.reach_expert import ReachExpert
from sim.registry import register_expert


@register_expert("widowx_reach")
class WidowXReachExpert(ReachExpert):
    """:class:`ReachExpert` on ``widowx_reach`` (same gains and Cartesian step)."""
