"""From torch's ONNX exporter (``torch.onnx.export(..., dynamo=True)``) to a bundle's graph.

``finish`` takes the exporter's program (ops at opset ``EXPORTER_OPSET``, 18, not yet
optimized) through five steps, none of which knows a policy family:

1. **Down to the contract's opset** (17 by default) with onnx's version converter, before the
   optimizer: the converter has no 18 -> 17 adapter for ``Split``, which the optimizer makes
   out of the exporter's ``SplitToSequence`` (a diffusion twin's per-step biases). First the
   constant nodes become initializers (``fold_constant_nodes``: the converter reads ReduceL2's
   ``axes`` from an initializer only, and the exporter computes it by a Reshape of a Constant)
   and attributes holding their default are dropped (``drop_default_attributes``: the converter
   keeps ReduceL2's opset-18 ``noop_with_empty_axes``, which opset 17 rejects). HIQL's
   ``unit_scale`` needs both.
2. **The exporter's optimizer** (``ONNXProgram.optimize``: constant folding, dead nodes,
   duplicate initializers, common subexpressions). It writes one opset-18 construct whatever
   the graph's opset: a ``SplitToSequence`` into equal chunks (a U-Net denoiser's) becomes a
   ``Split`` with ``num_outputs``, which ``split_sizes_as_input`` turns into a sizes input.
3. **GELU in the form onnxruntime fuses**: torchlib writes the exact GELU as
   ``x * (0.5 * (erf(x / sqrt 2) + 1))``, while onnxruntime's GeluFusion matches only
   ``(x * (erf(x / sqrt 2) + 1)) * 0.5`` or ``(0.5 x) * (erf(x / sqrt 2) + 1)``: every GELU ran
   as five nodes (Div, Erf, Add, Mul, Mul) instead of one ``Gelu``. ``gelu_for_onnxruntime``
   moves the 0.5 to the end; a product with 0.5 is exact in float, so the values are unchanged.
4. **No per-node debug metadata** (the exporter's stack traces, with the exporting machine's
   paths, left at opset 18 and above): a graph is the same wherever it was exported.
5. **onnx's checker**, with shape inference.
"""

from __future__ import annotations

import math
from typing import Any

EXPORTER_OPSET = 18  # torch.onnx._internal.exporter._constants.TORCHLIB_OPSET in torch 2.13
GELU_CONSTANTS = (math.sqrt(2.0), 1.0, 0.5)  # the Div, the Add and the Mul of the exact GELU
RANDOM_OPS = (
    "RandomNormal",
    "RandomNormalLike",
    "RandomUniform",
    "RandomUniformLike",
    "Multinomial",
    "Bernoulli",
)


def finish(program: Any, opset: int) -> Any:
    """The ``onnx.ModelProto`` of ``program`` (a ``torch.onnx.ONNXProgram`` exported at
    ``EXPORTER_OPSET`` with ``optimize=False``): at ``opset``, optimized, GELU fusable, checked."""
    import onnx

    if opset < EXPORTER_OPSET:
        program.model = to_opset(program.model, opset)
    program.optimize()
    if opset < EXPORTER_OPSET:
        split_sizes_as_input(program.model)
    model = gelu_for_onnxruntime(program.model_proto)
    for node in model.graph.node:  # the exporter's stack traces: paths of the exporting machine
        del node.metadata_props[:]
    onnx.checker.check_model(model, full_check=True)
    return model


def to_opset(model: Any, opset: int) -> Any:
    """``model`` (an ``onnx_ir.Model``) converted down to the default-domain ``opset`` by onnx's
    version converter, after ``fold_constant_nodes`` and ``drop_default_attributes``."""
    import onnx
    import onnx_ir as ir

    proto = ir.serde.serialize_model(model)
    fold_constant_nodes(proto)
    drop_default_attributes(proto)
    try:
        return ir.serde.deserialize_model(onnx.version_converter.convert_version(proto, opset))
    except RuntimeError as e:  # e.g. LayerNormalization has no version below 17
        raise ValueError(
            f"onnx cannot take the exported graph from opset {EXPORTER_OPSET} to {opset}: {e}"
        ) from None


