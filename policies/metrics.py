"""Training logs: a metrics CSV that grows row by row, and learning-curve plots from it."""

from __future__ import annotations

import csv
from pathlib import Path


class MetricsLog:
    """Append-only CSV of ``{step, ...metrics}``; columns are fixed by the first row's keys
    plus any later keys (the file is rewritten when a new key appears, which is rare)."""

    def __init__(self, path: Path, keep: bool = False) -> None:
        """``keep``: continue an existing file (a resumed run); otherwise start a new one."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict[str, float]] = []
        self.columns: list[str] = []
        if keep and self.path.is_file():
            with self.path.open() as f:
                reader = csv.DictReader(f)
                self.columns = list(reader.fieldnames or [])
                self.rows = [{k: v for k, v in row.items() if v not in ("", None)} for row in reader]

    def log(self, step: int, **metrics: float) -> None:
        row = {"step": step, **metrics}
        self.rows.append(row)
        new = [k for k in row if k not in self.columns]
        if new:
            self.columns += new
            self._rewrite()
        else:
            with self.path.open("a", newline="") as f:
                csv.DictWriter(f, self.columns).writerow(row)

    def _rewrite(self) -> None:
        with self.path.open("w", newline="") as f:
            w = csv.DictWriter(f, self.columns)
            w.writeheader()
            w.writerows(self.rows)


def read_metrics(path: Path) -> dict[str, list[tuple[int, float]]]:
    """Series per column: ``{name: [(step, value), ...]}``, empty cells skipped."""
    series: dict[str, list[tuple[int, float]]] = {}
    with Path(path).open() as f:
        for row in csv.DictReader(f):
            step = int(float(row["step"]))
            for k, v in row.items():
                if k != "step" and v not in ("", None):
                    series.setdefault(k, []).append((step, float(v)))
    return series


def plot_learning_curves(csv_path: Path, png_path: Path, title: str = "") -> Path:
    """One panel per metric column, step on x; written to ``png_path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = read_metrics(csv_path)
    names = [n for n in series if n != "wall_s"]
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        steps, values = zip(*series[name], strict=True)
        ax.plot(steps, values, marker="o" if len(steps) < 30 else None)
        ax.set_title(name)
        ax.set_xlabel("gradient step")
        if name == "loss":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return Path(png_path)
