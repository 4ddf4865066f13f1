"""spine-export for every policy family: real torch -> ONNX -> onnxruntime, parity, contract.

Policies are built small with normalizers set to random statistics (parity does not need a
trained network); the gcbc sim check uses the session's tiny trained checkpoint.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import sim
from deploy.export.app import ParityError, export_bundle, main
from deploy.export.graphs import export_plan
from deploy.export.parity import numeric_parity, randomize_for_export
from deploy.runtime.bundle import (
    CONTRACT_FILE,
    CONTRACT_KEY,
    HIGH_LEVEL_FILE,
    POLICY_FILE,
    load_bundle,
    read_onnx_metadata,
)
from deploy.runtime.graph import OnnxGraph
from policies import make_policy
from policies.checkpoint import save_checkpoint
from policies.normalizer import NotFitted
from policies.registry import policy_entry

# Small configs per family; diffusion: chunk 4 executed 2 at a time, 3 Euler steps unrolled.
SMALL = {
    "gcbc": {"hidden": 32, "layers": 2},
    "gcivl": {"hidden": 32, "layers": 2},
    "sac_her": {"hidden": 32, "layers": 2},
    "ppo": {"hidden": 32, "layers": 2},
    "hiql": {"hidden": 32, "layers": 2, "rep_dim": 4, "high_level_every": 5},
    "diffusion": {
        "hidden": 32,
        "layers": 1,
        "chunk_length": 4,
        "execute_steps": 2,
        "sampler": "euler",
        "sampler_steps": 3,
    },
    "diffusion_student": {
        "hidden": 32,
        "layers": 1,
        "chunk_length": 4,
        "execute_steps": 2,
        "net": "denoiser",
    },
}  # fmt: skip  (the MLP student's export: tests/policies/test_student_mlp.py)


def small_policy(family: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    spec = sim.make("reach").task_spec
    policy = make_policy(family, spec, policy_entry(family).config(**SMALL[family]))
    return randomize_for_export(policy, seed)  # untrained, random statistics: parity still bites


def build_bundle(family: str, root: Path) -> Path:
    """Checkpoint + bundle of a small ``family`` policy under ``root``; returns the bundle."""
    save_checkpoint(root / "checkpoint", small_policy(family), {"policy": family}, 0, {})
    export_bundle(root / "checkpoint", root / "bundle", samples=64)
    return root / "bundle"


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {f: build_bundle(f, tmp_path_factory.mktemp(f)) for f in SMALL}


@pytest.mark.parametrize("family", list(SMALL))
def test_every_family_exports_with_parity_and_its_contract(bundles: dict[str, Path], family: str) -> None:
    bundle = load_bundle(bundles[family])
    report = bundle.report
    c = bundle.contract
    assert report["family"] == family == c.family and c.opset == 17
    assert 0 < report["parity"]["max_abs_error"] <= 1e-4
    for g in bundle.graph_paths:
        assert report["graphs"][g.name]["parity"]["max_abs_error"] <= 1e-4
        meta = read_onnx_metadata(g)
        assert meta[CONTRACT_KEY] == (bundle.path / CONTRACT_FILE).read_text()
        assert meta["spine.weights_sha256"] == c.weights_sha256 != ""
    assert c.train_config == {"policy": family}
    assert [t.name for t in c.inputs][:1] == ["observation"]
    if family.startswith("diffusion"):
        assert [t.name for t in c.inputs] == ["observation", "goal", "noise"]
        assert c.chunk_length == 4 and c.execute_steps == 2 and c.outputs[0].shape == (1, 4, 7)
        assert c.sampler_steps == (3 if family == "diffusion" else 1)
    else:
        assert c.chunk_length == 1 and c.outputs[0].shape == (1, 7)
    if family == "hiql":
        assert c.hierarchical and c.high_level_hz == c.policy_hz / 5 and c.high_level_every == 5
        assert [t.name for t in c.high_level_inputs] == ["observation", "goal"]
        assert [t.name for t in c.inputs] == ["observation", "subgoal_rep"]
        assert (bundle.path / HIGH_LEVEL_FILE).is_file()
    else:
        assert not c.hierarchical and not (bundle.path / HIGH_LEVEL_FILE).exists()


def test_diffusion_graph_is_the_whole_sampler_with_noise_as_input(bundles: dict[str, Path]) -> None:
    bundle = load_bundle(bundles["diffusion"])
    g = OnnxGraph(bundle.policy_path, bundle.contract.inputs, bundle.contract.outputs)
    rng = np.random.default_rng(0)
    g.inputs["observation"][:] = rng.normal(size=g.inputs["observation"].shape)
    g.inputs["goal"][:] = rng.normal(size=g.inputs["goal"].shape)
    chunks = []
    for noise_seed in (1, 1, 2):
        g.inputs["noise"][:] = np.random.default_rng(noise_seed).standard_normal(g.inputs["noise"].shape)
        g.run()
        chunks.append(g.first_output.copy())
    np.testing.assert_array_equal(chunks[0], chunks[1])  # same noise, same chunk
    assert np.abs(chunks[0] - chunks[2]).max() > 1e-4  # other noise, other chunk
    ops = {n for n in _op_types(bundle.policy_path)}
    assert "Loop" not in ops and "RandomNormal" not in ops and "RandomNormalLike" not in ops


def _op_types(path: Path) -> list[str]:
    import onnx

    return [n.op_type for n in onnx.load(str(path)).graph.node]


def test_parity_check_catches_a_twin_that_differs_from_torch(bundles: dict[str, Path]) -> None:
    policy = small_policy("gcbc")
    plan = export_plan(policy)
    graph = plan.graphs[0]
    bundle = load_bundle(bundles["gcbc"])
    session = OnnxGraph(bundle.policy_path, bundle.contract.inputs, bundle.contract.outputs)
    assert numeric_parity(graph, session, 64, 0) <= 1e-4
    with torch.no_grad():
        policy.net[-1].bias.add_(0.05)  # the reference drifts from what was exported
    assert numeric_parity(graph, session, 64, 0) > 1e-4


def test_export_fails_above_tolerance_and_still_writes_the_report(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "ckpt", small_policy("gcbc"), {}, 0, {})
    with pytest.raises(ParityError, match="max"):
        export_bundle(tmp_path / "ckpt", tmp_path / "bundle", samples=16, tolerance=1e-12)
    report = json.loads((tmp_path / "bundle/report.json").read_text())
    assert report["parity"]["max_abs_error"] > 1e-12 and report["parity"]["tolerance"] == 1e-12
    with pytest.raises(FileNotFoundError, match=CONTRACT_FILE):  # nothing runs a failed export
        load_bundle(tmp_path / "bundle")


@pytest.mark.parametrize("family", ["diffusion", "hiql"])
def test_unfitted_normalizer_refuses_export(tmp_path: Path, family: str) -> None:
    policy = small_policy(family)
    policy.obs_norm.fitted.fill_(False)
    save_checkpoint(tmp_path / "ckpt", policy, {}, 0, {})
    with pytest.raises(NotFitted, match="obs_norm"):
        export_bundle(tmp_path / "ckpt", tmp_path / "bundle", samples=4)
    assert main([str(tmp_path / "ckpt"), "--out", str(tmp_path / "b2")]) == 1


def test_missing_high_level_graph_is_named(bundles: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    bad = tmp_path / "bundle"
    shutil.copytree(bundles["hiql"], bad)
    (bad / HIGH_LEVEL_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=HIGH_LEVEL_FILE):
        load_bundle(bad)
    shutil.copy(bundles["gcbc"] / POLICY_FILE, bad / HIGH_LEVEL_FILE)  # another model's graph
    with pytest.raises(ValueError, match="embedded contract differs"):
        load_bundle(bad)


def test_gcbc_success_rate_in_sim_equals_torch(tiny_checkpoint: Path, tmp_path: Path) -> None:
    report = export_bundle(tiny_checkpoint, tmp_path / "bundle", samples=16, eval_episodes=2)
    s = report["sim"]
    assert s["episodes"] == 2 and s["task"] == "reach"
    assert s["onnxruntime"]["success_rate"] == s["torch"]["success_rate"]
    torch_d, ort_d = s["torch"]["final_distance_mean"], s["onnxruntime"]["final_distance_mean"]
    assert abs(torch_d - ort_d) < 1e-4


def test_int8_quantization_reports_its_parity_and_success_cost(tiny_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="eval-episodes"):
        export_bundle(tiny_checkpoint, tmp_path / "b0", samples=8, quantize="int8")
    report = export_bundle(
        tiny_checkpoint, tmp_path / "b1", samples=16, eval_episodes=1, quantize="int8", quant_tolerance=1.0
    )
    q = report["quantized"]
    assert report["precision"] == "int8" and load_bundle(tmp_path / "b1").contract.precision == "int8"
    assert 1e-6 < q["max_abs_error"] <= 1.0  # int8 is not fp32-exact, and the report says by how much
    assert set(q["sim"]) >= {"torch", "onnxruntime", "success_rate_difference"}
    assert "MatMulInteger" in _op_types(
        tmp_path / "b1" / POLICY_FILE
    ) or "DynamicQuantizeLinear" in _op_types(tmp_path / "b1" / POLICY_FILE)


def test_lean_diffusion_twin_is_used_and_falls_back_when_it_drifts(
    bundles: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import policies.diffusion as graphs  # the family that declares its lean twin
    from policies.diffusion_twin import EulerChunkTwin

    for family in ("diffusion", "diffusion_student"):  # Euler, guidance 1: the lean twin
        entry = load_bundle(bundles[family]).report["graphs"][POLICY_FILE]
        assert entry["twin"] == "EulerChunkTwin" and "fallback_from" not in entry

    class Drifted(EulerChunkTwin):
        def forward(self, observation: torch.Tensor, goal: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
            return super().forward(observation, goal, noise) + 1e-2

    monkeypatch.setattr(graphs, "EulerChunkTwin", Drifted)
    save_checkpoint(tmp_path / "ckpt", small_policy("diffusion"), {}, 0, {})
    report = export_bundle(tmp_path / "ckpt", tmp_path / "bundle", samples=16)
    entry = report["graphs"][POLICY_FILE]
    assert entry["fallback_from"]["twin"] == "Drifted" and entry["fallback_from"]["max_abs_error"] > 5e-3
    assert entry["twin"] == "DiffusionPolicy" and entry["parity"]["max_abs_error"] <= 1e-4
    load_bundle(tmp_path / "bundle")


def _executed_nodes(path: Path) -> list[str]:
    """Op types of the nodes onnxruntime runs (after its graph optimizations) for ``path``."""
    import onnx
    import onnxruntime as ort

    from deploy.runtime.graph import session_options

    opts = session_options(1)
    opts.optimized_model_filepath = str(path.with_suffix(".optimized.onnx"))
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return [n.op_type for n in onnx.load(opts.optimized_model_filepath).graph.node]


def test_lean_graphs_run_the_expected_number_of_nodes(bundles: dict[str, Path], tmp_path: Path) -> None:
    from policies.diffusion_twin import lean_node_count

    for family in ("gcbc", "gcivl", "sac_her", "hiql"):  # Concat, Gemm, (LN, act, Gemm) x layers, Slice, Gemm
        ops = _executed_nodes(Path(shutil.copy(bundles[family] / POLICY_FILE, tmp_path / f"{family}.onnx")))
        layers = SMALL[family]["layers"]
        assert len(ops) == 3 * layers + 4, ops
        assert not {"Sub", "Div", "Mul", "Add"} & set(ops), ops  # normalizer and bound folded into Gemms
    ops = _executed_nodes(Path(shutil.copy(bundles["hiql"] / HIGH_LEVEL_FILE, tmp_path / "high.onnx")))
    assert len(ops) == 3 * SMALL["hiql"]["layers"] + 6 and "Sub" not in ops, ops  # + unit_scale: 4 nodes
    for family in ("diffusion", "diffusion_student"):
        ops = _executed_nodes(Path(shutil.copy(bundles[family] / POLICY_FILE, tmp_path / f"{family}.onnx")))
        assert len(ops) == lean_node_count(small_policy(family)), ops
        assert "Sub" not in ops and "Div" not in ops, ops  # normalizers folded into the first Gemm


@pytest.mark.parametrize("config", [{"sampler": "heun"}, {"sampler": "ddim", "mean_head": False}])
def test_lean_twin_covers_heun_and_ddim(tmp_path: Path, config: dict) -> None:
    from policies.diffusion_twin import lean_node_count

    torch.manual_seed(0)
    policy = make_policy(
        "diffusion",
        sim.make("reach").task_spec,
        policy_entry("diffusion").config(**{**SMALL["diffusion"], **config}),
    )
    save_checkpoint(tmp_path / "ckpt", randomize_for_export(policy, 0), {}, 0, {})
    report = export_bundle(tmp_path / "ckpt", tmp_path / "bundle", samples=64)
    entry = report["graphs"][POLICY_FILE]
    assert entry["twin"] == "EulerChunkTwin" and "fallback_from" not in entry
    assert 0 < entry["parity"]["max_abs_error"] <= 1e-4
    assert len(_executed_nodes(tmp_path / "bundle" / POLICY_FILE)) == lean_node_count(policy)


def test_int8_quantization_of_the_unrolled_solve_keeps_shared_weights_right(
    bundles: dict[str, Path], tmp_path: Path
) -> None:
    """The solve reuses each weight every step; the quantized graph must load and stay close."""
    from deploy.export.quant import quantize_int8

    bundle = load_bundle(bundles["diffusion"])
    out = quantize_int8(bundle.policy_path, tmp_path / "policy.int8.onnx")
    assert "MatMulInteger" in _op_types(out)
    session = OnnxGraph(out, bundle.contract.inputs, bundle.contract.outputs)
    graph = export_plan(small_policy("diffusion")).graphs[0]
    assert numeric_parity(graph, session, 64, 0) < 5e-3  # first layers float32: raw inputs and q exact


def test_graphs_are_at_the_contract_opset_without_exporter_debug_metadata(bundles: dict[str, Path]) -> None:
    """torch's exporter writes opset 18 and per-node stack traces; the bundle has neither."""
    import onnx

    for family, path in bundles.items():
        bundle = load_bundle(path)
        for graph in bundle.graph_paths:
            model = onnx.load(str(graph))
            opsets = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
            assert opsets == [bundle.contract.opset] == [17], (family, graph.name, opsets)
            assert not any(node.metadata_props for node in model.graph.node), (family, graph.name)


