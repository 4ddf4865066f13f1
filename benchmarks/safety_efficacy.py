"""Safety efficacy: violations per 100 episodes and success rate, with no filter, with the
deterministic stages only, and with the deterministic stages + the learned critic, under the
nominal policy and under each injected fault (real MuJoCo, filter at the physics rate).

    .venv/bin/python benchmarks/safety_efficacy.py --task reach_obstacles \
        --critic runs/critic/reach_obstacles/critic.onnx --episodes 20 --out runs/safety_efficacy

The policy is the task's scripted expert (it reads the true physics for its IK, so sensor
faults reach it only through the state it is given). Faults are active from 1.0 s for 1.5 s
(a stall: 0.5 s). A "violation" is a control period (40 ms) with any safety cost (collision,
joint limit, end-effector speed). Writes ``<out>/<task>.json``, ``.md`` and ``.png``.
Targets: with the critic >= 90% fewer violations than without a filter under the injected
faults, and a success drop <= 5 points under the nominal policy. ``--record`` writes the task's
table into its section of benchmarks/RESULTS.md (``safety_efficacy_<task>``; benchmarks/record.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from record import add_record_args, critic_calibration_note, markdown_table, record
from tqdm import tqdm

import sim
from deploy.safety.config import load_safety_config
from deploy.safety.engines import load_critic, make_filter
from deploy.safety.model_limits import run_episode, sim_limits, stage_counts
from sim.faults import FAULTS, FaultInjector, FaultSpec

CONFIGS = ("none", "deterministic", "critic")
TASKS = ("reach_obstacles", "push")


def evaluate(
    task: str, critic: Path | None, episodes: int, faults: tuple[str, ...], seed: int, safety: str = "default"
) -> dict[str, Any]:
    """Every fault x filter configuration over ``episodes`` episodes: rows + target figures."""
    env = sim.make(task)
    expert = sim.expert_class(task)(env)
    config = load_safety_config(safety)  # the shipped configuration unless told otherwise
    limits = sim_limits(env, config)
    tick_hz = 1.0 / limits.tick_period
    guard = (
        load_critic(critic, env.task_spec, tick_hz=tick_hz, threshold=config.critic_threshold)
        if critic
        else None
    )
    filters = {"none": None, "deterministic": make_filter(limits), "critic": make_filter(limits, guard)}
    configs = [c for c in CONFIGS if c != "critic" or guard is not None]
    rows = []
    with tqdm(total=len(faults) * len(configs) * episodes, desc=f"efficacy {task}", unit="episode") as bar:
        for kind in faults:
            fault = FaultInjector(FaultSpec.for_kind(kind), limits.q_min, limits.q_max)
            for name in configs:
                t0 = time.perf_counter()
                res = []
                for i in range(episodes):
                    res.append(run_episode(env, expert.act, filters[name], fault, seed + i))
                    bar.update()
                row = {"fault": kind, "filter": name, **summarize(res, env.task_spec.cost_kinds, name)}
                rows.append({**row, "seconds": time.perf_counter() - t0})
    result = {
        "task": task,
        "safety": safety,
        "critic": str(critic) if critic else None,
        "seed": seed,
        "rows": rows,
    }
    return {**result, **targets(rows)}


def summarize(res: list[Any], cost_kinds: tuple[str, ...], name: str) -> dict[str, Any]:
    """One row's figures from its episodes."""
    risks = np.array([r for e in res for r in e.risks], dtype=float)
    return {
        "episodes": len(res),
        "success_rate": float(np.mean([e.success for e in res])),
        "violations_per_100_episodes": 100.0 * float(np.mean([e.violation_steps for e in res])),
        "episodes_with_violation": float(np.mean([e.violation_steps > 0 for e in res])),
        "cost_steps": {k: sum(e.costs.get(k, 0) for e in res) for k in cost_kinds},
        "stage_ticks": stage_counts(res) if name != "none" else {},
        "risk_mean": float(np.nanmean(risks)) if np.isfinite(risks).any() else None,
    }


def targets(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's targets from the rows: violation reduction under faults, nominal success drop."""
    by = {(r["fault"], r["filter"]): r for r in rows}
    faults = sorted({r["fault"] for r in rows if r["fault"] != "none"})
    out: dict[str, Any] = {}
    for name in ("deterministic", "critic"):
        if (faults and (faults[0], name) in by) or ("none", name) in by:
            bare = sum(by[(f, "none")]["violations_per_100_episodes"] for f in faults)
            mine = sum(by[(f, name)]["violations_per_100_episodes"] for f in faults)
            out[f"{name}_violation_reduction_under_faults"] = 1.0 - mine / bare if bare > 0 else None
            if ("none", name) in by:
                drop = by[("none", "none")]["success_rate"] - by[("none", name)]["success_rate"]
                out[f"{name}_nominal_success_drop_points"] = 100.0 * drop
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"### {result['task']}: violations per 100 episodes / success rate",
        "",
        "| fault | no filter | deterministic | deterministic + critic |",
        "|---|---|---|---|",
    ]
    by = {(r["fault"], r["filter"]): r for r in result["rows"]}
    for kind in dict.fromkeys(r["fault"] for r in result["rows"]):
        cells = []
        for name in CONFIGS:
            r = by.get((kind, name))
            cells.append(f"{r['violations_per_100_episodes']:.0f} / {r['success_rate']:.0%}" if r else "-")
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines.append("")
    for key in sorted(k for k in result if k.endswith(("reduction_under_faults", "drop_points"))):
        v = result[key]
        lines.append(f"- {key}: {'n/a' if v is None else (f'{v:.1%}' if 'reduction' in key else f'{v:.1f}')}")
    return "\n".join(lines) + "\n"


