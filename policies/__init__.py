"""Policies (torch): networks, the normalizer, policy families, trainers, checkpoints.

Families register with ``@register_policy("name", config=ConfigClass)`` so outside packages
can add their own without editing Spine.
"""

from policies.registry import make_policy, policy_names, register_policy

__all__ = ["make_policy", "policy_names", "register_policy"]
