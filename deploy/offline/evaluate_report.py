"""Pictures and markdown for an offline evaluation (``deploy.offline.evaluate``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deploy.logs.rates import describe_rate
from deploy.logs.resample import Ticks

COMMANDS_PNG = "offline_commands.png"
SAFETY_PNG = "offline_safety.png"


def plot_offline(
    out: Path, ticks: Ticks, names: Sequence[str], run: dict[str, Any], report: dict[str, Any]
) -> None:
    """``offline_commands.png`` (per joint: measured, logged, replayed, policy) and
    ``offline_safety.png`` (risk histogram, stage rates, latency)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = (ticks.stamps - ticks.stamps[0]) / 1e9
    fig, axes = plt.subplots(len(names), 1, figsize=(11, 1.9 * len(names) + 1), sharex=True, squeeze=False)
    for j, (ax, name) in enumerate(zip(axes[:, 0], names, strict=True)):
        ax.plot(t, ticks.joint_pos[:, j], color="0.6", lw=1.0, label="measured")
        logged = np.where(ticks.from_log[:, j], ticks.command[:, j], np.nan)
        ax.plot(t, logged, color="C0", lw=1.2, label="logged command")
        ax.plot(t, run["command"][:, j], color="C3", lw=1.0, ls="--", label="replayed safe command")
        ax.plot(t, run["policy_command"][:, j], color="C2", lw=0.8, ls=":", label="policy (raw)")
        e = report["command_error_rad"][name]
        note = f"MAE {e['mae']:.3g} rad" if e["ticks"] else "not commanded in the log"
        ax.set_ylabel(f"{name}\n(rad)", fontsize=8)
        ax.set_title(f"{name}: {note}", fontsize=8, loc="left")
    for a, b in report["gaps_s"]:
        for ax in axes[:, 0]:
            ax.axvspan(a, b, color="orange", alpha=0.2)
    axes[0, 0].legend(ncol=4, fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("time (s)  (orange: gaps in the joint states)")
    fig.subplots_adjust(left=0.08, right=0.98, top=0.96, bottom=0.06, hspace=0.45)  # tight_layout: ~1 s
    fig.savefig(out / COMMANDS_PNG, dpi=90)
    plt.close(fig)

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    critic = report["critic"]
    if critic is not None:
        bins = np.asarray(critic["bins"])
        axes[0].bar(bins[:-1], critic["histogram"], width=np.diff(bins), align="edge", color="C4")
        axes[0].set_xlabel("Q_risk")
        axes[0].set_ylabel("ticks")
    else:
        axes[0].text(0.5, 0.5, "no critic risk reported\nby this Controller", ha="center", va="center")
        axes[0].set_xticks([])
        axes[0].set_yticks([])
    axes[0].set_title("critic risk histogram", fontsize=9)
    rates = report["stage_rate"]
    axes[1].barh(list(rates), [100 * v for v in rates.values()], color="C1")
    axes[1].set_xlabel("% of replayed ticks")
    axes[1].set_title(f"safety stages that acted (veto rate {100 * report['veto_rate']:.1f} %)", fontsize=9)
    axes[1].tick_params(labelsize=7)
    samples = [np.asarray(run[k]) for k in ("policy_us", "filter_us") if run[k]]
    if samples:
        every = np.concatenate(samples)
        bins = np.logspace(np.log10(max(every.min(), 0.1)), np.log10(every.max() * 1.01), 60)
    for key, color in (("policy_us", "C0"), ("filter_us", "C3")):
        if run[key]:
            axes[2].hist(np.asarray(run[key]), bins=bins, alpha=0.6, color=color, label=key)
    axes[2].set_xscale("log")
    axes[2].set_xlabel("µs per call")
    axes[2].legend(fontsize=7)
    axes[2].set_title(f"timing ({report['speed_vs_real_time']:.0f}x real time)", fontsize=9)
    fig.subplots_adjust(left=0.09, right=0.98, top=0.9, bottom=0.15, wspace=0.45)
    fig.savefig(out / SAFETY_PNG, dpi=90)
    plt.close(fig)


def write_offline_markdown(path: Path, report: dict[str, Any]) -> Path:
    """A human summary of an offline evaluation report."""
    lines = [
        "# Spine offline evaluation",
        "",
        f"- log: `{report['log']}` (mapping `{report['mapping']}`)",
        f"- bundle: `{report['bundle']}`; goals: {report['goal']}",
        f"- {report['ticks_replayed']} of {report['ticks']} ticks at {report['rate_hz']:g} Hz in "
        f"{report['episodes']} episodes, {report['log_duration_s']:.1f} s of log; read in "
        f"{report['read_s']:.2f} s, replayed in {report['replay_wall_s']:.2f} s "
        f"({report['speed_vs_real_time']:.0f}x real time)",
        f"- commanded joints in the log: {report['commanded_joints'] or 'none'}",
        f"- veto rate (any safety stage changed the command): {100 * report['veto_rate']:.1f} %",
        "",
        "| joint | ticks | MAE safe cmd (rad) | max (rad) | MAE policy (rad) |",
        "|---|---|---|---|---|",
    ]
    for name, e in report["command_error_rad"].items():
        p = report["policy_error_rad"][name]
        if e["ticks"]:
            lines.append(f"| {name} | {e['ticks']} | {e['mae']:.3g} | {e['max']:.3g} | {p['mae']:.3g} |")
        else:
            lines.append(f"| {name} | 0 | not commanded | | |")
    lines += ["", "| safety stage | % of ticks |", "|---|---|"]
    lines += [f"| {k} | {100 * v:.2f} |" for k, v in report["stage_rate"].items()]
    critic = report["critic"]
    lines.append("")
    if critic is None:
        lines.append("critic: the Controller reported no risk (no critic in this bundle); histogram empty")
    else:
        lines.append(f"critic risk: mean {critic['mean']:.3g}, p99 {critic['p99']:.3g}")
    pl, fl = report["policy_latency_us"], report["filter_latency_us"]
    lines.append(
        f"\npolicy latency p50 {pl['p50']:.1f} µs, p99 {pl['p99']:.1f} µs; filter p50 {fl['p50']:.1f} µs; "
        f"{report['late_ticks']} ticks over the Controller's deadline (wall-clock time of this replay)"
    )
    lines += ["", "## What the log held", ""]
    lines += [f"- {describe_rate(rate)}" for rate in report.get("log_rates", {}).values()]
    for topic, s in report["stamps"].items():
        lines.append(
            f"- `{topic}`: {s['messages']} messages, {s['non_monotonic']} non-monotonic and "
            f"{s['duplicated']} duplicated stamps, largest gap {s['max_gap_s']:.3f} s"
        )
    if report["gaps_s"]:
        lines.append(f"- gaps longer than {report['max_gap_s']} s (not replayed): {report['gaps_s']}")
    for name, x in report["limit_excursions"].items():
        lines.append(
            f"- joint `{name}` beyond its published limits on {x['samples']} samples "
            f"(worst by {x['worst_rad']:.3f} rad)"
        )
    for item in report["skipped"]:
        lines.append(f"- skipped: {item}")
    for name, v in report["extras"].items():
        lines.append(f"- {name}: min {v['min']}, max {v['max']}")
    if report["velocity_estimated"]:
        lines.append("- joint velocities were absent and estimated from positions")
    lines += ["", f"![commands]({COMMANDS_PNG})", "", f"![safety]({SAFETY_PNG})", ""]
    path.write_text("\n".join(lines))
    return path
