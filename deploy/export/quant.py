"""int8 dynamic quantization of an exported graph (onnxruntime's ``quantize_dynamic``).

Weights become int8 and activations are quantized per call, one scale per tensor. The export
twins fold the input normalizers into the first layer, so that layer sees the raw
``[observation, goal]``, whose features differ in range by orders of magnitude (and a diffusion
twin's first Gemm also copies the joint positions ``q`` into the decode): one int8 scale for all
of them would cost far more precision than the int8 weights of the hidden layers. The first
layers (every Gemm or MatMul fed by a graph input, directly or through a Concat, Flatten or
Reshape of graph inputs) therefore stay float32; they are small, so the speed-up is kept.
"""

from __future__ import annotations

from pathlib import Path

INPUT_PLUMBING = ("Concat", "Flatten", "Reshape")  # ops that only rearrange graph inputs
MATMULS = ("Gemm", "MatMul")


def first_layer_nodes(model: object) -> list[str]:
    """Names of the Gemm/MatMul nodes of ``model`` (an ``onnx.ModelProto``) whose first operand
    is a graph input or a rearrangement of graph inputs only."""
    graph = model.graph  # type: ignore[attr-defined]
    raw = {i.name for i in graph.input}
    for node in graph.node:  # nodes are topologically sorted
        data = node.input if node.op_type == "Concat" else node.input[:1]  # Reshape's shape is not data
        if node.op_type in INPUT_PLUMBING and all(name in raw for name in data):
            raw.update(node.output)
    names = [n.name for n in graph.node if n.op_type in MATMULS and n.input[0] in raw]
    return names + [f"{name}_MatMul" for name in names]  # the quantizer first rewrites Gemm as MatMul + Add


def quantize_int8(src: Path, dst: Path) -> Path:
    """Write ``src``'s int8 dynamic quantization to ``dst`` (first layers kept float32)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    keep = first_layer_nodes(onnx.load(str(src)))
    quantize_dynamic(
        str(src),
        str(dst),
        weight_type=QuantType.QInt8,
        nodes_to_exclude=keep,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},  # Gemm outputs lack shape info
    )
    return dst
