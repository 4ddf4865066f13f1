"""Offline: runs and analyses away from the robot: spine-run in simulation, replay of a run log,
offline evaluation of a foreign log, sim replay and system identification, logs to datasets, and
their reports. MuJoCo, scipy, matplotlib (the ``[offline]`` extra)."""
