"""benchmarks/RESULTS.md as a record: each benchmark writes its own section's current table.

    from record import add_record_args, markdown_table, record

    add_record_args(parser)  # --record (default off: a quick run does not overwrite the record), --results
    ...
    if args.record:
        record("sim_throughput", "Env steps/s next to raw mj_step", markdown_table(rows), path=args.results)

A section is the text between ``<!-- results:<id> begin -->`` and ``<!-- results:<id> end -->``.
``record`` replaces it with the table's title, the command line that produced it (``sys.argv``
behind the interpreter, ``benchmarks/quiet.sh`` in front when that ran it), the date (UTC), the
machine (CPU, cores, RAM, GPU, load average), the versions that matter (Python, the code's
commit, the packages the benchmark imported), the table and its notes. Text outside the markers
is left as it is (what a benchmark measures, what its table supports: by hand); a section not in
the file yet is appended under a ``## <title>`` heading. History lives in git.
``SPINE_RESULTS=<path>`` or ``--results <path>`` writes to another file (tests, smoke runs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
MARKER = re.compile(r"<!-- results:([\w.-]+) (begin|end) -->")
# packages whose version a record names when the benchmark imported them (or asks for them)
PACKAGES = ("torch", "onnxruntime", "mujoco", "dm_control", "cyclonedds", "rosbags")


def begin_marker(section_id: str) -> str:
    return f"<!-- results:{section_id} begin -->"


def end_marker(section_id: str) -> str:
    return f"<!-- results:{section_id} end -->"


def results_path(path: Path | str | None = None) -> Path:
    """``path``, else ``$SPINE_RESULTS``, else benchmarks/RESULTS.md."""
    return Path(path or os.environ.get("SPINE_RESULTS") or RESULTS)


def add_record_args(parser: argparse.ArgumentParser) -> None:
    """``--record`` and ``--results PATH`` on a benchmark's parser."""
    parser.add_argument(
        "--record",
        action="store_true",
        help="write this run's table into its section of benchmarks/RESULTS.md (default: print only)",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        help="the results file --record writes (default: $SPINE_RESULTS, else benchmarks/RESULTS.md)",
    )


def spans(text: str) -> dict[str, tuple[int, int]]:
    """Each section id -> (start of its begin marker, end of its end marker) in ``text``.
    Raises ValueError on a marker pair that is not well-formed: an id twice, a begin inside
    another section, an end without its begin, a begin never ended."""
    out: dict[str, tuple[int, int]] = {}
    open_id, start = None, 0
    for match in MARKER.finditer(text):
        section_id, kind = match.groups()
        if kind == "begin":
            if open_id is not None:
                raise ValueError(f"results:{section_id} begins inside results:{open_id}")
            if section_id in out:
                raise ValueError(f"results:{section_id} appears twice")
            open_id, start = section_id, match.start()
        else:
            if open_id != section_id:
                raise ValueError(f"results:{section_id} ends without its begin (open: {open_id})")
            out[section_id] = (start, match.end())
            open_id = None
    if open_id is not None:
        raise ValueError(f"results:{open_id} never ends")
    return out


def read_section(section_id: str, path: Path | str | None = None) -> str | None:
    """The text between a section's markers (None: no such section or no file)."""
    file = results_path(path)
    if not file.is_file():
        return None
    text = file.read_text()
    span = spans(text).get(section_id)
    if span is None:
        return None
    return text[span[0] + len(begin_marker(section_id)) : span[1] - len(end_marker(section_id))]


def replace_section(text: str, section_id: str, body: str, title: str) -> str:
    """``text`` with the section ``section_id`` holding ``body`` (markers added); a section not
    there yet is appended under ``## title``. Nothing outside the markers changes."""
    block = f"{begin_marker(section_id)}\n{body.strip()}\n{end_marker(section_id)}"
    span = spans(text).get(section_id)
    if span is not None:
        return text[: span[0]] + block + text[span[1] :]
    return f"{text.rstrip()}\n\n## {title}\n\n{block}\n".lstrip()


def section_body(
    title: str, command: str, table: str, notes: str, date: str, machine: str, versions: str
) -> str:
    """What a section holds: the title, where the table comes from, the table, the notes."""
    head = f"**{title}**\n\nCommand: `{command}`. Date: {date}. Machine: {machine}. Versions: {versions}."
    return "\n\n".join(part.strip() for part in (head, table, notes) if part.strip())


