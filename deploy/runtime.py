"""onnxruntime session set up for one CPU core, checked against the contract's tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from sim.contract import PolicyContract


def session_options(threads: int = 1) -> ort.SessionOptions:
    """One thread, sequential execution, all graph optimisations: lowest latency per call."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = threads
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return so


class OnnxPolicy:
    """Runs ``policy.onnx``: ``policy(observation=..., goal=...) -> first output``.

    Inputs are copied into preallocated float32 buffers, so callers may pass float64.
    """

    def __init__(self, path: Path, contract: PolicyContract, threads: int = 1) -> None:
        self.session = ort.InferenceSession(
            str(path), session_options(threads), providers=["CPUExecutionProvider"]
        )
        graph_in = {i.name: i for i in self.session.get_inputs()}
        for spec in contract.inputs:
            if spec.name not in graph_in:
                raise ValueError(f"{path}: graph has no input {spec.name!r} named by the contract")
            shape = tuple(graph_in[spec.name].shape)
            if shape != spec.shape:
                raise ValueError(f"{path}: input {spec.name!r} has shape {shape}, contract says {spec.shape}")
        self.buffers = {s.name: np.zeros(s.shape, dtype=np.float32) for s in contract.inputs}
        self.output_names = [o.name for o in contract.outputs]

    def __call__(self, **inputs: np.ndarray) -> np.ndarray:
        for name, buf in self.buffers.items():
            buf[...] = np.asarray(inputs[name]).reshape(buf.shape)
        return self.session.run(self.output_names[:1], self.buffers)[0][0]
