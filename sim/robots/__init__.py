"""Robot models: one folder per robot with its MJCF, a constants module and a physics wrapper."""
