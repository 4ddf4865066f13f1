"""Safety: the filter that owns the actuator command (the numpy reference ``filter.py`` and the C
engine ``native_filter.py`` behind one interface, ``interface.py``; ``engines.make_filter``
picks one), its limits and kinematics, the YAML safety config, and the learned critic
(onnxruntime and C engines, ``engines.load_critic``). numpy + onnxruntime (the ``[safety]``
extra); MuJoCo only to read limits from a model."""