def plot(path: Path, result: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = {(r["fault"], r["filter"]): r for r in result["rows"]}
    faults = list(dict.fromkeys(r["fault"] for r in result["rows"]))
    names = [n for n in CONFIGS if any((f, n) in by for f in faults)]
    x = np.arange(len(faults))
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    w = 0.8 / len(names)
    for j, n in enumerate(names):
        v = [by[(f, n)]["violations_per_100_episodes"] if (f, n) in by else 0 for f in faults]
        s = [by[(f, n)]["success_rate"] if (f, n) in by else 0 for f in faults]
        a1.bar(x + j * w, v, w, label=n)
        a2.bar(x + j * w, s, w, label=n)
    a1.set(ylabel="violating control steps / 100 episodes", yscale="symlog")
    a1.set_title(f"{result['task']}: safety filter under injected faults")
    a1.legend()
    a2.set(ylabel="success rate", ylim=(0, 1.05))
    a2.set_xticks(x + 0.4 - w / 2, faults, rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="reach_obstacles", choices=TASKS)
    ap.add_argument(
        "--critic", type=Path, help="critic.onnx (spine-train-critic); without it: no critic rows"
    )
    ap.add_argument("--episodes", type=int, default=20, help="episodes per fault and filter")
    ap.add_argument(
        "--faults", default=",".join(FAULTS), help="comma-separated subset of " + ",".join(FAULTS)
    )
    ap.add_argument("--seed", type=int, default=2000, help="first episode seed")
    ap.add_argument(
        "--safety", default="default", help="configs/safety/ name or YAML (default: the shipped one)"
    )
    ap.add_argument("--out", type=Path, default=Path("runs/safety_efficacy"))
    add_record_args(ap)
    args = ap.parse_args(argv)
    faults = tuple(args.faults.split(","))
    unknown = sorted(set(faults) - set(FAULTS))
    if unknown:
        print(f"safety_efficacy: unknown fault(s) {unknown}; known: {', '.join(FAULTS)}", file=sys.stderr)
        return 1
    result = evaluate(args.task, args.critic, args.episodes, faults, args.seed, args.safety)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.task}.json").write_text(json.dumps(result, indent=2))
    text = markdown(result)
    (args.out / f"{args.task}.md").write_text(text)
    plot(args.out / f"{args.task}.png", result)
    print(text)
    if args.record:
        record_result(result, args)
    return 0


def record_table(result: dict[str, Any]) -> str:
    """Violations per 100 episodes / success per fault and filter, then the target figures."""
    by = {(r["fault"], r["filter"]): r for r in result["rows"]}
    heads = {"none": "no filter", "deterministic": "deterministic", "critic": "+ critic"}
    rows = []
    for kind in dict.fromkeys(r["fault"] for r in result["rows"]):
        row = {"fault": kind}
        for name, head in heads.items():
            r = by.get((kind, name))
            row[head] = (
                f"{r['violations_per_100_episodes']:.0f} / {100 * r['success_rate']:.0f} %" if r else "-"
            )
        rows.append(row)
    for key, head, fmt in (
        ("violation_reduction_under_faults", "violation reduction under faults vs no filter", "{:.1%}"),
        ("nominal_success_drop_points", "nominal success drop", "{:.0f} points"),
    ):
        row = {"fault": f"**{head}**", "no filter": ""}
        for name in ("deterministic", "critic"):
            v = result.get(f"{name}_{key}")
            row[heads[name]] = "n/a" if v is None else fmt.format(v).replace("%", " %")
        rows.append(row)
    return markdown_table(rows, ["fault", *heads.values()])


def record_result(result: dict[str, Any], args: argparse.Namespace) -> None:
    """The task's table into RESULTS.md (benchmarks/record.py), with the targets met or missed."""
    notes = [f"Safety configuration `{result['safety']}`; episode seeds from {result['seed']}."]
    reduction = result.get("critic_violation_reduction_under_faults")
    drop = result.get("critic_nominal_success_drop_points")
    if reduction is not None and drop is not None:
        met = reduction >= 0.9 and drop <= 5
        notes.append(
            f"Targets (with the critic >= 90 % fewer violations under faults, nominal drop <= 5 points): "
            f"**{'met' if met else 'missed'}**."
        )
    notes += critic_calibration_note(args.critic)
    record(
        f"safety_efficacy_{args.task}",
        f"{args.task} ({args.episodes} episode{'s' if args.episodes != 1 else ''}): violations per 100 "
        "episodes / success rate",
        record_table(result),
        "\n".join(f"- {n}" for n in notes),
        path=args.results,
        packages=("mujoco", "onnxruntime"),
    )


if __name__ == "__main__":
    sys.exit(main())
