"""``spine-export``: checkpoint -> bundle (``policy.onnx`` [+ ``high_level.onnx``], ``contract.json``,
``report.json``), for every policy family; a safety critic's checkpoint -> ``critic.onnx``.

    spine-export runs/train/checkpoint --out runs/bundle [--opset 17] [--tolerance 1e-4]
        [--eval-task reach --eval-episodes 50] [--quantize int8] [--critic runs/critic/checkpoint]
    spine-export runs/critic/checkpoint --out runs/critic        # critic.onnx alone

The graphs come from the family's export twin (``deploy.export.graphs``): normalizers inside,
a diffusion policy's whole fixed-step sampler unrolled with the noise as an input, a
hierarchical policy as two graphs. The contract goes into every graph's ``metadata_props``
(key ``spine.contract``) and into ``contract.json``. Export fails if a normalizer was never
fitted, or if onnxruntime disagrees with torch by more than ``--tolerance`` on fresh random
inputs (the max abs error is in the report either way; a failed bundle has no
``contract.json``, so nothing loads it). ``--eval-episodes`` also runs torch and
the bundle in simulation on the same seeds and reports both success rates. ``--quantize int8``
writes dynamically quantized graphs; it requires ``--eval-episodes`` so that its parity and
success-rate cost are reported, and its own ``--quant-tolerance``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from deploy.runtime.bundle import (
    CONTRACT_FILE,
    CONTRACT_KEY,
    HIGH_LEVEL_FILE,
    POLICY_FILE,
    REPORT_FILE,
    load_bundle,
    spec_kwargs,
)
from deploy.runtime.graph import OnnxGraph
from deploy.runtime.latency import measure_latency, policy_step_latency
from sim.contract import PolicyContract
from sim.integrity import stamp

DEFAULT_OPSET = 17
CRITIC_META = "critic.json"  # marks a critic checkpoint folder (policies.critic.META)
QUANTIZE = ("int8",)
# torch 2.13's torch.export deep-copies its own pytree specs and warns about itself (a
# FutureWarning per export that nothing in Spine can act on); hidden around the export call only
TORCH_TREESPEC_WARNING = r"`isinstance\(treespec, LeafSpec\)` is deprecated"


class ParityError(RuntimeError):
    """onnxruntime's output differs from torch's by more than the tolerance."""


def export_bundle(
    checkpoint: Path,
    out: Path,
    opset: int = DEFAULT_OPSET,
    tolerance: float = 1e-4,
    samples: int = 512,
    seed: int = 0,
    eval_task: str | None = None,
    eval_episodes: int = 0,
    quantize: str | None = None,
    quant_tolerance: float = 0.05,
) -> dict[str, Any]:
    """Export ``checkpoint`` into the bundle folder ``out``; returns the report.

    ``eval_task`` defaults to the task the policy was trained on.
    """
    from deploy.export.graphs import export_plan
    from deploy.export.parity import numeric_parity, sim_parity
    from policies.checkpoint import load_checkpoint

    if quantize is not None and quantize not in QUANTIZE:
        raise ValueError(f"--quantize: {quantize!r} is not one of {QUANTIZE}")
    if quantize is not None and eval_episodes <= 0:
        raise ValueError("--quantize needs --eval-episodes > 0: its success-rate cost must be reported")
    policy, meta = load_checkpoint(checkpoint)
    plan = export_plan(policy)
    graphs = {g.file: g for g in plan.graphs}
    contract = dataclasses.replace(
        PolicyContract.from_dict(meta["contract"]),
        inputs=graphs[POLICY_FILE].inputs,
        outputs=graphs[POLICY_FILE].outputs,
        opset=opset,
        **plan.contract_fields,
    )
    out.mkdir(parents=True, exist_ok=True)
    if HIGH_LEVEL_FILE not in graphs:
        (out / HIGH_LEVEL_FILE).unlink(missing_ok=True)  # left over from an earlier export
    for g in plan.graphs:
        _export_graph(g, out / g.file, opset)
    _write_contract(out, contract, plan)

    report: dict[str, Any] = {
        "checkpoint": str(checkpoint),
        "family": contract.family,
        "opset": opset,
        "weights_sha256": contract.weights_sha256,
        "precision": "float32",
        "graphs": {},
    }
    worst = 0.0
    for g in plan.graphs:
        session = OnnxGraph(out / g.file, g.inputs, g.outputs)
        err = numeric_parity(g, session, samples, seed)
        entry: dict[str, Any] = {"twin": type(g.twin).__name__}
        if not err <= tolerance and g.fallback is not None:  # the lean twin drifted: trace the policy
            entry["fallback_from"] = {"twin": entry["twin"], "max_abs_error": err}
            g.twin, g.fallback = g.fallback, None
            _export_graph(g, out / g.file, opset)
            _write_contract(out, contract, plan)
            session = OnnxGraph(out / g.file, g.inputs, g.outputs)
            err, entry["twin"] = numeric_parity(g, session, samples, seed), type(g.twin).__name__
        worst = max(worst, err)
        entry["parity"] = {"samples": samples, "max_abs_error": err, "tolerance": tolerance}
        entry["latency_us"] = measure_latency(session.run)
        report["graphs"][g.file] = entry
    report["parity"] = {"samples": samples, "max_abs_error": worst, "tolerance": tolerance}
    report["latency_us"] = report["graphs"][POLICY_FILE]["latency_us"]  # graph alone
    if not worst <= tolerance:
        _refuse(out, report)
        raise ParityError(f"{out}: max |torch - onnxruntime| = {worst:.3g} > {tolerance:g}")
    report["policy_step_us"] = _policy_step(out, seed)
    task = eval_task or contract.task.name
    kwargs = spec_kwargs(contract) if task == contract.task.name else {}  # e.g. dm_control's domain
    if eval_episodes > 0:
        report["sim"] = sim_parity(plan, load_bundle(out), task, eval_episodes, seed, kwargs)
    if quantize is not None:
        report["quantized"] = _quantize(plan, out, contract, samples, seed, quant_tolerance)
        report["quantized"]["sim"] = sim_parity(plan, load_bundle(out), task, eval_episodes, seed, kwargs)
        report["precision"] = quantize
    (out / REPORT_FILE).write_text(json.dumps(report, indent=2))
    if quantize is not None and not report["quantized"]["max_abs_error"] <= quant_tolerance:
        _refuse(out, report)
        raise ParityError(f"{out}: int8 max |torch - onnxruntime| > {quant_tolerance:g}; see {REPORT_FILE}")
    load_bundle(out)  # the bundle we wrote must read back
    return report


def _refuse(out: Path, report: dict[str, Any]) -> None:
    """A failed export keeps its report but loses ``contract.json``: ``load_bundle`` refuses it."""
    (out / REPORT_FILE).write_text(json.dumps(report, indent=2))
    (out / CONTRACT_FILE).unlink(missing_ok=True)


def _export_graph(g: Any, path: Path, opset: int) -> None:
    """Export ``g.twin`` (in eval mode) into ``path`` with torch's ONNX exporter (``torch.export``,
    static shapes: batch 1, one graph), then ``deploy.export.onnx_pass.finish``: down to
    ``opset``, the exporter's optimizer, GELU in the form onnxruntime fuses, onnx's checker."""
    import onnx
    import torch

    from deploy.export.onnx_pass import EXPORTER_OPSET, finish

    dummy = tuple(torch.zeros(t.shape) for t in g.inputs)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", TORCH_TREESPEC_WARNING, FutureWarning)
        program = torch.onnx.export(
            g.twin.eval(),
            dummy,
            input_names=[t.name for t in g.inputs],
            output_names=[t.name for t in g.outputs],
            opset_version=max(opset, EXPORTER_OPSET),
            dynamo=True,
            optimize=False,  # finish() optimizes, after converting to ``opset``
            verbose=False,
        )
    onnx.save(finish(program, opset), str(path))


def _write_contract(out: Path, contract: PolicyContract, plan: Any) -> None:
    """The contract into every graph's ``metadata_props`` and into ``contract.json``."""
    import onnx

    text = contract.to_json()
    for g in plan.graphs:
        path = out / g.file
        model = onnx.load(str(path))
        del model.metadata_props[:]
        onnx.helper.set_model_props(
            model,
            {
                CONTRACT_KEY: text,
                "spine.family": contract.family,
                "spine.graph": g.file,
                "spine.weights_sha256": contract.weights_sha256,
            },
        )
        stamp(model)  # the graph's hash, checked by every loader (sim.integrity)
        onnx.save(model, str(path))
    (out / CONTRACT_FILE).write_text(text)


