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
whether it picks both sides across layouts. The task is built as in ``policy_eval.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from policy_eval import checkpoint_args, key_values, trained_task, with_overrides

from policies.checkpoint import load_checkpoint

SIDES = ("near", "far", "not passed")


def rollout_side(env: Any, policy: Any, seed: int, options: dict | None = None) -> tuple[str, bool]:
    """One episode on layout ``seed`` (``options`` go to ``env.reset``): the side the puck
    passed the block on, and success. ``policy`` has ``act(obs) -> action`` and ``reset()``."""
    obs, _ = env.reset(seed=seed, options=options)
    policy.reset()
    state = env.state()
    block = state["obstacle_center"]
    lane_sign = np.sign(state["object_pos"][1] - block[1])  # the puck starts on this side
    side, done, info = SIDES[2], False, {}
    while not done:
        obs, _, terminated, truncated, info = env.step(policy.act(obs))
        done = terminated or truncated
        puck = env.state()["object_pos"]
        if side == SIDES[2] and np.sign(puck[1] - block[1]) != lane_sign:
            side = SIDES[0] if puck[0] < block[0] else SIDES[1]
    return side, bool(info.get("is_success", False))


def modes_of(
    checkpoint: Path, layouts: int, rollouts: int, seed: int, noise_seed: int, task: dict, policy_kw: dict
) -> dict[str, Any]:
    """Side and success of every rollout of one checkpoint, with the summary figures."""
    policy, meta = load_checkpoint(checkpoint)
    policy = with_overrides(policy, policy_kw)
    env = trained_task(meta, task)
    runs: list[list[tuple[str, bool]]] = []
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
    n = len(flat)
    summary: dict[str, Any] = {"checkpoint": str(checkpoint), "family": policy.family, "rollouts": n}
    for s in SIDES:
        hits = [ok for side, ok in flat if side == s]
        summary[f"{s}_share"] = len(hits) / n
        summary[f"{s}_success"] = float(np.mean(hits)) if hits else float("nan")
    summary["success"] = float(np.mean([ok for _, ok in flat]))
    sided = [{side for side, _ in row} - {SIDES[2]} for row in runs]
    summary["layouts_both_sides"] = float(np.mean([len(s) == 2 for s in sided]))
    summary["sides"] = [[side for side, _ in row] for row in runs]
    return summary


def main() -> None:
    ap = checkpoint_args(__doc__)
    ap.add_argument("--layouts", type=int, default=60)
    ap.add_argument("--rollouts", type=int, default=4, help="rollouts per layout, noise seed + r each")
    args = ap.parse_args()
    torch.set_num_threads(1)
    task, policy_kw = key_values(args.task), key_values(args.policy)
    print("| checkpoint | family | near / far / not passed | success near / far / not passed (%) ", end="")
    print("| success | layouts both sides |\n|---|---|---|---|---|---|")
    results = []
    for ckpt in args.checkpoints:
        r = modes_of(ckpt, args.layouts, args.rollouts, args.seed, args.noise_seed, task, policy_kw)
        results.append(r)
        share = " / ".join(f"{100 * r[f'{s}_share']:.0f} %" for s in SIDES)
        success = " / ".join(f"{100 * r[f'{s}_success']:.0f}" for s in SIDES)
        print(
            f"| {ckpt} | {r['family']} | {share} | {success} | {100 * r['success']:.1f} % "
            f"| {100 * r['layouts_both_sides']:.0f} % |",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
