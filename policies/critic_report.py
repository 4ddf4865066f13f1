"""Calibration of the safety critic: predicted risk against the observed violation rate.

The observed rate of a bin is the fraction of its (s, a) pairs followed by a violation within
the critic's horizon (``round(1 / (1 - gamma))`` control steps) in held-out episodes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def calibration(predicted: np.ndarray, observed: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Reliability table over ``bins`` equal-width risk bins, plus summary scores.

    Args:
        predicted: ``(N,)`` risk in [0, 1].
        observed: ``(N,)`` 0/1 violation within the horizon.

    Returns:
        ``{"bins": [{"lo", "hi", "count", "predicted", "observed"}], "ece", "brier",
        "auc", "base_rate"}`` (ECE: count-weighted mean |predicted - observed|).
    """
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(predicted, edges[1:-1]), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        m = which == b
        if not m.any():
            continue
        p, o = float(predicted[m].mean()), float(observed[m].mean())
        rows.append(
            {"lo": edges[b], "hi": edges[b + 1], "count": int(m.sum()), "predicted": p, "observed": o}
        )
        ece += m.mean() * abs(p - o)
    return {
        "bins": rows,
        "ece": float(ece),
        "brier": float(np.mean((predicted - observed) ** 2)),
        "auc": _auc(predicted, observed),
        "base_rate": float(observed.mean()),
        "samples": len(observed),
    }


def _auc(score: np.ndarray, label: np.ndarray) -> float:
    """Area under the ROC curve (rank statistic); NaN when one class is absent."""
    pos, neg = label > 0.5, label <= 0.5
    if not pos.any() or not neg.any():
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    return float((ranks[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * neg.sum()))


def plot_calibration(path: Path, table: dict[str, Any], title: str) -> None:
    """Reliability diagram (left) and the risk histogram (right) to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = table["bins"]
    fig, (ax, hx) = plt.subplots(1, 2, figsize=(10, 4.2))
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect")
    ax.plot([r["predicted"] for r in rows], [r["observed"] for r in rows], "o-", label="critic")
    ax.set(xlabel="predicted risk", ylabel="observed violation rate within horizon", xlim=(0, 1), ylim=(0, 1))
    ax.set_title(f"{title}\nECE {table['ece']:.3f}  Brier {table['brier']:.3f}  AUC {table['auc']:.3f}")
    ax.legend(loc="upper left")
    centers = [(r["lo"] + r["hi"]) / 2 for r in rows]
    hx.bar(centers, [r["count"] for r in rows], width=0.09)
    hx.set(xlabel="predicted risk", ylabel="held-out (s, a) pairs", yscale="log", xlim=(0, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
