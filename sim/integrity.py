"""Integrity of exported graphs: every ONNX file Spine writes (policy, high level, critic)
carries the SHA-256 of the whole model (nodes, weights, opsets, the contract and every other
metadata entry) in ``metadata_props``, and every loader recomputes it and refuses a file that
does not match, naming the file. It sits beside ``sim.contract`` (the hash is part of a model's
contract) because the exporters (torch) and the loaders (no torch) both use it.

The hash covers the ``ModelProto`` serialized deterministically without its own entry. This
detects corruption and edits (a
flipped byte in a weight, a graph swapped in), not a deliberate forger who rewrites the hash
too: keep bundles on storage only their owner can write, and sign them for that.

    python -m sim.integrity stamp runs/bundle/policy.onnx   # (re)stamp a graph you trust
    python -m sim.integrity check runs/bundle/policy.onnx
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

GRAPH_HASH_KEY = "spine.graph_sha256"


def graph_sha256(model: Any) -> str:
    """SHA-256 (hex) of an ``onnx.ModelProto`` without its ``GRAPH_HASH_KEY`` entry: graph
    (nodes, initializers, inputs, outputs), opsets and the other metadata."""
    import onnx

    bare = onnx.ModelProto()
    bare.CopyFrom(model)
    keep = [(p.key, p.value) for p in bare.metadata_props if p.key != GRAPH_HASH_KEY]
    del bare.metadata_props[:]
    for key, value in keep:
        entry = bare.metadata_props.add()
        entry.key, entry.value = key, value
    return hashlib.sha256(bare.SerializeToString(deterministic=True)).hexdigest()


def stamp(model: Any) -> str:
    """Record the model's hash in ``model``'s ``metadata_props`` (replacing an older one)."""
    digest = graph_sha256(model)
    keep = [(p.key, p.value) for p in model.metadata_props if p.key != GRAPH_HASH_KEY]
    del model.metadata_props[:]
    for key, value in [*keep, (GRAPH_HASH_KEY, digest)]:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return digest


def verify(path: Path | str) -> str:
    """Recompute ``path``'s graph hash and compare it with the recorded one; returns it.

    Raises:
        ValueError: the file does not parse, records no hash, or its graph differs from it.
    """
    import onnx

    path = Path(path)
    try:
        model = onnx.load(str(path))
    except Exception as e:  # protobuf's DecodeError and friends
        raise ValueError(f"{path}: not a readable ONNX file ({type(e).__name__}: {e})") from None
    recorded = {p.key: p.value for p in model.metadata_props}.get(GRAPH_HASH_KEY)
    if not recorded:
        raise ValueError(
            f"{path}: records no {GRAPH_HASH_KEY!r} in metadata_props, so its weights cannot be "
            "checked; export it again with this version (spine-export / spine-train-critic)"
        )
    actual = graph_sha256(model)
    if actual != recorded:
        raise ValueError(
            f"{path}: model hash {actual[:16]} does not match the recorded {recorded[:16]}: the file's "
            "weights, nodes or metadata were changed or corrupted after export; refusing to load it"
        )
    return actual


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or args[0] not in ("stamp", "check"):
        print("usage: python -m sim.integrity {stamp|check} FILE.onnx [...]", file=sys.stderr)
        return 2
    import onnx

    for name in args[1:]:
        try:
            if args[0] == "check":
                print(f"{name}: ok {verify(name)[:16]}")
            else:
                model = onnx.load(name)
                print(f"{name}: stamped {stamp(model)[:16]}")
                onnx.save(model, name)
        except (ValueError, OSError) as e:
            print(f"{e}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
