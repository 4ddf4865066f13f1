"""What every log tool says about the log it read, on its console and in its report.

The same lines everywhere: each mapped topic's measured rate and largest gap, the rate the log
was resampled to and the gaps that left out, and every item skipped (salvage notes, damaged
stretches, corrupt messages, commands for joints the robot lacks).
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from deploy.logs.mapped import MappedLog
from deploy.logs.rates import describe_rate


def log_facts(log: MappedLog) -> dict[str, Any]:
    """The report fields about ``log`` itself: measured rates, corrupt messages, skipped items."""
    return {
        "log_rates": {t: r.to_dict() for t, r in log.rates.items()},
        "corrupt_messages": log.corrupt,
        "skipped": log.skipped,
    }


def log_lines(report: dict[str, Any]) -> list[str]:
    """Human lines for a report holding ``log_facts`` (and, when resampled, ``rate_hz``,
    ``max_gap_s`` and ``gaps_s``)."""
    lines = [f"log: {describe_rate(rate)}" for rate in report.get("log_rates", {}).values()]
    if "rate_hz" in report:
        gaps, limit = report.get("gaps_s", []), report["max_gap_s"]
        shown = ", ".join(f"{a:.2f}-{b:.2f} s" for a, b in gaps[:5]) + (", ..." if len(gaps) > 5 else "")
        held = (
            f"{len(gaps)} gap(s) longer than {limit} s left out ({shown})"
            if gaps
            else f"no gap over {limit} s"
        )
        lines.append(f"resampled to {report['rate_hz']:g} Hz: {held}")
    lines += [f"skipped: {item}" for item in report.get("skipped", [])]
    return lines


def print_log_summary(tool: str, report: dict[str, Any], out: TextIO | None = None) -> None:
    """Print ``log_lines`` of ``report`` to ``out`` (default stdout), each after the tool's name."""
    for line in log_lines(report):
        print(f"{tool}: {line}", file=out or sys.stdout)
