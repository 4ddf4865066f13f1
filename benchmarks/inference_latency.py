"""Policy inference latency on one CPU thread: onnxruntime next to torch eager, same run.

    .venv/bin/python benchmarks/inference_latency.py [--checkpoint runs/demo/train/checkpoint]

Without --checkpoint a fresh GCBC policy (default size, normalizers fitted on random data) is
exported to a temporary bundle. Prints p50 / p99 / p99.9 in µs and the torch/onnxruntime ratio.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
from pathlib import Path

import numpy as np
import torch

from deploy.export import export_bundle
from deploy.latency import measure_latency
from deploy.runtime import OnnxPolicy
from policies.checkpoint import load_checkpoint, save_checkpoint


def fresh_checkpoint(root: Path) -> Path:
    import sim
    from policies import make_policy

    spec = sim.make("reach").task_spec
    policy = make_policy("gcbc", spec)
    rng = np.random.default_rng(0)
    policy.fit_normalizers(
        {"observation": rng.normal(size=(1000, spec.obs_size)), "desired_goal": rng.normal(size=(1000, 3))}
    )
    return save_checkpoint(root / "checkpoint", policy, {}, 0, {})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path)
    ap.add_argument("--calls", type=int, default=5000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = args.checkpoint or fresh_checkpoint(Path(tmp))
        export_bundle(ckpt, Path(tmp) / "bundle", samples=32)
        policy, _ = load_checkpoint(ckpt)
        from deploy.bundle import load_bundle

        bundle = load_bundle(Path(tmp) / "bundle")
        ort_policy = OnnxPolicy(bundle.policy_path, bundle.contract, threads=1)
        spec = policy.spec
        obs = np.zeros(spec.obs_size, dtype=np.float32)
        goal = np.zeros(spec.goal.size, dtype=np.float32)
        t_obs, t_goal = torch.as_tensor(obs)[None], torch.as_tensor(goal)[None]

        @torch.inference_mode()
        def torch_call() -> None:
            policy(t_obs, t_goal)

        rows = {
            "torch eager": measure_latency(torch_call, args.calls),
            "onnxruntime": measure_latency(lambda: ort_policy(observation=obs, goal=goal), args.calls),
        }
    print(
        f"GCBC MLP ({policy.config.layers}x{policy.config.hidden}), 1 thread, {args.calls} calls, "
        f"{platform.processor() or platform.machine()}"
    )
    print(f"{'runtime':<14}{'p50 us':>9}{'p99 us':>9}{'p99.9 us':>10}")
    for name, r in rows.items():
        print(f"{name:<14}{r['p50']:>9.1f}{r['p99']:>9.1f}{r['p999']:>10.1f}")
    print(f"ratio torch/onnxruntime at p50: {rows['torch eager']['p50'] / rows['onnxruntime']['p50']:.1f}x")


if __name__ == "__main__":
    main()
