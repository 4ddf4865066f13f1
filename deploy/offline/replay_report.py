"""Pictures and markdown for a replay report."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deploy.logs.rates import describe_rate
from deploy.safety.filter import Stage


def plot_replay(
    path: Path,
    stamps: np.ndarray,
    joint_names: Sequence[str],
    replayed: np.ndarray,
    logged: np.ndarray | None,
    stage_bits: np.ndarray,
) -> Path:
    """Commands (logged solid, replayed dashed), |error| per joint, and safety stage events."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = (stamps - stamps[0]) / 1e9
    fig, axes = plt.subplots(3, 1, figsize=(11, 8), sharex=True, height_ratios=[3, 2, 1])
    colors = plt.cm.tab10(np.arange(len(joint_names)) % 10)
    for j, name in enumerate(joint_names):
        if logged is not None:
            axes[0].plot(t, logged[:, j], color=colors[j], lw=1.2, label=name)
        axes[0].plot(
            t,
            replayed[:, j],
            color=colors[j],
            lw=1.0,
            ls="--",
            label=None if logged is not None else name,
        )
        if logged is not None:
            axes[1].semilogy(t, np.abs(replayed[:, j] - logged[:, j]) + 1e-12, color=colors[j], lw=0.8)
    axes[0].set_ylabel("command (rad)")
    axes[0].set_title("joint commands: logged (solid) vs replayed (dashed)")
    axes[0].legend(ncol=len(joint_names), fontsize=7, loc="upper right")
    axes[1].set_ylabel("|replayed - logged| (rad)")
    if logged is None:
        axes[1].text(0.5, 0.5, "log has no /spine/command", ha="center", transform=axes[1].transAxes)
    elif np.nanmax(np.abs(replayed - logged), initial=0.0) == 0.0:
        axes[1].text(
            0.5,
            0.5,
            "replayed commands are bit-identical to the logged ones (error 0)",
            ha="center",
            transform=axes[1].transAxes,
        )
    stages = [s for s in Stage if s]
    for k, s in enumerate(stages):
        hit = (stage_bits & int(s)) != 0
        axes[2].scatter(t[hit], np.full(hit.sum(), k), s=4, marker="|")
    if not np.any(stage_bits):
        axes[2].text(0.5, 0.5, "no safety stage acted", ha="center", va="center", transform=axes[2].transAxes)
    axes[2].set_yticks(range(len(stages)), [s.name.lower() for s in stages], fontsize=7)
    axes[2].set_ylim(-0.5, len(stages) - 0.5)
    axes[2].set_xlabel("time (s)")
    axes[2].set_title("safety stages that acted (replayed)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_markdown(path: Path, report: dict[str, Any]) -> Path:
    """A short human summary of ``report``."""
    lines = [
        "# Spine replay report",
        "",
        f"- log: `{report['log']}`",
        f"- bundle: `{report['bundle']}`",
        f"- ticks: {report['ticks']} over {report['log_duration_s']:.1f} s of log, replayed in "
        f"{report['replay_wall_s']:.2f} s ({report['speed_vs_real_time']:.0f}x real time)",
        f"- safety interventions (replayed): {report['interventions']}",
    ]
    if report.get("joint_rate"):
        lines.append(f"- joint states: {describe_rate(report['joint_rate'])}")
    for item in report.get("skipped", []):
        lines.append(f"- skipped: {item}")
    if report.get("velocity_estimated"):
        lines.append("- joint velocities were absent and estimated from positions")
    err = report.get("command_error_rad")
    if err:
        lines += ["", "| joint | max abs error (rad) | RMS error (rad) |", "|---|---|---|"]
        for name, mx in err["per_joint_max"].items():
            lines.append(f"| {name} | {mx:.3g} | {err['per_joint_rms'][name]:.3g} |")
        lines.append(f"\nmatched ticks: {err['matched_ticks']} of {report['ticks']}")
    if report.get("stages_agree_fraction") is not None:
        lines.append(
            f"\nreplayed safety stages equal the logged ones on "
            f"{report['stages_agree_fraction']:.1%} of ticks"
        )
    lat = report.get("policy_latency_us")
    if lat:
        lines.append(f"\npolicy latency: p50 {lat['p50']:.1f} µs, p99 {lat['p99']:.1f} µs")
    lines += ["", "![replay](replay.png)", ""]
    path.write_text("\n".join(lines))
    return path
