"""A two-joint task spec without physics, for tests of what runs on top of a spec (the
executors, the diffusion toy): joints ``a``, ``b`` in [-1, 1] rad, a 1-D goal, 10 Hz."""

from sim.spec import ActionSpec, FieldSpec, TaskSpec

TOY_SPEC = TaskSpec(
    name="toy", robot="toy", joint_names=("a", "b"), joint_pos_min=(-1.0, -1.0), joint_pos_max=(1.0, 1.0),
    joint_vel_max=(1.0, 1.0), observation=(FieldSpec("joint_pos", 2, "rad"),), goal=FieldSpec("goal", 1, "m"),
    action=ActionSpec("joint_position", "rad", (0.5, 0.5)), control_hz=10.0, physics_hz=100.0,
    episode_steps=8, success_threshold=0.1,
)  # fmt: skip
