"""A bundle whose files were changed after export is refused, naming the file: the model
hash in ``metadata_props`` (sim.integrity) is recomputed by every loader."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from deploy.runtime.bundle import POLICY_FILE, load_bundle
from sim.integrity import GRAPH_HASH_KEY, verify

GOLDEN = Path(__file__).resolve().parents[1] / "ros_nodes" / "data" / "reach_gcbc"


@pytest.fixture()
def bundle(tmp_path: Path) -> Path:
    out = tmp_path / "bundle"
    shutil.copytree(GOLDEN, out)
    return out


def test_the_golden_bundle_loads(bundle: Path) -> None:
    assert load_bundle(bundle).contract.family == "gcbc"
    assert len(verify(bundle / POLICY_FILE)) == 64


def test_a_changed_weight_is_refused_naming_the_file(bundle: Path) -> None:
    path = bundle / POLICY_FILE
    model = onnx.load(str(path))
    init = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)))  # a weight matrix
    w = numpy_helper.to_array(init).copy()
    w.flat[0] += 0.08  # what a single flipped exponent bit can do to one weight
    init.CopyFrom(numpy_helper.from_array(w, init.name))
    onnx.save(model, str(path))  # the recorded hash is left as it was
    with pytest.raises(ValueError, match=rf"{path}: model hash .* does not match"):
        load_bundle(bundle)


@pytest.mark.parametrize("seed", range(3))
def test_any_flipped_byte_is_refused(bundle: Path, seed: int) -> None:
    """One flipped byte anywhere in the file (weights, nodes, contract, the hash itself):
    the loader raises ValueError naming the file, it never loads."""
    path = bundle / POLICY_FILE
    data = path.read_bytes()
    rng = np.random.default_rng(seed)
    for pos in rng.integers(0, len(data), size=40):
        flipped = bytearray(data)
        flipped[pos] ^= 1 << int(rng.integers(0, 8))
        path.write_bytes(bytes(flipped))
        with pytest.raises(ValueError, match=str(path)):
            load_bundle(bundle)
    path.write_bytes(data)
    load_bundle(bundle)


def test_a_graph_without_a_recorded_hash_is_refused(bundle: Path) -> None:
    path = bundle / POLICY_FILE
    model = onnx.load(str(path))
    kept = [(p.key, p.value) for p in model.metadata_props if p.key != GRAPH_HASH_KEY]
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, dict(kept))
    onnx.save(model, str(path))
    with pytest.raises(ValueError, match=rf"{path}: records no 'spine.graph_sha256'.*export it again"):
        load_bundle(bundle)


def test_a_changed_critic_is_refused_naming_the_file(tmp_path: Path) -> None:
    from deploy.safety.critic import OnnxCritic
    from tests.deploy.test_safety_critic import untrained_critic

    path = untrained_critic("reach", tmp_path / "critic")
    OnnxCritic(path)  # as exported: it loads
    model = onnx.load(str(path))
    init = next(t for t in model.graph.initializer if t.name == "b1")
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) + 0.5, "b1"))
    onnx.save(model, str(path))
    with pytest.raises(ValueError, match=rf"{path}: model hash .* does not match"):
        OnnxCritic(path)
