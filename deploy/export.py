"""``spine-export``: checkpoint -> bundle (``policy.onnx``, ``contract.json``, ``report.json``).

    spine-export runs/train/checkpoint --out runs/bundle [--opset 17] [--tolerance 1e-4]

The only module of ``deploy`` that imports torch. The exported graph contains the
normalizers and the action scaling; the contract goes into ``metadata_props``. Export fails
if the normalizers were never fitted or if onnxruntime disagrees with torch by more than
``--tolerance`` on random inputs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from deploy.bundle import CONTRACT_FILE, CONTRACT_KEY, POLICY_FILE, REPORT_FILE, load_bundle
from deploy.latency import measure_latency
from deploy.runtime import OnnxPolicy
from sim.contract import PolicyContract

DEFAULT_OPSET = 17


class ParityError(RuntimeError):
    """onnxruntime's output differs from torch's by more than the tolerance."""


def export_bundle(
    checkpoint: Path,
    out: Path,
    opset: int = DEFAULT_OPSET,
    tolerance: float = 1e-4,
    samples: int = 512,
    seed: int = 0,
) -> dict[str, Any]:
    """Export ``checkpoint`` into the bundle folder ``out``; returns the report."""
    import onnx
    import torch

    from policies.checkpoint import load_checkpoint

    policy, meta = load_checkpoint(checkpoint)
    module = policy.export_module()
    inputs, outputs = policy.io_spec()
    contract = dataclasses.replace(PolicyContract.from_dict(meta["contract"]), opset=opset)
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / POLICY_FILE
    dummy = tuple(torch.zeros(t.shape) for t in inputs)
    torch.onnx.export(
        module,
        dummy,
        str(onnx_path),
        input_names=[t.name for t in inputs],
        output_names=[t.name for t in outputs],
        opset_version=opset,
        dynamo=False,
    )
    model = onnx.load(str(onnx_path))
    onnx.helper.set_model_props(model, {CONTRACT_KEY: contract.to_json(), "spine.family": contract.family})
    onnx.save(model, str(onnx_path))
    (out / CONTRACT_FILE).write_text(contract.to_json())

    runtime = OnnxPolicy(onnx_path, contract)
    feeds = random_inputs(policy, samples, seed)
    with torch.no_grad():
        expected = np.stack(
            [module(*(torch.as_tensor(f[t.name][None]) for t in inputs))[0].numpy() for f in feeds]
        )
    got = np.stack([runtime(**f) for f in feeds])
    max_err = float(np.max(np.abs(expected - got)))
    report = {
        "checkpoint": str(checkpoint),
        "family": contract.family,
        "opset": opset,
        "weights_sha256": contract.weights_sha256,
        "parity": {"samples": samples, "max_abs_error": max_err, "tolerance": tolerance},
        "latency_us": measure_latency(lambda: runtime(**feeds[0])),
    }
    (out / REPORT_FILE).write_text(json.dumps(report, indent=2))
    if not max_err <= tolerance:
        raise ParityError(f"{onnx_path}: max |torch - onnxruntime| = {max_err:.3g} > {tolerance:g}")
    load_bundle(out)  # the bundle we wrote must read back
    return report


def random_inputs(policy: Any, samples: int, seed: int) -> list[dict[str, np.ndarray]]:
    """Inputs spread around the training statistics (2 std) plus some far outside them."""
    rng = np.random.default_rng(seed)
    norms = {"observation": policy.obs_norm, "goal": policy.goal_norm}
    feeds = []
    for i in range(samples):
        scale = 2.0 if i < samples * 3 // 4 else 10.0
        feeds.append(
            {
                name: (n.mean.numpy() + scale * n.std.numpy() * rng.standard_normal(n.mean.numel())).astype(
                    np.float32
                )
                for name, n in norms.items()
            }
        )
    return feeds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="spine-export", description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path, help="checkpoint folder (model.safetensors + checkpoint.json)")
    ap.add_argument("--out", type=Path, required=True, help="bundle folder to write")
    ap.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset (default %(default)s)")
    ap.add_argument(
        "--tolerance", type=float, default=1e-4, help="max abs parity error (default %(default)s)"
    )
    ap.add_argument("--samples", type=int, default=512, help="random inputs for the parity check")
    args = ap.parse_args(argv)
    try:
        report = export_bundle(args.checkpoint, args.out, args.opset, args.tolerance, args.samples)
    except (FileNotFoundError, ValueError, ParityError) as e:
        print(f"spine-export: {e}", file=sys.stderr)
        return 1
    lat = report["latency_us"]
    print(
        f"bundle: {args.out}  parity max|err| {report['parity']['max_abs_error']:.2e}  "
        f"onnxruntime p50 {lat['p50']:.1f} us p99 {lat['p99']:.1f} us"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
