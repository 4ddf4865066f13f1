"""Scripted experts, by task name: ``EXPERTS[task](env).act(env.state())`` -> action."""

from sim.experts.reach_expert import ReachExpert

EXPERTS: dict[str, type] = {"reach": ReachExpert}

__all__ = ["EXPERTS", "ReachExpert"]
