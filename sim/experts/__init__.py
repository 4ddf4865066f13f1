"""Scripted experts, registered per task with ``@sim.registry.register_expert("task")``;
look one up with ``sim.registry.expert_class(task)``, then ``Expert(env).act(env.state())``."""
