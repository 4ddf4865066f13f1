"""Offline evaluation: run a bundle's Controller (policy + safety filter) over a foreign log.

    spine-replay LOG --bundle B --out O --mapping configs/replay/widowx200.yaml [--start S --end S]

The log is read through its topic mapping, resampled to the policy rate (or the mapping's
``resample.rate_hz``) by sample-and-hold,
and fed tick by tick to the same ``Controller`` the robot runs. Per joint, the replayed safe
command (and the raw policy command) are compared with the logged commands; the report also
has the safety filter's veto rate per stage, the critic's risk histogram when the Controller
reports a risk, latency, and everything the reader skipped or found odd in the log.

Episodes: each gap-free segment is cut into runs of the task's ``episode_steps`` ticks; the
Controller is reset at each, and the goal of every tick is the end effector's position at the
last tick of its episode (a hindsight goal, as ``deploy.offline.log_dataset`` labels training data).
End-effector positions come from the robot's MuJoCo model (forward kinematics, offline only).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from deploy.logs.log_report import log_facts
from deploy.logs.mapped import MappedLog, read_mapped
from deploy.logs.mapping import LogMapping
from deploy.logs.resample import Ticks, resample
from deploy.offline.evaluate_report import plot_offline, write_offline_markdown
from deploy.runtime.bundle import load_bundle
from deploy.runtime.controller import Controller, TickInfo
from deploy.runtime.latency import percentiles
from deploy.safety.filter import Stage
from sim.robot_env import make_robot_env

RISK_BINS = np.linspace(0.0, 1.0, 21)


def evaluate_log(
    log_path: Path,
    bundle_path: Path,
    mapping: LogMapping,
    out: Path,
    start_s: float = 0.0,
    end_s: float | None = None,
    goal: np.ndarray | None = None,
) -> dict[str, Any]:
    """Run the bundle's Controller over ``log_path``; write report.json/md and PNGs to ``out``."""

    env = make_robot_env(mapping.robot)
    robot = env.task_spec
    bundle = load_bundle(bundle_path)
    ctrl = Controller(bundle, robot)
    t_read = time.perf_counter()
    log = read_mapped(log_path, mapping, robot.joint_names, robot.joint_pos_min, robot.joint_pos_max)
    rate = mapping.resample.rate_hz or robot.control_hz
    ticks = resample(log, rate, mapping.resample.max_gap_s, start_s, end_s)
    read_s = time.perf_counter() - t_read
    ee = forward_kinematics(env.physics, ticks.joint_pos)
    episode = ticks.episodes(robot.episode_steps)
    goals = hindsight_goals(ee, episode) if goal is None else np.broadcast_to(goal, ee.shape)
    run = _run(ctrl, ticks, ee, goals, episode)
    report = _report(log, ticks, episode, run, robot.joint_names, read_s)
    report.update(
        log=str(log_path),
        bundle=str(bundle_path),
        mapping=mapping.source,
        goal="given" if goal is not None else "hindsight",
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    plot_offline(out, ticks, robot.joint_names, run, report)
    write_offline_markdown(out / "report.md", report)
    return report


def forward_kinematics(physics: Any, joint_pos: np.ndarray) -> np.ndarray:
    """End-effector positions ``(T, 3)`` (m) for joint positions ``(T, J)`` (rad)."""
    ee = np.empty((len(joint_pos), 3))
    zeros = np.zeros(joint_pos.shape[1])
    for i, q in enumerate(joint_pos):
        physics.set_joint_state(q, zeros)
        ee[i] = physics.ee_pos()
    return ee


def hindsight_goals(achieved: np.ndarray, episode: np.ndarray) -> np.ndarray:
    """Each tick's goal: the achieved goal at the last tick of its episode (NaN outside episodes)."""
    goals = np.full_like(achieved, np.nan)
    for ep in np.unique(episode[episode >= 0]):
        idx = np.flatnonzero(episode == ep)
        goals[idx] = achieved[idx[-1]]
    return goals


def _risk_of(tick: TickInfo) -> float:
    """The critic's Q_risk on this tick when the Controller reports one (``TickInfo.risk``), else NaN.

    Hook for the learned critic: nothing here invents a risk; without a critic the report
    says so and shows only the deterministic stages.
    """
    return float(getattr(tick, "risk", np.nan))


def _run(
    ctrl: Controller, ticks: Ticks, ee: np.ndarray, goals: np.ndarray, episode: np.ndarray
) -> dict[str, Any]:
    n, nj = len(ticks), ticks.joint_pos.shape[1]
    out = {
        "command": np.full((n, nj), np.nan),
        "policy_command": np.full((n, nj), np.nan),
        "stages": np.zeros(n, dtype=np.int64),
        "risk": np.full(n, np.nan),
        "stepped": np.zeros(n, dtype=bool),
        "policy_us": [],
        "filter_us": [],
        "errors": Counter(),
        "late": 0,
    }
    current, t_start = -1, 0
    t0 = time.perf_counter()
    for i in tqdm(range(n), desc="offline eval", unit="tick", mininterval=1.0, disable=None):
        if episode[i] < 0:
            continue
        t = int(ticks.stamps[i])
        state = {
            "joint_pos": ticks.joint_pos[i],
            "joint_vel": ticks.joint_vel[i],
            "ee_pos": ee[i],
            "goal": goals[i],
        }
        if episode[i] != current:
            ctrl.reset(state)
            current, t_start = episode[i], t
        tick = ctrl.step_info(state, now=(t - t_start) / 1e9)
        out["command"][i], out["stages"][i], out["stepped"][i] = tick.command, int(tick.stages), True
        if tick.policy_command is not None:
            out["policy_command"][i] = tick.policy_command
        out["risk"][i] = _risk_of(tick)
        if tick.policy_ran:
            out["policy_us"].append(tick.policy_us)
        out["filter_us"].append(tick.filter_us)
        if tick.error:
            out["errors"][tick.error] += 1
        out["late"] += int(
            getattr(tick, "late", False)
        )  # deadline overruns, where the Controller counts them
    out["wall_s"] = time.perf_counter() - t0
    return out


def _errors(replayed: np.ndarray, logged: np.ndarray, mask: np.ndarray, names: list[str]) -> dict[str, Any]:
    err = np.where(mask, np.abs(replayed - logged), np.nan)
    per = {}
    for j, name in enumerate(names):
        e = err[:, j][~np.isnan(err[:, j])]
        per[name] = (
            {
                "ticks": int(e.size),
                "mae": float(e.mean()),
                "rms": float(np.sqrt(np.mean(e**2))),
                "max": float(e.max()),
            }
            if e.size
            else {"ticks": 0}
        )
    return per


def _report(
    log: MappedLog, ticks: Ticks, episode: np.ndarray, run: dict[str, Any], names: list[str], read_s: float
) -> dict[str, Any]:
    stepped = run["stepped"]
    n_stepped = int(stepped.sum())
    duration = n_stepped / ticks.rate_hz
    stage_counts: Counter[str] = Counter()
    for bits in run["stages"][stepped]:
        stage_counts.update(Stage(int(bits)).names())
    risk = run["risk"][stepped]
    has_risk = bool(np.any(~np.isnan(risk)))
    mask = ticks.from_log & stepped[:, None]
    report: dict[str, Any] = {
        "topics": log.topics,
        "rate_hz": ticks.rate_hz,
        "max_gap_s": ticks.max_gap_s,
        "ticks": len(ticks),
        "ticks_replayed": n_stepped,
        "episodes": int(episode.max() + 1) if len(episode) else 0,
        "gaps_s": ticks.gaps(),
        "log_duration_s": float(ticks.stamps[-1] - ticks.stamps[0]) / 1e9,
        "read_s": read_s,
        "replay_wall_s": run["wall_s"],
        "speed_vs_real_time": duration / run["wall_s"] if run["wall_s"] > 0 else float("nan"),
        "velocity_estimated": log.velocity_estimated,
        "commanded_joints": [n for n, c in zip(names, log.commanded, strict=True) if c],
        "command_error_rad": _errors(run["command"], ticks.command, mask, names),
        "policy_error_rad": _errors(run["policy_command"], ticks.command, mask, names),
        "veto_rate": float(np.mean(run["stages"][stepped] != 0)) if n_stepped else float("nan"),
        "stage_rate": {
            s.name.lower(): stage_counts.get(s.name.lower(), 0) / max(n_stepped, 1) for s in Stage if s
        },
        "critic": (
            {
                "histogram": np.histogram(risk[~np.isnan(risk)], RISK_BINS)[0].tolist(),
                "bins": RISK_BINS.tolist(),
                "mean": float(np.nanmean(risk)),
                "p99": float(np.nanpercentile(risk, 99)),
            }
            if has_risk
            else None
        ),
        "policy_latency_us": percentiles(run["policy_us"]),
        "filter_latency_us": percentiles(run["filter_us"]),
        "policy_errors": dict(run["errors"]),
        "late_ticks": run["late"],
        "stamps": {t: s.to_dict() for t, s in log.stamps.items()},
        **log_facts(log),
        "limit_excursions": log.limit_excursions,
        "extras": {
            k: {"min": np.nanmin(v.values, axis=0).tolist(), "max": np.nanmax(v.values, axis=0).tolist()}
            for k, v in log.extras.items()
        },
    }
    return report
