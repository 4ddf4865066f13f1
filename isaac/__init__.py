"""Spine's reach task on Isaac Lab 3 (kit-less, Newton physics) and back: docs/isaac.md.

Two environments use this package, and it imports neither's libraries at the top:

- the Isaac Lab environment (``.venv-isaac``, Python 3.12: ``./spine.sh setup-isaac``):
  ``isaac.register`` (the gym ids), ``isaac.reach_env`` (the task), ``isaac.robots`` (Spine's arm
  as an articulation), ``isaac.agents`` (rsl_rl's settings), ``isaac.train``, ``isaac.check``;
- Spine's environment (``.venv``): ``isaac.import_policy`` (an Isaac Lab run -> a ``ppo``
  checkpoint for ``spine-export``).

Spine's own packages (``sim``, ``policies``, ``deploy``, ``ros_nodes``) never import it.
"""
