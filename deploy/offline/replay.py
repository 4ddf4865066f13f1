"""``spine-replay``: run a recorded log back through the same Controller, offline.

    spine-replay runs/run/log --bundle runs/bundle --out runs/replay [--goal X,Y,Z]
    spine-replay robot.bag --bundle B --out O --mapping configs/replay/widowx200.yaml [--start S --end S]

Without ``--mapping`` (Spine's own logs: ``spine-run``'s and the bag ``spine-stack`` records,
or foreign logs with only ``/joint_states``): reads ``/joint_states`` (matched by joint name),
and when present ``/spine/goal``, ``/spine/ee_position``, ``/spine/observation`` (the
observation fields of a task whose fields have no topic of their own, e.g. dm_control's),
``/spine/command`` and ``/diagnostics`` (sample-and-hold at each joint state), through
``deploy.logs.read`` (which salvages a cut or metadata-less log and skips corrupt messages).
Compares the replayed safe command with the logged one per joint, counts safety
interventions, and writes ``report.json``, ``report.md`` and ``replay.png`` to ``--out``; the
report and the console state the joint states' measured rate and largest gap, and everything
skipped.

With ``--mapping`` (any robot's log, topics and fields named by a YAML mapping): the offline
evaluation of ``deploy.offline.evaluate``, resampled to the policy rate.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from deploy.logs import messages as m
from deploy.logs.log_report import print_log_summary
from deploy.logs.rates import describe_rate
from deploy.logs.read import LogError, RunLog, read_log
from deploy.offline.replay_report import plot_replay, write_markdown
from deploy.runtime.bundle import load_bundle
from deploy.runtime.controller import Controller
from deploy.runtime.latency import percentiles
from deploy.safety.filter import Stage
from sim.spec import TaskSpec


def replay(
    log_path: Path, bundle_path: Path, out: Path, goal: np.ndarray | None = None, safety: str | None = None
) -> dict[str, Any]:
    """Replay ``log_path`` through the bundle's Controller under the safety configuration
    ``safety`` (``configs/safety/`` name or YAML; None: the shipped default); returns the report."""
    bundle = load_bundle(bundle_path)
    spec = bundle.contract.task
    log = read_log(log_path, spec.joint_names)
    if spec.goal.size:
        goal_at = _source(log, "goal", goal, "--goal X,Y,Z", spec.goal.size)
    else:  # a task without a goal (dm_control's cartpole, walker, ...)
        goal_at = lambda t, q: np.zeros(0)  # noqa: E731
    observed = _observed(log, spec)
    fields = {f.name for f in spec.observation}
    ee_at = None
    if "ee_pos" in fields:
        ee_at = _source(log, "ee_pos", None, "", 3) if log.ee_pos is not None else _fk(spec)
    ctrl = Controller(bundle, spec, safety=safety)
    stamps = log.joint_pos.stamps
    n, nj = len(stamps), spec.n_joints
    replayed = np.zeros((n, nj))
    stage_bits = np.zeros(n, dtype=np.int64)
    policy_us, filter_us = [], []
    episode, t_start = None, 0
    t0 = time.perf_counter()
    for i in tqdm(range(n), desc="replay", unit="tick", mininterval=1.0):
        t = int(stamps[i])
        q = log.joint_pos.values[i]
        state = {
            "joint_pos": q,
            "joint_vel": log.joint_vel.values[i],
            spec.goal.name: goal_at(t, q),
            **observed(t),
        }
        if ee_at is not None:
            state["ee_pos"] = ee_at(t, q)
        held = log.episode.hold(t) if log.episode is not None else None
        ep = int(held[0]) if held is not None and np.isfinite(held[0]) else None
        if i == 0 or ep != episode:
            ctrl.reset(state)
            episode, t_start = ep, t
        tick = ctrl.step_info(state, now=(t - t_start) / 1e9)
        replayed[i], stage_bits[i] = tick.command, int(tick.stages)
        if tick.policy_ran:
            policy_us.append(tick.policy_us)
        filter_us.append(tick.filter_us)
    wall = time.perf_counter() - t0
    logged = _aligned(log.command, stamps, nj)
    logged_stages = _aligned(log.stages, stamps, 1)[:, 0] if log.stages is not None else None
    report = _report(log, spec, bundle_path, replayed, logged, stage_bits, logged_stages, wall)
    report["policy_latency_us"] = percentiles(policy_us)
    report["filter_latency_us"] = percentiles(filter_us)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    plot_replay(out / "replay.png", stamps, spec.joint_names, replayed, logged, stage_bits)
    write_markdown(out / "report.md", report)
    return report


def _source(
    log: RunLog, attr: str, fallback: np.ndarray | None, hint: str, size: int
) -> Callable[[int, np.ndarray], np.ndarray]:
    """The logged ``attr`` held at each tick (its first ``size`` values: a planar goal is logged
    as a point with z = 0), else ``fallback``."""
    series = getattr(log, attr)
    if series is None:
        if fallback is None:
            raise LogError(f"log {log.path}: no {attr} topic; pass {hint}")
        return lambda t, q: fallback[:size]
    first = series.values[0][:size]
    return lambda t, q: v[:size] if (v := series.hold(t)) is not None else first


def _observed(log: RunLog, spec: TaskSpec) -> Callable[[int], dict[str, np.ndarray]]:
    """The observation fields logged on ``/spine/observation`` held at each tick, split by the
    task's fields (none when the log has no such topic, or before its first message)."""
    series = log.observation
    if series is None:
        return lambda t: {}
    if series.values.shape[1] != spec.obs_size:
        raise LogError(
            f"log {log.path}: {m.TOPIC_OBSERVATION} has {series.values.shape[1]} values, the bundle's "
            f"observation {spec.obs_size} ({[f.name for f in spec.observation]})"
        )
    bounds = np.cumsum([0] + [f.size for f in spec.observation])
    names = [f.name for f in spec.observation]

    def fields(t: int) -> dict[str, np.ndarray]:
        row = series.hold(t)
        if row is None:  # none yet (a stack's first joint states): the policy cannot run, the
            return {}  # filter holds the measured joints, as on the robot
        return {n: row[a:b] for n, a, b in zip(names, bounds[:-1], bounds[1:], strict=True)}

    return fields