def test_export_warns_nothing(tmp_path: Path) -> None:
    """No deprecation (the legacy TorchScript exporter's) or other warning from an export; hiql
    has the most to convert (two graphs, ReduceL2 taken down to opset 17)."""
    import warnings

    save_checkpoint(tmp_path / "ckpt", small_policy("hiql"), {}, 0, {})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        export_bundle(tmp_path / "ckpt", tmp_path / "bundle", samples=8)
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []


def test_equal_split_goes_below_opset_18_with_the_same_chunks() -> None:
    """onnxscript's optimizer writes ``Split(num_outputs=n)`` (opset 18) at any opset; the pass
    gives it the sizes input instead, with opset 18's chunks (ceil, the last one smaller)."""
    import onnx
    import onnx_ir as ir
    import onnxruntime as ort

    from deploy.export.onnx_pass import split_sizes_as_input

    h = onnx.helper
    outs = [
        h.make_tensor_value_info(f"y{i}", onnx.TensorProto.FLOAT, [1, n]) for i, n in enumerate((3, 3, 1))
    ]
    split = h.make_node("Split", ["x"], [o.name for o in outs], name="split", axis=1, num_outputs=3)
    x = h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 7])
    v18 = h.make_model(
        h.make_graph([split], "g", [x], outs), opset_imports=[h.make_opsetid("", 18)], ir_version=8
    )
    model = ir.serde.deserialize_model(v18)
    model.opset_imports[""] = 17
    split_sizes_as_input(model)
    v17 = ir.serde.serialize_model(model)
    onnx.checker.check_model(v17, full_check=True)

    def run(m: onnx.ModelProto) -> list[np.ndarray]:
        session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        return session.run(None, {"x": np.arange(7, dtype=np.float32)[None]})

    chunks = run(v17)
    assert [c.shape[1] for c in chunks] == [3, 3, 1]
    for a, b in zip(run(v18), chunks, strict=True):
        np.testing.assert_array_equal(a, b)
