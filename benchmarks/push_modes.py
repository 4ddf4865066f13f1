"""Which way around the block push policies go: the modes a policy keeps, layout by layout.

    .venv/bin/python benchmarks/push_modes.py runs/a/checkpoint runs/b/checkpoint \\
        --layouts 60 --rollouts 4

The push expert takes the block's near or far side at random (``PushEnv.mode``), so expert data
is bimodal. Success alone does not say whether a policy kept both modes or collapsed to one per
situation. This script replays each of ``--layouts`` seeded layouts ``--rollouts`` times (the
policy's own sampling seeded ``--noise-seed + r``) and classifies each rollout by the side of the
block the puck was on when it passed the block's center line along the lane (``near``: the
robot's side, smaller x), or ``not passed``. It prints, per checkpoint, the share of each side,
success per side, and the share of layouts whose rollouts took both sides. A deterministic policy
(GCBC) repeats itself, so its "both sides" share is 0 by construction; what matters there is
whether it picks both sides across layouts. ``--plot`` draws the puck's paths on the first 15
layouts, one panel per checkpoint. The task is built as in ``policy_eval.py``. ``--record`` writes
the table (checkpoints grouped over their ``seed<k>`` folders) into its section of
benchmarks/RESULTS.md (benchmarks/record.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from policy_eval import checkpoint_args, key_values, seed_groups, trained_task, with_overrides
from record import add_record_args, markdown_table, record

from policies.checkpoint import load_checkpoint

SIDES = ("near", "far", "not passed")


@dataclass
class Rollout:
    """One rollout: the side the puck passed the block on, success, and the puck's path in the
    block's frame (xy - block xy, y flipped so the start is at +y) (T, 2) m."""

    side: str
    success: bool
    path: np.ndarray


def rollout_side(env: Any, policy: Any, seed: int, options: dict | None = None) -> Rollout:
    """One episode on layout ``seed`` (``options`` go to ``env.reset``). ``policy`` has
    ``act(obs) -> action`` and ``reset()``."""
    obs, _ = env.reset(seed=seed, options=options)
    policy.reset()
    state = env.state()
    block = state["obstacle_center"][:2]
    lane_sign = np.sign(state["object_pos"][1] - block[1])  # the puck starts on this side
    side, done, info, path = SIDES[2], False, {}, [state["object_pos"][:2] - block]
    while not done:
        obs, _, terminated, truncated, info = env.step(policy.act(obs))
        done = terminated or truncated
        rel = env.state()["object_pos"][:2] - block
        path.append(rel)
        if side == SIDES[2] and np.sign(rel[1]) != lane_sign:
            side = SIDES[0] if rel[0] < 0 else SIDES[1]
    return Rollout(side, bool(info.get("is_success", False)), np.array(path) * [1.0, lane_sign])


def modes_of(
    checkpoint: Path, layouts: int, rollouts: int, seed: int, noise_seed: int, task: dict, policy_kw: dict
) -> tuple[dict[str, Any], list[list[Rollout]]]:
    """Every rollout of one checkpoint (layout by layout) and the summary figures."""
    policy, meta = load_checkpoint(checkpoint)
    policy = with_overrides(policy, policy_kw)
    env = trained_task(meta, task)
    runs: list[list[Rollout]] = []
    try:
        with torch.no_grad():
            for layout in range(layouts):
                row = []
                for r in range(rollouts):
                    torch.manual_seed(noise_seed + r)
                    row.append(rollout_side(env, policy, seed + layout))
                runs.append(row)
    finally:
        env.close()
    flat = [x for row in runs for x in row]
    summary: dict[str, Any] = {"checkpoint": str(checkpoint), "family": policy.family, "rollouts": len(flat)}
    for s in SIDES:
        hits = [x.success for x in flat if x.side == s]
        summary[f"{s}_share"] = len(hits) / len(flat)
        summary[f"{s}_success"] = float(np.mean(hits)) if hits else float("nan")
    summary["success"] = float(np.mean([x.success for x in flat]))
    sided = [{x.side for x in row} - {SIDES[2]} for row in runs]
    summary["layouts_both_sides"] = float(np.mean([len(s) == 2 for s in sided]))
    summary["sides"] = [[x.side for x in row] for row in runs]
    return summary, runs


