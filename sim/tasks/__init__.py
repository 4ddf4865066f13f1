"""Tasks: Gymnasium goal-envs registered with ``@sim.register``; build them with ``sim.make``."""