def fold_constant_nodes(model: Any) -> None:
    """Replace, in place, every node of ``model``'s graph (an ``onnx.ModelProto``) whose inputs
    are all constant (initializers, or outputs of nodes folded before it; a Constant node has
    none) by initializers holding its outputs, computed by onnx's reference evaluator. Random
    ops, other domains and nodes that make a graph output are kept."""
    import numpy as np
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    graph = model.graph
    opsets = {o.domain: o.version for o in model.opset_import}
    known = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    graph_outputs = {o.name for o in graph.output}
    kept = []
    for node in graph.node:
        inputs = [name for name in node.input if name]  # "" is an omitted optional input
        foldable = (
            node.domain in ("", "ai.onnx")
            and node.op_type not in RANDOM_OPS
            and (inputs or node.op_type == "Constant")
            and all(name in known for name in inputs)
            and not graph_outputs & set(node.output)
        )
        if not foldable:
            kept.append(node)
            continue
        values = ReferenceEvaluator(node, opsets=opsets).run(None, {name: known[name] for name in inputs})
        for name, value in zip(node.output, values, strict=True):
            known[name] = np.asarray(value)
            graph.initializer.append(numpy_helper.from_array(known[name], name))
    del graph.node[:]
    graph.node.extend(kept)


def split_sizes_as_input(model: Any) -> None:
    """Give, in place, every ``Split`` of ``model`` (an ``onnx_ir.Model``) that has opset 18's
    ``num_outputs`` attribute its chunk sizes as the ``split`` input instead (opset 13-17)."""
    import numpy as np
    import onnx_ir as ir

    for node in model.graph.all_nodes():
        n = node.attributes.get_int("num_outputs") if node.op_type == "Split" else None
        if n is None:
            continue
        dim = node.inputs[0].shape[node.attributes.get_int("axis", 0)]
        if not isinstance(dim, int):
            raise ValueError(f"{node.name}: Split of a dynamic dimension into {n} cannot go below opset 18")
        size = -(-dim // n)  # opset 18: chunks of ceil(dim / n), the last one smaller
        sizes = ir.Value(
            name=f"{node.name}_split_sizes",
            const_value=ir.tensor(np.array([size] * (n - 1) + [dim - size * (n - 1)], np.int64)),
        )
        model.graph.register_initializer(sizes)
        node.resize_inputs(2)
        node.replace_input_with(1, sizes)
        node.attributes.pop("num_outputs")


def drop_default_attributes(model: Any) -> None:
    """Remove, in place, every node attribute of ``model`` (an ``onnx.ModelProto``) whose value
    is the default of its op's schema (which means the same)."""
    import onnx

    opsets = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    for node in model.graph.node:
        try:
            schema = onnx.defs.get_schema(node.op_type, opsets[node.domain or "ai.onnx"], node.domain)
        except (KeyError, onnx.defs.SchemaError):  # an op onnx does not know: left alone
            continue
        keep = []
        for attr in node.attribute:
            spec = schema.attributes.get(attr.name)
            default = None if spec is None else spec.default_value
            if default is None or default.type != attr.type or _value(default) != _value(attr):
                keep.append(attr)
        if len(keep) < len(node.attribute):
            del node.attribute[:]
            node.attribute.extend(keep)


def _value(attr: Any) -> Any:
    import onnx

    value = onnx.helper.get_attribute_value(attr)
    return list(value) if isinstance(value, (list, tuple)) else value


def _gelu_torchlib(op: Any, x: Any, sqrt2: Any, one: Any, half: Any) -> Any:
    return op.Mul(x, op.Mul(half, op.Add(op.Erf(op.Div(x, sqrt2)), one)))


def _gelu_fusable(op: Any, x: Any, sqrt2: Any, one: Any, half: Any) -> Any:
    return op.Mul(op.Mul(x, op.Add(op.Erf(op.Div(x, sqrt2)), one)), half)


def _is_gelu(context: Any, x: Any, sqrt2: Any, one: Any, half: Any, **_: Any) -> bool:
    """The three operands are scalar constants holding the exact GELU's values."""
    values = [v.const_value for v in (sqrt2, one, half)]
    if any(v is None or v.size != 1 for v in values):
        return False
    return all(
        math.isclose(float(v.numpy().reshape(-1)[0]), want, rel_tol=1e-6)
        for v, want in zip(values, GELU_CONSTANTS, strict=True)
    )


def gelu_for_onnxruntime(model: Any) -> Any:
    """``model`` (an ``onnx.ModelProto``) with every torchlib GELU rewritten into the form
    onnxruntime fuses into one ``Gelu`` node (onnxscript's pattern rewriter); a new ``ModelProto``."""
    from onnxscript.rewriter import pattern, rewrite

    rule = pattern.RewriteRule(_gelu_torchlib, _gelu_fusable, _is_gelu)
    return rewrite(model, pattern_rewrite_rules=[rule])
