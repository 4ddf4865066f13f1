"""Pictures and the randomization config of a system identification (``deploy.offline.sysid``)."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import numpy as np

from deploy.logs.rates import describe_rate

KP_SPREAD, DAMPING_SPREAD = 0.2, 0.3  # +-fraction around the fitted factor in the config


def plot_gap(
    path: Path, report: dict[str, Any], err_nominal: np.ndarray, err_fitted: np.ndarray, rate_hz: float
) -> None:
    """Per-joint RMS gap vs horizon (nominal dashed, fitted solid) and one window overlaid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = report["joint_names"]
    h = np.arange(1, err_nominal.shape[1] + 1) / rate_hz
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for j, name in enumerate(names):
        color = f"C{j}"
        axes[0].plot(h, np.sqrt(np.mean(err_nominal[:, :, j] ** 2, axis=0)), color=color, ls="--", lw=1)
        axes[0].plot(h, np.sqrt(np.mean(err_fitted[:, :, j] ** 2, axis=0)), color=color, lw=1.5, label=name)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("horizon (s)")
    axes[0].set_ylabel("RMS |sim - real| (rad)")
    axes[0].set_title("sim-to-real gap on held-out windows: nominal (dashed) vs fitted (solid)", fontsize=9)
    axes[0].legend(fontsize=7)
    worst = int(np.argmax(np.abs(err_nominal[:, -1, 0])))
    for label, err, ls in (("nominal", err_nominal, "--"), ("fitted", err_fitted, "-")):
        axes[1].plot(h, err[worst, :, 0], ls=ls, label=f"{names[0]} {label}")
    axes[1].axhline(0, color="0.6", lw=0.8)
    axes[1].set_xlabel("time in window (s)")
    axes[1].set_ylabel("sim - real (rad)")
    axes[1].set_title(f"{names[0]}: the held-out window with the largest nominal gap", fontsize=9)
    axes[1].legend(fontsize=7)
    f = report["fitted"]
    fig.suptitle(
        f"fitted: kp x{f['kp_scale']:.3g}, damping x{f['damping_scale']:.3g}, "
        f"friction x{f['frictionloss_scale']:.3g}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _rate_line(report: dict[str, Any]) -> str:
    rates = list(report.get("log_rates", {}).values())
    return describe_rate(rates[0]) if rates else "rate not measured"


def randomization_yaml(report: dict[str, Any]) -> str:
    """A ``configs/randomization`` file centred on the fitted factors."""
    f, h = report["fitted"], report["held_out_rms_rad"]
    kp, damping, loss = f["kp_scale"], f["damping_scale"], f["frictionloss_scale"]
    date = datetime.date.today().isoformat()
    return "\n".join(
        [
            f"# Fitted to a real robot log (robot task {report['robot']}) by spine-log-sim ({date}):",
            f"#   {report['log']}",
            f"# Log: {_rate_line(report)}; replayed at {report['rate_hz']:g} Hz.",
            f"# Held-out sim-to-real RMS over {report['config']['horizon_s']} s open-loop windows: "
            f"nominal {h['nominal']:.4f} rad -> fitted {h['fitted']:.4f} rad.",
            "# Factors are relative to the robot's MJCF; each range is the fit +-"
            f"{KP_SPREAD:.0%} (gain) / +-{DAMPING_SPREAD:.0%} (damping, dry friction).",
            "# Fields: sim/randomization.py::RandomizationConfig.",
            "defaults:",
            "  - randomization_schema",
            "  - _self_",
            "",
            "mass_scale: [1.0, 1.0]  # not identified (the log moves one joint about a vertical axis)",
            "friction_scale: [1.0, 1.0]  # contact friction: the arm touches nothing in the log",
            f"kp_scale: [{kp * (1 - KP_SPREAD):.4g}, {kp * (1 + KP_SPREAD):.4g}]  # servo gain",
            f"damping_scale: [{damping * (1 - DAMPING_SPREAD):.4g}, {damping * (1 + DAMPING_SPREAD):.4g}]"
            "  # joint damping",
            f"frictionloss_scale: [{loss * (1 - DAMPING_SPREAD):.4g}, {loss * (1 + DAMPING_SPREAD):.4g}]"
            "  # joint dry friction (weakly identified by this log)",
            f"obs_noise_std: {report['obs_noise_std_rad']:.3g}  # joint-position noise of still joints (rad)",
            "obs_noise_std_fields: {}",
            "action_latency: [0, 1]  # control steps",
            "",
        ]
    )