def record(
    section_id: str,
    title: str,
    table: str,
    notes: str = "",
    *,
    command: str | None = None,
    path: Path | str | None = None,
    packages: Iterable[str] = (),
    date: str | None = None,
    machine: str | None = None,
    versions: str | None = None,
) -> Path:
    """Write ``table`` (markdown) into section ``section_id`` of the results file and return its
    path. ``command`` defaults to this process's command line, ``date`` to now (UTC), ``machine``
    and ``versions`` to this machine's and this process's; ``packages`` are named in the versions
    even when this process did not import them (the benchmark ran them in child processes)."""
    file = results_path(path)
    body = section_body(
        title,
        command if command is not None else command_line(),
        table,
        notes,
        date if date is not None else time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        machine if machine is not None else machine_line(),
        versions if versions is not None else versions_line(packages),
    )
    text = file.read_text() if file.is_file() else "# Benchmark results\n"
    file.write_text(replace_section(text, section_id, body, title))
    print(f"recorded results:{section_id} in {file}")
    return file


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """``rows`` (dicts, one per row) as a markdown table; ``columns`` (default: every key, in
    the order first seen) are the headers. Values are written with ``str`` (None: empty);
    a ``|`` in a cell is escaped."""
    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))

    def cell(value: Any) -> str:
        return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


# --- where a table comes from ----------------------------------------------------------------
def _relative(arg: str, resolve: bool = False) -> str:
    """An absolute path inside the repository relative to its root (the command reads the same
    on any checkout); with ``resolve``, a relative path is taken from the working directory."""
    path = Path(arg)
    if resolve and not path.is_absolute():
        path = Path.cwd() / path
    if path.is_absolute():
        path = Path(os.path.normpath(path))  # no symlinks followed: .venv/bin/python stays itself
        if path.is_relative_to(ROOT):
            return str(path.relative_to(ROOT))
    return arg


def _under_quiet() -> bool:
    """Whether benchmarks/quiet.sh started this process (it pauses every other Python process)."""
    try:
        parent = Path(f"/proc/{os.getppid()}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(arg.endswith(b"quiet.sh") for arg in parent)


def command_line(argv: Sequence[str] | None = None) -> str:
    """This process's command line as typed from the repository root: the interpreter, then
    ``argv`` (default ``sys.argv``), with ``benchmarks/quiet.sh`` in front when that ran it."""
    argv = sys.argv if argv is None else argv
    head = [_relative(sys.executable, resolve=True), _relative(argv[0], resolve=True)]
    cmd = shlex.join([*head, *(_relative(a) for a in argv[1:])])
    return f"benchmarks/quiet.sh {cmd}" if _under_quiet() else cmd


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def _gpus() -> str:
    """The GPUs nvidia-smi lists (name, memory), or "no GPU"."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return "no GPU"
    gpus = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    return ", ".join(gpus) if out.returncode == 0 and gpus else "no GPU"


def machine_line() -> str:
    """CPU model, cores, architecture, RAM, GPUs, and the load average now (1 / 5 / 15 min: the
    5- and 15-minute figures tell what else ran during a benchmark on a shared host)."""
    ram = _ram_gib()
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    parts = [
        f"{_cpu_model()}, {os.cpu_count()} cores ({platform.machine()})",
        f"{ram:.0f} GiB RAM" if ram is not None else "RAM unknown",
        _gpus(),
        f"load average {load} (1 / 5 / 15 min) when recorded",
    ]
    return ", ".join(parts)


def code_version() -> str:
    """The repository's commit (``git describe --always --dirty``), or "unknown"."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def system_package_version(name: str) -> str | None:
    """A Debian package's installed version (``dpkg-query``), None where there is none."""
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.SubprocessError):
        return None
    version = out.stdout.strip() if out.returncode == 0 else ""
    return version or None


def versions_line(packages: Iterable[str] = ()) -> str:
    """Python, the code's commit, and the version of each package in ``packages`` or imported by
    this process among PACKAGES."""
    wanted = [p for p in PACKAGES if p in sys.modules]
    wanted += [p for p in packages if p not in wanted]
    parts = [f"Python {platform.python_version()}", f"code {code_version()}"]
    for name in wanted:
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name} not installed")
    return ", ".join(parts)


def critic_calibration_note(critic: str | Path | None) -> list[str]:
    """The held-out calibration of a ``critic.onnx`` from its training ``report.json`` (next to
    it or, after ``spine-export <checkpoint> --out <dir>``, in that folder), as a note line."""
    report = Path(critic).parent / "report.json" if critic else None
    if report is None or not report.is_file():
        return []
    cal = json.loads(report.read_text()).get("calibration", {})
    return [
        f"Critic `{critic}`: held-out AUC {cal.get('auc', float('nan')):.3f}, "
        f"ECE {cal.get('ece', float('nan')):.3f} (its report.json)."
    ]