def _quantize(
    plan: Any, out: Path, contract: PolicyContract, samples: int, seed: int, tolerance: float
) -> dict[str, Any]:
    """Replace each graph by its int8 dynamic quantization (weights int8, activations
    quantized per call); returns its parity against torch and its latency."""
    from deploy.export.parity import numeric_parity
    from deploy.export.quant import quantize_int8

    result: dict[str, Any] = {
        "kind": "int8 dynamic (onnxruntime.quantization), first layers float32",
        "graphs": {},
    }
    for g in plan.graphs:
        path = out / g.file
        fp32 = path.with_suffix(".fp32.onnx")
        path.replace(fp32)
        quantize_int8(fp32, path)
        fp32.unlink()
    _write_contract(out, dataclasses.replace(contract, precision="int8"), plan)
    worst = 0.0
    for g in plan.graphs:
        session = OnnxGraph(out / g.file, g.inputs, g.outputs)
        err = numeric_parity(g, session, samples, seed)
        worst = max(worst, err)
        result["graphs"][g.file] = {"max_abs_error": err, "latency_us": measure_latency(session.run)}
    result["max_abs_error"], result["tolerance"] = worst, tolerance
    return result


def _policy_step(out: Path, seed: int) -> dict[str, float]:
    """The policy step as the Controller times it (``deploy.runtime.latency``), in a warm loop on
    random observations and goals of the contract's sizes."""
    from deploy.runtime.agents import load_agent

    bundle = load_bundle(out)
    task, rng = bundle.contract.task, np.random.default_rng(seed)
    states = [(rng.standard_normal(task.obs_size), rng.standard_normal(task.goal.size)) for _ in range(8)]
    return policy_step_latency(load_agent(bundle, seed=seed), states)


