"""Re-evaluate trained checkpoints on many episodes: success rate with its binomial error.

    .venv/bin/python benchmarks/policy_eval.py runs/a/checkpoint runs/b/checkpoint --episodes 300
    .venv/bin/python benchmarks/policy_eval.py runs/a/checkpoint --task late_fork=true \\
        --policy noise_scale=0.5 execute_steps=2 --episodes 300 --seed 20000

A trainer's final evaluation (``eval_episodes``, often 30-100) has a standard error of 5-9 points
at 50-70 % success; comparing two families wants a few hundred episodes each. Episodes are
seeded ``--seed, --seed + 1, ...`` (10000 is the trainers' first evaluation seed); torch's
noise (diffusion's sampling) is seeded with ``--noise-seed``. ``--policy`` overrides fields of
the saved policy config that only change inference (sampler, temperature, chunk execution);
The task is built as the checkpoint was trained and evaluated (its train config's ``task`` and
``eval_task``); ``--task`` sets more task config fields (values parsed as YAML: true, 0.02).
``--record`` writes the table (checkpoints grouped over their ``seed<k>`` folders, next to the
trainer's own final evaluation) into its section of benchmarks/RESULTS.md (benchmarks/record.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import time
from pathlib import Path
from typing import Any

import torch
import yaml

import sim
from policies.checkpoint import load_checkpoint
from policies.registry import make_policy
from sim.evaluate import evaluate


def key_values(items: list[str]) -> dict[str, Any]:
    """``["a=1", "b=true"]`` -> ``{"a": 1, "b": True}`` (values parsed as YAML)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"expected key=value, got {item!r}")
        out[key] = yaml.safe_load(value)
    return out