def plot_paths(named: list[tuple[str, list[list[Rollout]]]], path: Path, layouts: int = 15) -> None:
    """One top-down panel per checkpoint: the puck's paths in the block's frame on the first
    ``layouts`` layouts, coloured by the side taken; the block drawn at its mean size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    colours = dict(zip(SIDES, ("tab:blue", "tab:orange", "tab:red"), strict=True))
    fig, axes = plt.subplots(1, len(named), figsize=(3.2 * len(named), 4.2), squeeze=False)
    for ax, (name, runs) in zip(axes[0], named, strict=True):
        for row in runs[:layouts]:
            for x in row:
                ax.plot(x.path[:, 0], x.path[:, 1], color=colours[x.side], lw=0.7, alpha=0.6)
        ax.add_patch(Rectangle((-0.05, -0.0225), 0.1, 0.045, color="0.5", alpha=0.6))
        ax.set_title(name, fontsize=8)
        ax.set_aspect("equal")
        ax.set_xlabel("x - block x (m)")
    axes[0][0].set_ylabel("along the lane, start at +y (m)")
    handles = [plt.Line2D([], [], color=c, label=s) for s, c in colours.items()]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = checkpoint_args(__doc__)
    ap.add_argument("--layouts", type=int, default=60)
    ap.add_argument("--rollouts", type=int, default=4, help="rollouts per layout, noise seed + r each")
    ap.add_argument("--plot", type=Path, default=Path("runs/push_modes.png"), help="puck paths (PNG)")
    add_record_args(ap)
    args = ap.parse_args()
    torch.set_num_threads(1)
    task, policy_kw = key_values(args.task), key_values(args.policy)
    print("| checkpoint | family | near / far / not passed | success near / far / not passed (%) ", end="")
    print("| success | layouts both sides |\n|---|---|---|---|---|---|")
    results, named = [], []
    for ckpt in args.checkpoints:
        r, runs = modes_of(ckpt, args.layouts, args.rollouts, args.seed, args.noise_seed, task, policy_kw)
        results.append(r)
        named.append(("/".join(ckpt.parent.parts[-3:]), runs))
        share = " / ".join(f"{100 * r[f'{s}_share']:.0f} %" for s in SIDES)
        success = " / ".join(f"{100 * r[f'{s}_success']:.0f}" for s in SIDES)
        print(
            f"| {ckpt} | {r['family']} | {share} | {success} | {100 * r['success']:.1f} % "
            f"| {100 * r['layouts_both_sides']:.0f} % |",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    plot_paths(named, args.plot)
    print(f"puck paths: {args.plot}")
    if args.record:
        overrides = " ".join([*args.task, *args.policy]) or "none"
        notes = (
            f"- Layouts: episode seeds {args.seed}-{args.seed + args.layouts - 1}; rollouts: noise seeds "
            f"{args.noise_seed}-{args.noise_seed + args.rollouts - 1}; overrides: {overrides}. Per seed, "
            "in the order of the checkpoints."
        )
        record(
            "push_modes",
            "Which side of the block each rollout took, per checkpoint",
            record_table(args.checkpoints, results),
            notes,
            path=args.results,
            packages=("torch", "mujoco"),
        )


def _cells(r: dict[str, Any]) -> dict[str, str]:
    """One checkpoint's figures (%) as the recorded table writes them."""
    return {
        "near / far / not passed": "/".join(f"{100 * r[f'{s}_share']:.0f}" for s in SIDES),
        "success near / far": "/".join(f"{100 * r[f'{s}_success']:.0f}" for s in SIDES[:2]),
        "success": f"{100 * r['success']:.1f}",
        "layouts both sides": f"{100 * r['layouts_both_sides']:.0f}",
    }


def record_table(checkpoints: list[Path], results: list[dict[str, Any]]) -> str:
    """One row per group of seeds (``seed_groups``); each cell lists the seeds' figures in %."""
    rows = []
    for name, idx in seed_groups(checkpoints).items():
        cells, first = [_cells(results[i]) for i in idx], results[idx[0]]
        row = {"checkpoint": f"`{name}` ({first['family']})"}
        for key in cells[0]:
            head = f"success ({first['rollouts']} rollouts)" if key == "success" else key
            row[head] = ", ".join(c[key] for c in cells) + " %"
        rows.append(row)
    return markdown_table(rows)


if __name__ == "__main__":
    main()