def add_critic(bundle: Path, critic: Path) -> dict[str, Any]:
    """Put ``critic`` in ``bundle`` as ``critic.onnx`` after checking its contract against the
    bundle's task (the Controller loads it from there); notes it in ``report.json``. ``critic``
    is a ``critic.onnx`` or a critic checkpoint folder (spine-train-critic), exported here."""
    from deploy.export.critic import export_critic
    from deploy.runtime.controller import CRITIC_FILE
    from deploy.safety.engines import load_critic

    loaded = load_bundle(bundle)
    entry: dict[str, Any] = {"source": str(critic), "file": CRITIC_FILE}
    if critic.is_dir():
        staged = bundle / (CRITIC_FILE + ".new")
        entry["export"] = export_critic(critic, staged)
        critic = staged
    try:
        guard = load_critic(critic, loaded.contract.task)  # ContractMismatch names the field
        shutil.copyfile(critic, bundle / CRITIC_FILE)
    finally:
        if critic.name.endswith(".new"):
            critic.unlink(missing_ok=True)
    entry["threshold"] = guard.threshold
    report_path = bundle / REPORT_FILE
    report = json.loads(report_path.read_text())
    report["critic"] = entry
    report_path.write_text(json.dumps(report, indent=2))
    return entry


def export_critic_alone(checkpoint: Path, out: Path, opset: int, tolerance: float) -> int:
    """``spine-export <critic checkpoint> --out DIR``: ``DIR/critic.onnx``, parity printed."""
    from deploy.export.critic import CRITIC_FILE, export_critic

    report = export_critic(checkpoint, out / CRITIC_FILE, opset, tolerance)
    (out / "critic_report.json").write_text(json.dumps(report, indent=2))
    par = report["parity"]
    print(
        f"{out / CRITIC_FILE}: {report['candidates']} candidates, parity max|risk err| "
        f"{par['max_abs_risk_error']:.2e}, choice agreement {par['choice_agreement']:.3f}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="spine-export", description=__doc__.splitlines()[0])
    ap.add_argument(
        "checkpoint",
        type=Path,
        help="checkpoint folder: a policy's (model.safetensors + checkpoint.json) or the safety "
        "critic's (critic.safetensors + critic.json, exported alone as critic.onnx)",
    )
    ap.add_argument("--out", type=Path, required=True, help="bundle folder to write")
    ap.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset (default %(default)s)")
    ap.add_argument(
        "--tolerance", type=float, default=1e-4, help="max abs parity error (default %(default)s)"
    )
    ap.add_argument("--samples", type=int, default=512, help="random inputs for the parity check")
    ap.add_argument("--seed", type=int, default=0, help="seed of parity inputs and evaluation episodes")
    ap.add_argument("--eval-task", help="task for the sim success-rate check (default: the trained one)")
    ap.add_argument(
        "--eval-episodes", type=int, default=0, help="episodes of the sim check, torch and onnxruntime"
    )
    ap.add_argument("--quantize", choices=QUANTIZE, help="also quantize the graphs (needs --eval-episodes)")
    ap.add_argument(
        "--quant-tolerance", type=float, default=0.05, help="max abs error of quantized graphs (rad)"
    )
    ap.add_argument(
        "--critic",
        type=Path,
        help="a critic.onnx or a critic checkpoint (spine-train-critic) to ship in the bundle, checked first",
    )
    args = ap.parse_args(argv)
    try:
        if (args.checkpoint / CRITIC_META).is_file():
            return export_critic_alone(args.checkpoint, args.out, args.opset, args.tolerance)
        report = export_bundle(
            args.checkpoint, args.out, args.opset, args.tolerance, args.samples, args.seed,
            args.eval_task, args.eval_episodes, args.quantize, args.quant_tolerance,
        )  # fmt: skip
        if args.critic is not None:
            report["critic"] = add_critic(args.out, args.critic)
    except (FileNotFoundError, ValueError, KeyError, ParityError) as e:
        print(f"spine-export: {e}", file=sys.stderr)
        return 1
    except RuntimeError as e:  # a normalizer never fitted (policies.normalizer.NotFitted)
        print(f"spine-export: {e}", file=sys.stderr)
        return 1
    for name, g in report["graphs"].items():
        lat = g["latency_us"]
        print(
            f"{args.out / name}: parity max|err| {g['parity']['max_abs_error']:.2e}  "
            f"graph alone p50 {lat['p50']:.1f} us p99 {lat['p99']:.1f} us"
        )
    step = report["policy_step_us"]
    print(
        f"policy step p50 {step['p50']:.1f} us p99 {step['p99']:.1f} us (the Controller's policy call, "
        "warm loop; spine-run and spine-replay time the same call in the control loop)"
    )
    for key in ("sim", "quantized", "critic"):
        if key in report:
            print(f"{key}: {json.dumps(report[key])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
