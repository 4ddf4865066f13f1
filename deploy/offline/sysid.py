"""Sim-to-real gap and system identification from a real log, written as a randomization config.

    spine-log-sim LOG --mapping configs/replay/widowx200.yaml --out runs/sysid \
        [--write-config configs/randomization/widowx200.yaml]

0. Refuse a log that cannot identify anything, saying what is missing: one without commands
   (the replay is driven by them) or without motion (fewer than 2 windows where a commanded
   joint moves more than ``MIN_MOTION_RAD``).
1. Resample the log (``--rate``, else the mapping's ``resample.rate_hz``, else 50 Hz), cut windows
   of ``--horizon`` seconds inside gap-free segments.
2. Replay every window open loop in MuJoCo (``deploy.offline.sim_replay``) with the nominal model: the
   per-joint error as a function of horizon is the sim-to-real gap.
3. Fit three factors (servo gain, joint damping, joint friction) that minimize the mean squared
   gap on half of the windows (Nelder-Mead in log space), and report the gap of the fitted model
   on the other half (held out).
4. Write ``sysid.json``, ``sim_gap.png`` and a domain-randomization config centred on the fit;
   the report and the console state the log's measured rates, gaps and skipped items.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize
from tqdm import tqdm

from deploy.logs.log_report import log_facts, print_log_summary
from deploy.logs.mapped import read_mapped
from deploy.logs.mapping import LogMapping, load_mapping
from deploy.logs.read import LogError
from deploy.logs.resample import Ticks, resample
from deploy.offline.sim_replay import ParamModel, SimParams, gap_by_horizon, replay_windows, window_starts
from deploy.offline.sysid_report import plot_gap, randomization_yaml
from sim.robot_env import make_robot_env

BOUND = 4.0  # fitted factors stay within [e^-4, e^4] of nominal
DEFAULT_RATE_HZ = 50.0  # replay rate when neither --rate nor the mapping's resample.rate_hz sets one
MIN_MOTION_RAD = 0.02  # a window moves when a commanded joint travels more than this in it


@dataclass(frozen=True)
class SysIdConfig:
    """Windows and fit budget."""

    rate_hz: float | None = None  # replay rate (Hz); None: the mapping's resample.rate_hz, else 50
    horizon_s: float = 1.0  # open-loop window length (s)
    stride_s: float = 0.5  # time between window starts (s)
    max_windows: int = 80  # windows used in all (half fit, half held out), evenly spread
    maxfev: int = 90  # Nelder-Mead function evaluations
    horizons_s: tuple[float, ...] = (0.02, 0.1, 0.25, 0.5, 1.0)  # horizons reported (s)


def identify(
    log_path: Path,
    mapping: LogMapping,
    out: Path,
    cfg: SysIdConfig = SysIdConfig(),
    start_s: float = 0.0,
    end_s: float | None = None,
) -> dict[str, Any]:
    """Measure the sim-to-real gap, fit ``SimParams``, write the report to ``out``; returns it."""
    t0 = time.perf_counter()
    env = make_robot_env(mapping.robot)
    spec, physics = env.task_spec, env.physics
    rate_from = (
        "--rate" if cfg.rate_hz else "mapping resample.rate_hz" if mapping.resample.rate_hz else "default"
    )
    cfg = replace(cfg, rate_hz=cfg.rate_hz or mapping.resample.rate_hz or DEFAULT_RATE_HZ)
    _check_rate(cfg.rate_hz, rate_from, mapping, physics.timestep)
    log = read_mapped(log_path, mapping, spec.joint_names, spec.joint_pos_min, spec.joint_pos_max)
    _require_commands(log_path, mapping, log.command is not None and log.commanded.any())
    ticks = resample(log, cfg.rate_hz, mapping.resample.max_gap_s, start_s, end_s)
    horizon = round(cfg.horizon_s * cfg.rate_hz)
    stride = max(1, round(cfg.stride_s * cfg.rate_hz))
    starts, left_out = window_starts(ticks, horizon, stride, limits=(physics.pos_min, physics.pos_max))
    if len(starts) < 2:
        raise LogError(
            f"log {log_path}: fewer than 2 usable windows of {cfg.horizon_s} s (gap-free, within the "
            f"model's limits, uncommanded joints still): {len(starts)}; left out: {left_out}"
        )
    moving = _require_motion(log_path, ticks, starts, horizon, log.commanded, spec.joint_names)
    starts = starts[np.unique(np.linspace(0, len(starts) - 1, min(cfg.max_windows, len(starts))).astype(int))]
    fit_w, test_w = starts[0::2], starts[1::2]
    params = ParamModel(physics.model)

    def gap(p: SimParams, windows: np.ndarray) -> np.ndarray:
        params.apply(p)
        return replay_windows(physics, ticks, windows, horizon)

    bar = tqdm(total=cfg.maxfev, desc="sysid", unit="eval", disable=None)

    def loss(x: np.ndarray) -> float:
        bar.update()
        return float(np.mean(gap(SimParams(*np.exp(np.clip(x, -BOUND, BOUND))), fit_w) ** 2))

    nominal = SimParams()
    loss0 = loss(np.zeros(3))
    res = minimize(
        loss,
        np.zeros(3),
        method="Nelder-Mead",
        options={"maxfev": cfg.maxfev, "xatol": 0.01, "initial_simplex": _simplex()},
    )
    bar.close()
    fitted = SimParams(*np.exp(np.clip(res.x, -BOUND, BOUND)).tolist())
    err_nominal, err_fitted = gap(nominal, test_w), gap(fitted, test_w)
    params.apply(nominal)
    report: dict[str, Any] = {
        "log": str(log_path),
        "mapping": mapping.source,
        "robot": mapping.robot,
        "config": asdict(cfg),
        "rate_from": rate_from,
        "rate_hz": cfg.rate_hz,
        "max_gap_s": ticks.max_gap_s,
        "gaps_s": ticks.gaps(),
        "windows": {
            "fit": len(fit_w),
            "held_out": len(test_w),
            "horizon_ticks": horizon,
            "moving": moving,
            "left_out": left_out,
        },
        "commanded_joints": [n for n, c in zip(spec.joint_names, log.commanded, strict=True) if c],
        "joint_names": list(spec.joint_names),
        "nominal": nominal.to_dict(),
        "fitted": fitted.to_dict(),
        "fit_loss": {"nominal": loss0, "fitted": float(res.fun), "evaluations": int(res.nfev)},
        "gap_nominal": gap_by_horizon(err_nominal, cfg.rate_hz, cfg.horizons_s),
        "gap_fitted": gap_by_horizon(err_fitted, cfg.rate_hz, cfg.horizons_s),
        "held_out_rms_rad": {"nominal": _rms(err_nominal), "fitted": _rms(err_fitted)},
        "obs_noise_std_rad": _noise(ticks.joint_pos, log.commanded),
        **log_facts(log),
        "elapsed_s": 0.0,
    }
    out.mkdir(parents=True, exist_ok=True)
    plot_gap(out / "sim_gap.png", report, err_nominal, err_fitted, cfg.rate_hz)
    (out / "randomization.yaml").write_text(randomization_yaml(report))
    report["elapsed_s"] = round(time.perf_counter() - t0, 2)
    (out / "sysid.json").write_text(json.dumps(report, indent=2))
    return report


def _check_rate(rate_hz: float, rate_from: str, mapping: LogMapping, timestep: float) -> None:
    """A replay rate whose period is not a whole number of physics steps raises ``LogError``."""
    steps = 1.0 / (rate_hz * timestep)
    if round(steps) < 1 or abs(steps - round(steps)) > 1e-6:
        raise LogError(
            f"replay rate {rate_hz:g} Hz (from {rate_from}, mapping {mapping.source}): the {mapping.robot} "
            f"model steps every {timestep:g} s, which does not divide 1/{rate_hz:g} s; choose a rate that "
            f"divides {1 / timestep:g} Hz"
        )


def _require_commands(log_path: Path, mapping: LogMapping, commanded: bool) -> None:
    """A log without commands raises ``LogError`` saying so: nothing drives the replay."""
    if commanded:
        return
    what = (
        f"mapping {mapping.source} names no command topic"
        if mapping.command is None
        else f"its command topic {mapping.command.topic} holds no command for the robot's joints"
    )
    raise LogError(
        f"log {log_path}: no commands ({what}); system identification replays the commands the "
        f"robot was sent and compares where the model and the robot went. Add a command: section "
        f"naming the topic the robot's controller read (kind single, array, joint_state or trajectory)"
    )


def _require_motion(
    log_path: Path, ticks: Ticks, starts: np.ndarray, horizon: int, commanded: np.ndarray, names: list[str]
) -> int:
    """The windows where a commanded joint moves more than ``MIN_MOTION_RAD``; fewer than 2
    raise ``LogError`` saying how far they moved (a log of a robot standing still)."""
    travel = np.array(
        [np.ptp(ticks.joint_pos[s : s + horizon + 1][:, commanded], axis=0).max() for s in starts]
    )
    moving = int(np.sum(travel > MIN_MOTION_RAD))
    if moving < 2:
        joints = [n for n, c in zip(names, commanded, strict=True) if c]
        raise LogError(
            f"log {log_path}: no motion to identify: the commanded joint(s) {joints} travel at most "
            f"{travel.max():.4f} rad within any of the {len(starts)} usable windows; system "
            f"identification needs at least 2 windows where they move more than {MIN_MOTION_RAD} rad"
        )
    return moving


def _simplex() -> np.ndarray:
    """Initial Nelder-Mead simplex in log space: nominal and each factor x e^1."""
    return np.vstack([np.zeros(3), np.eye(3)])


def _rms(err: np.ndarray) -> float:
    return float(np.sqrt(np.mean(err**2)))


def _noise(q: np.ndarray, commanded: np.ndarray) -> float:
    """Joint position noise (rad): std of tick-to-tick changes of the joints the log does not
    command, over ticks where they sit still (|change| < 0.01 rad), divided by sqrt(2)."""
    d = np.diff(q[:, ~commanded], axis=0).ravel()
    d = d[np.abs(d) < 0.01]
    return float(np.std(d) / np.sqrt(2)) if d.size else 0.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="spine-log-sim", description=__doc__.splitlines()[0])
    ap.add_argument("log", type=Path, help="rosbag2 folder (MCAP or sqlite3) or ROS 1 .bag")
    ap.add_argument("--mapping", type=Path, required=True, help="topic mapping YAML (configs/replay/)")
    ap.add_argument("--out", type=Path, required=True, help="report folder")
    ap.add_argument("--start", type=float, default=0.0, help="window start (s after the first joint state)")
    ap.add_argument("--end", type=float, default=None, help="window end (s)")
    ap.add_argument(
        "--rate",
        type=float,
        default=None,
        help="replay rate (Hz; default: the mapping's resample.rate_hz, else 50)",
    )
    ap.add_argument("--horizon", type=float, default=SysIdConfig.horizon_s, help="window length (s)")
    ap.add_argument("--maxfev", type=int, default=SysIdConfig.maxfev, help="fit evaluations")
    ap.add_argument("--write-config", type=Path, help="also write the randomization config here")
    args = ap.parse_args(argv)
    cfg = SysIdConfig(rate_hz=args.rate, horizon_s=args.horizon, maxfev=args.maxfev)
    try:
        r = identify(args.log, load_mapping(args.mapping), args.out, cfg, args.start, args.end)
    except (FileNotFoundError, ValueError) as e:
        print(f"spine-log-sim: {e}", file=sys.stderr)
        return 1
    if args.write_config:
        args.write_config.write_text((args.out / "randomization.yaml").read_text())
    print_log_summary("spine-log-sim", r)
    h = r["held_out_rms_rad"]
    print(
        f"replayed at {r['rate_hz']:g} Hz ({r['rate_from']}); {r['windows']['fit']} + "
        f"{r['windows']['held_out']} windows ({r['windows']['moving']} with motion); commanded joints "
        f"{r['commanded_joints']}"
    )
    print(
        f"sim-to-real gap (held-out RMS over {r['config']['horizon_s']} s windows): "
        f"nominal {h['nominal']:.4f} rad -> fitted {h['fitted']:.4f} rad with {r['fitted']}; "
        f"report {args.out / 'sysid.json'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
