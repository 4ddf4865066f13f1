"""Safety: the filter that owns the actuator command (the Python reference and the C engine
behind one interface), its limits and kinematics, the YAML safety config, and the learned
critic. numpy + onnxruntime (the ``[safety]`` extra); MuJoCo only to read limits from a model."""