def _fk(spec: TaskSpec) -> Callable[[int, np.ndarray], np.ndarray]:
    """End-effector position from joint positions via the task's MuJoCo model (offline only)."""
    from sim.robot_env import make_for_spec

    physics = make_for_spec(spec).physics
    zeros = np.zeros(spec.n_joints)

    def ee(t: int, q: np.ndarray) -> np.ndarray:
        physics.set_joint_state(q, zeros)
        return physics.ee_pos()

    return ee


def _aligned(series: Any, stamps: np.ndarray, width: int) -> np.ndarray | None:
    """The series' value logged at exactly each stamp (NaN where none was)."""
    if series is None:
        return None
    out = np.full((len(stamps), width), np.nan)
    idx = np.searchsorted(series.stamps, stamps)
    ok = idx < len(series.stamps)
    ok[ok] = series.stamps[idx[ok]] == stamps[ok]
    out[ok] = series.values[idx[ok]][:, :width]
    return out


def _report(
    log: RunLog,
    spec: TaskSpec,
    bundle: Path,
    replayed: np.ndarray,
    logged: np.ndarray | None,
    stage_bits: np.ndarray,
    logged_stages: np.ndarray | None,
    wall: float,
) -> dict[str, Any]:
    stamps = log.joint_pos.stamps
    duration = float(stamps[-1] - stamps[0]) / 1e9 if len(stamps) > 1 else 0.0
    counts: Counter[str] = Counter()
    for bits in stage_bits:
        counts.update(Stage(int(bits)).names())
    report: dict[str, Any] = {
        "log": str(log.path),
        "bundle": str(bundle),
        "topics": log.topics,
        "ticks": len(stamps),
        "log_duration_s": duration,
        "replay_wall_s": wall,
        "speed_vs_real_time": duration / wall if wall > 0 else float("nan"),
        "velocity_estimated": log.velocity_estimated,
        "joint_rate": log.joint_rate.to_dict() if log.joint_rate is not None else None,
        "skipped": log.skipped,
        "interventions": {s.name.lower(): counts.get(s.name.lower(), 0) for s in Stage if s},
    }
    if logged is not None:
        err = np.abs(replayed - logged)
        matched = ~np.isnan(err).any(axis=1)
        report["command_error_rad"] = {
            "matched_ticks": int(matched.sum()),
            "per_joint_max": dict(zip(spec.joint_names, np.max(err[matched], axis=0).tolist(), strict=True))
            if matched.any()
            else {},
            "per_joint_rms": dict(
                zip(
                    spec.joint_names,
                    np.sqrt(np.mean(err[matched] ** 2, axis=0)).tolist(),
                    strict=True,
                )
            )
            if matched.any()
            else {},
            "max": float(np.max(err[matched])) if matched.any() else float("nan"),
        }
    if logged_stages is not None:
        ok = ~np.isnan(logged_stages)
        report["stages_agree_fraction"] = (
            float(np.mean(logged_stages[ok] == stage_bits[ok])) if ok.any() else None
        )
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="spine-replay", description=__doc__.splitlines()[0])
    ap.add_argument("log", type=Path, help="rosbag2 folder (MCAP or sqlite3) or ROS 1 .bag")
    ap.add_argument("--bundle", type=Path, required=True, help="bundle folder written by spine-export")
    ap.add_argument("--out", type=Path, required=True, help="report folder")
    ap.add_argument("--goal", help="goal X,Y,Z (m) for logs without /spine/goal")
    ap.add_argument("--mapping", type=Path, help="topic mapping YAML (configs/replay/) for a foreign log")
    ap.add_argument("--start", type=float, default=0.0, help="with --mapping: window start (s)")
    ap.add_argument("--end", type=float, default=None, help="with --mapping: window end (s)")
    ap.add_argument("--safety", default="default", help="configs/safety/ name or YAML (default %(default)s)")
    args = ap.parse_args(argv)
    goal = np.array([float(v) for v in args.goal.split(",")]) if args.goal else None
    try:
        if args.mapping is not None:
            return _main_mapped(args, goal)
        r = replay(args.log, args.bundle, args.out, goal, args.safety)
    except (FileNotFoundError, ValueError) as e:
        print(f"spine-replay: {e}", file=sys.stderr)
        return 1
    print(f"spine-replay: log: {describe_rate(r['joint_rate'])}")
    for item in r["skipped"]:
        print(f"spine-replay: skipped: {item}")
    print(
        f"replayed {r['ticks']} ticks ({r['speed_vs_real_time']:.0f}x real time); {_compared(r)}; "
        f"interventions {r['interventions']}; policy step p50 {r['policy_latency_us']['p50']:.1f} us; "
        f"report {args.out / 'report.md'}"
    )
    return 0


def _compared(report: dict[str, Any]) -> str:
    """How the replayed commands compare with the logged ones, in words."""
    err = report.get("command_error_rad")
    if err is None:
        return f"the log has no {m.TOPIC_COMMAND}: commands not compared"
    if not err["matched_ticks"]:
        return f"no {m.TOPIC_COMMAND} message shares a joint state's stamp: commands not compared"
    return f"max |command error| {err['max']:.2e} rad over {err['matched_ticks']} ticks"


def _main_mapped(args: argparse.Namespace, goal: np.ndarray | None) -> int:
    from deploy.logs.mapping import load_mapping
    from deploy.offline.evaluate import evaluate_log

    r = evaluate_log(args.log, args.bundle, load_mapping(args.mapping), args.out, args.start, args.end, goal)
    maes = {k: round(v["mae"], 4) for k, v in r["command_error_rad"].items() if v["ticks"]}
    print_log_summary("spine-replay", r)
    print(
        f"evaluated {r['ticks_replayed']} ticks ({r['speed_vs_real_time']:.0f}x real time); "
        f"command MAE (rad) {maes}; veto rate {100 * r['veto_rate']:.1f} %; report {args.out / 'report.md'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
