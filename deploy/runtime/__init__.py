"""Runtime: load a bundle (contract and hash checked), run its graphs in onnxruntime, execute
chunks and subgoals, and the Controller that ties policy, critic and safety filter together at
the control rate. numpy + onnxruntime (the ``[runtime]`` extra); no torch, no MuJoCo."""
