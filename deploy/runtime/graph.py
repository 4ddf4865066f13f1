"""onnxruntime sessions set up for one CPU core, with preallocated, bound inputs and outputs.

A call writes the inputs into float32 buffers that the session's I/O binding already points
at, runs the graph in place, and reads the outputs from buffers that are bound too: no dict
built, no array allocated, no output copied per call (``OnnxGraph.run``). The graph's tensors
are checked against the contract's when the session is made.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from sim.contract import PolicyContract, TensorSpec


def session_options(threads: int = 1) -> ort.SessionOptions:
    """One thread, sequential execution, all graph optimisations: lowest latency per call."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = threads
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return so


class OnnxGraph:
    """One ONNX graph with bound buffers (the contract's dtypes) for its inputs and outputs.

    Args:
        path: the ``.onnx`` file.
        inputs: the contract's inputs (names, shapes with batch 1) in graph order.
        outputs: the contract's outputs.
        threads: onnxruntime intra-op threads (1 on a robot: predictable latency).

    Attributes:
        inputs: name -> preallocated input buffer (write into it, then ``run()``).
        outputs: name -> preallocated output buffer (valid until the next ``run()``).
    """

    def __init__(
        self,
        path: Path | str,
        inputs: tuple[TensorSpec, ...],
        outputs: tuple[TensorSpec, ...],
        threads: int = 1,
    ) -> None:
        self.path = Path(path)
        try:
            self.session = ort.InferenceSession(
                str(path), session_options(threads), providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime raises its own exception types
            raise ValueError(f"{path}: not a loadable ONNX model ({e})") from None
        _check_tensors(self.path, "input", self.session.get_inputs(), inputs)
        _check_tensors(self.path, "output", self.session.get_outputs(), outputs)
        self.inputs = {s.name: np.zeros(s.shape, dtype=s.dtype) for s in inputs}
        self.outputs = {s.name: np.zeros(s.shape, dtype=s.dtype) for s in outputs}
        self.binding = self.session.io_binding()
        for name, buf in self.inputs.items():
            self.binding.bind_cpu_input(name, buf)
        for name, buf in self.outputs.items():
            self.binding.bind_output(name, "cpu", 0, buf.dtype, list(buf.shape), buf.ctypes.data)
        self.first_output = self.outputs[outputs[0].name]

    def run(self) -> None:
        """Run the graph on the bound input buffers into the bound output buffers."""
        self.session.run_with_iobinding(self.binding)


class OnnxPolicy(OnnxGraph):
    """The bundle's ``policy.onnx``: ``policy(observation=..., goal=...) -> first output[0]``.

    Inputs (any float dtype, shaped like one row of the batch, or with the batch axis of 1)
    are copied into the bound float32 buffers. The returned array is a fresh float32 copy,
    shaped like the first output without its batch axis.
    """

    def __init__(
        self,
        path: Path | str,
        contract: PolicyContract,
        threads: int = 1,
        inputs: tuple[TensorSpec, ...] | None = None,
        outputs: tuple[TensorSpec, ...] | None = None,
    ) -> None:
        super().__init__(
            path,
            contract.inputs if inputs is None else inputs,
            contract.outputs if outputs is None else outputs,
            threads,
        )
        self._rows = [(name, buf[0]) for name, buf in self.inputs.items()]

    def __call__(self, **inputs: np.ndarray) -> np.ndarray:
        for name, row in self._rows:
            row[...] = inputs[name]
        self.run()
        return self.first_output[0].copy()


_ORT_TYPES = {"float32": "tensor(float)", "int64": "tensor(int64)"}


def _check_tensors(path: Path, kind: str, graph: list, contract: tuple[TensorSpec, ...]) -> None:
    """The graph's inputs or outputs have the contract's names, order and shapes."""
    names = [t.name for t in graph]
    if names != [t.name for t in contract]:
        raise ValueError(f"{path}: graph {kind}s {names}, contract says {[t.name for t in contract]}")
    for g, spec in zip(graph, contract, strict=True):
        if tuple(g.shape) != spec.shape:
            raise ValueError(
                f"{path}: {kind} {spec.name!r} has shape {tuple(g.shape)}, contract says {spec.shape}"
            )
        if g.type != _ORT_TYPES.get(spec.dtype):
            raise ValueError(f"{path}: {kind} {spec.name!r} is {g.type}, contract says {spec.dtype}")
