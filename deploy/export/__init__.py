"""Export: a trained checkpoint (or the safety critic) -> ONNX with the contract inside, checked
against torch (numeric and sim parity), optionally int8. The only torch on the robot side; the
``[export]`` extra. Entry point: ``spine-export`` (``deploy.export.app``)."""