def with_overrides(policy: Any, overrides: dict[str, Any]) -> Any:
    """A copy of ``policy`` built from its config with ``overrides``, same weights."""
    if not overrides:
        return policy
    known = {f.name for f in dataclasses.fields(policy.config)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise SystemExit(f"--policy: {type(policy.config).__name__} has no field(s) {unknown}")
    config = dataclasses.replace(policy.config, **overrides)
    twin = make_policy(policy.family, policy.spec, config)
    twin.load_state_dict(policy.state_dict())
    return twin.eval()


def trained_task(meta: dict[str, Any], task: dict[str, Any]) -> Any:
    """The task a checkpoint was trained and evaluated on (its train config's ``task`` and
    ``eval_task``), with ``task`` fields on top."""
    trained = meta["contract"].get("train_config", {})
    kwargs = {**trained.get("config", {}).get("task", {}), **trained.get("config", {}).get("eval_task", {})}
    return sim.make(trained.get("task", meta["contract"]["task"]["name"]), **{**kwargs, **task})


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a binomial proportion."""
    if n == 0:
        return float("nan"), float("nan")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def evaluate_checkpoint(
    checkpoint: Path,
    episodes: int,
    seed: int,
    noise_seed: int,
    task: dict[str, Any],
    overrides: dict[str, Any],
) -> dict[str, Any]:
    """Success etc. of one checkpoint over ``episodes`` seeded episodes."""
    policy, meta = load_checkpoint(checkpoint)
    policy = with_overrides(policy, overrides)
    env = trained_task(meta, task)
    torch.manual_seed(noise_seed)
    t0 = time.perf_counter()
    try:
        with torch.no_grad():
            result = evaluate(env, policy.act, episodes, seed, reset=policy.reset).as_dict()
    finally:
        env.close()
    wins = round(result["success_rate"] * episodes)
    low, high = wilson(wins, episodes)
    return {"checkpoint": str(checkpoint), **result, "ci95": [low, high], "wall_s": time.perf_counter() - t0}


def checkpoint_args(doc: str) -> argparse.ArgumentParser:
    """A parser with what every checkpoint script takes: checkpoints, the first episode seed,
    the policy's noise seed, task and inference-only policy overrides, a JSON output."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+", type=Path, help="spine-train out/checkpoint folders")
    ap.add_argument("--seed", type=int, default=10_000, help="first episode seed")
    ap.add_argument("--noise-seed", type=int, default=0, help="torch seed for the policy's own sampling")
    ap.add_argument("--task", nargs="*", default=[], help="task config fields, key=value")
    ap.add_argument("--policy", nargs="*", default=[], help="inference-only policy config fields, key=value")
    ap.add_argument("--json", type=Path, help="also write the results here")
    return ap


def seed_groups(checkpoints: list[Path]) -> dict[str, list[int]]:
    """Checkpoints of the same run on several training seeds: ``runs/x/seed0/checkpoint`` and
    ``runs/x/seed1/checkpoint`` -> ``{"runs/x/seed*/checkpoint": [0, 1]}`` (indices into
    ``checkpoints``, in order); a checkpoint without a ``seed<k>`` folder is a group of its own."""
    groups: dict[str, list[int]] = {}
    for i, ckpt in enumerate(checkpoints):
        groups.setdefault(re.sub(r"(^|/)seed\d+(/|$)", r"\1seed*\2", str(ckpt)), []).append(i)
    return groups


def trainer_success(checkpoint: Path) -> float | None:
    """The trainer's own final success rate (its ``summary.json`` beside the checkpoint), if any."""
    summary = checkpoint.parent / "summary.json"
    return json.loads(summary.read_text()).get("success_rate") if summary.is_file() else None


def record_table(checkpoints: list[Path], results: list[dict[str, Any]]) -> str:
    """One row per group of seeds: the trainer's figure and this evaluation's, per seed, and the
    mean over every episode of the group with its 95 % interval."""
    from record import markdown_table

    rows = []
    for name, idx in seed_groups(checkpoints).items():
        mine = [results[i] for i in idx]
        trained = [trainer_success(checkpoints[i]) for i in idx]
        episodes = sum(r["episodes"] for r in mine)
        wins = sum(round(r["success_rate"] * r["episodes"]) for r in mine)
        low, high = wilson(wins, episodes)
        rows.append(
            {
                "checkpoint": f"`{name}`",
                "trainer's evaluation (per seed)": ", ".join(
                    "-" if t is None else f"{100 * t:.0f}" for t in trained
                ),
                f"{mine[0]['episodes']} episodes (per seed)": ", ".join(
                    f"{100 * r['success_rate']:.1f}" for r in mine
                ),
                "mean (95 % interval)": f"**{100 * wins / episodes:.1f} %** "
                f"({100 * low:.1f}-{100 * high:.1f}) over {episodes}",
            }
        )
    return markdown_table(rows)


def main() -> None:
    from record import add_record_args, record  # benchmarks/ is on the path when this runs as a script

    ap = checkpoint_args(__doc__)
    ap.add_argument("--episodes", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    add_record_args(ap)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    task, overrides = key_values(args.task), key_values(args.policy)
    results = []
    for ckpt in args.checkpoints:
        r = evaluate_checkpoint(ckpt, args.episodes, args.seed, args.noise_seed, task, overrides)
        results.append(r)
        low, high = r["ci95"]
        print(
            f"{ckpt}: success {100 * r['success_rate']:.1f} % (95 % CI {100 * low:.1f}-{100 * high:.1f}) "
            f"over {r['episodes']} episodes from seed {args.seed}, final distance "
            f"{r['final_distance_mean']:.3f}, {r['wall_s']:.0f} s",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if args.record:
        overrides = " ".join([*args.task, *args.policy]) or "none"
        notes = (
            f"- Episode seeds {args.seed}-{args.seed + args.episodes - 1}, the policy's noise seed "
            f"{args.noise_seed}, overrides: {overrides}."
        )
        record(
            "policy_eval",
            f"Checkpoints re-evaluated on {args.episodes} episodes",
            record_table(args.checkpoints, results),
            notes,
            path=args.results,
            packages=("torch", "mujoco"),
        )


if __name__ == "__main__":
    main()
