"""benchmarks/RESULTS.md as a record: ``record`` rewrites one section between its markers and
nothing else, the file's markers are well-formed, every benchmark script takes ``--record``, and
every figure the README quotes is in RESULTS.md."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import main_job  # noqa: E402
import policy_results  # noqa: E402
import record as rec  # noqa: E402

SCRIPTS = (
    "inference_latency",
    "sim_throughput",
    "policy_results",
    "policy_eval",
    "push_modes",
    "replay_throughput",
    "stack_latency",
    "ros_faults",
    "safety_loop",
    "safety_efficacy",
    "main_job",
    "scale",
    "scale_train",
)
SECTIONS = {
    "main_job",
    "inference_latency",
    "sim_throughput",
    "policy_results",
    "policy_eval",
    "push_modes",
    "replay_throughput",
    "stack_latency",
    "ros_faults",
    "safety_loop",
    "safety_efficacy_reach_obstacles",
    "safety_efficacy_push",
    "scale_sim",
    "scale_train",
}
FIXED = {"command": ".venv/bin/python benchmarks/x.py", "date": "D", "machine": "M", "versions": "V"}
BEFORE = """# Benchmark results

Prose by hand.

## A

Measures: a.

<!-- results:a begin -->
old a
<!-- results:a end -->

- a's explanation, by hand.

## B

<!-- results:b begin -->
| x |
|---|
| 1 |
<!-- results:b end -->
"""


def test_record_replaces_only_its_section(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    path.write_text(BEFORE)
    rec.record("a", "Title A", "| k | v |\n|---|---|\n| 1 | 2 |", "- a note", path=path, **FIXED)
    text = path.read_text()
    head, rest = BEFORE.split("<!-- results:a begin -->")
    tail = rest.split("<!-- results:a end -->")[1]
    assert text.startswith(head) and text.endswith(tail)  # everything outside a's markers as it was
    body = rec.read_section("a", path)
    assert body is not None and "old a" not in body
    assert "**Title A**" in body and "Command: `.venv/bin/python benchmarks/x.py`" in body
    assert "| 1 | 2 |" in body and body.rstrip().endswith("- a note")
    assert rec.read_section("b", path) == BEFORE.split("results:b begin -->")[1].split("<!--")[0]


def test_record_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    path.write_text(BEFORE)
    rec.record("b", "Title B", "| x |\n|---|\n| 2 |", path=path, **FIXED)
    once = path.read_text()
    rec.record("b", "Title B", "| x |\n|---|\n| 2 |", path=path, **FIXED)
    assert path.read_text() == once
    assert once.count("results:b begin") == 1 and "| 1 |" not in once


def test_record_appends_a_new_section(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    path.write_text(BEFORE)
    rec.record("c", "Title C", "| y |\n|---|\n| 3 |", path=path, **FIXED)
    text = path.read_text()
    assert text.startswith(BEFORE.rstrip())
    assert text.index("## Title C") > text.index("<!-- results:b end -->")
    assert set(rec.spans(text)) == {"a", "b", "c"}
    missing = tmp_path / "new.md"  # no file yet: one is made
    rec.record("c", "Title C", "| y |\n|---|\n| 3 |", path=missing, **FIXED)
    assert rec.read_section("c", missing) is not None


@pytest.mark.parametrize(
    "text",
    [
        "<!-- results:a begin -->\n<!-- results:a end -->\n<!-- results:a begin -->\n<!-- results:a end -->",
        "<!-- results:a begin -->\n<!-- results:b begin -->\n<!-- results:b end -->\n<!-- results:a end -->",
        "<!-- results:a end -->",
        "<!-- results:a begin -->\n",
        "<!-- results:a begin -->\n<!-- results:b end -->",
    ],
)
def test_malformed_markers_are_refused(text: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="results:"):
        rec.spans(text)
    path = tmp_path / "RESULTS.md"
    path.write_text(text)
    with pytest.raises(ValueError):
        rec.record("a", "A", "| x |\n|---|", path=path, **FIXED)
    assert path.read_text() == text  # a file it cannot read as sections is left alone


def test_results_md_sections_are_well_formed_and_unique() -> None:
    text = rec.RESULTS.read_text()
    spans = rec.spans(text)  # raises on a duplicate, nested, unended or unbegun marker
    assert set(spans) == SECTIONS
    assert len(re.findall(r"<!-- results:[\w.-]", text)) == 2 * len(SECTIONS)  # none misspelt
    assert "policy_results:start" not in text  # the old markers are gone
    for section_id in SECTIONS:  # each holds a table
        assert "\n|---" in (rec.read_section(section_id) or ""), section_id


def test_markdown_table() -> None:
    table = rec.markdown_table([{"a": 1, "b": "x|y"}, {"a": None, "c": 2.5}])
    assert table.splitlines() == ["| a | b | c |", "|---|---|---|", "| 1 | x\\|y |  |", "|  |  | 2.5 |"]
    assert rec.markdown_table([{"a": 1, "b": 2}], ["b"]).splitlines()[2] == "| 2 |"


def test_command_line_is_relative_to_the_repository() -> None:
    cmd = rec.command_line([str(BENCHMARKS / "x.py"), "--out", str(REPO / "runs" / "x"), "two words"])
    assert cmd.split()[1:4] == ["benchmarks/x.py", "--out", "runs/x"]
    assert cmd.endswith("'two words'")


def test_results_path_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SPINE_RESULTS", str(tmp_path / "r.md"))
    assert rec.results_path() == tmp_path / "r.md"
    assert rec.results_path(tmp_path / "s.md") == tmp_path / "s.md"
    monkeypatch.delenv("SPINE_RESULTS")
    assert rec.results_path() == rec.RESULTS


def test_policy_results_keeps_rows_it_did_not_rerun(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    head = "| task | family | success mean ± std | per seed | train wall-clock per run | gradient steps "
    head += "| run on | note |\n|---|---|---|---|---|---|---|---|"
    old = f"{head}\n| reach | gcbc | 1% ± 0 | old | 1 s | 1 | then | |"
    old += "\n| maze | hiql | 2% ± 0 | old | 1 s | 1 | then | |"
    path.write_text(
        f"# R\n\n<!-- results:policy_results begin -->\n{old}\n<!-- results:policy_results end -->\n"
    )
    new = f"{head}\n| reach | gcbc | 99% ± 0 | new | 9 s | 9 | now | |"
    policy_results.write_results(new, argparse.Namespace(threads=1, results=path))
    body = rec.read_section("policy_results", path) or ""
    rows = [line for line in body.splitlines() if line.startswith("| reach") or line.startswith("| maze")]
    assert rows == [new.splitlines()[2], old.splitlines()[3]]  # reach rerun, maze kept, PAIRS order


def test_main_job_times_each_step_from_the_trace() -> None:
    trace = "\n".join(
        [
            "+[main_job 100.0] source ./spine.sh demo",
            "++[main_job 101.5] dpkg-query -W libegl1",
            "++[main_job 110.0] /r/.venv/bin/spine-collect task=reach",
            "++[main_job 126.0] /r/.venv/bin/spine-train task=reach",
            "+++[main_job 130.0] echo inside a subshell",
            "++[main_job 220.0] /r/.venv/bin/spine-train-critic task=reach",
            "++[main_job 250.0] /r/.venv/bin/spine-export a",
            "++[main_job 255.0] /r/.venv/bin/spine-export b",
            "++[main_job 260,0] /r/.venv/bin/spine-run bundle",
            "++[main_job 262.0] /r/.venv/bin/spine-replay log",
            "++[main_job 270.0] /r/.venv/bin/spine-summary out",
        ]
    )
    times = main_job.step_times(trace, 99.0, 272.0)
    expected = {"setup": 11.0, "collect": 16.0, "train": 94.0, "critic + exports": 40.0, "run": 2.0}
    assert times == pytest.approx({**expected, "replay": 8.0, "summary": 2.0, "total": 173.0})


def test_main_job_row_from_the_demo_outputs(tmp_path: Path) -> None:
    files = {
        "data/reach.json": '{"episodes": 300}',
        "train/summary.json": '{"steps": 20000}',
        "run/summary.json": '{"episodes": 20, "success_rate": 1.0, "policy_latency_us": {"p50": 53.5},'
        ' "critic": {"evaluations": 2000, "vetoes": 0, "risk": {"p99": 0.12}}}',
        "bundle/report.json": '{"latency_us": {"p50": 17.7}}',
        "replay/report.json": '{"ticks": 2000, "speed_vs_real_time": 336.2,'
        ' "command_error_rad": {"max": 0.0}}',
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    times = {
        "collect": 16.2,
        "train": 94.0,
        "critic + exports": 40.0,
        "run": 2.0,
        "replay": 8.0,
        "total": 240.0,
    }
    row = main_job.demo_row(tmp_path, times, "D")
    assert row["collect (300 ep)"] == "16 s" and row["train (20k steps)"] == "94 s"
    assert row["run 20 ep"].startswith("2 s, 2000 critic evaluations, 0 vetoes, risk p99 0.12;")
    assert row["replay 2000 ticks"] == "8 s, 336x real time, bit-exact"
    assert row["total"] == "4.0 min" and row["success (20 ep, 3 cm)"] == "100 %"


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_takes_record(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{script}.py"), "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--record" in done.stdout and "--results" in done.stdout


def _figures(text: str) -> set[str]:
    """Numbers quoted with a unit (%, µs, ms, x; both ends of a range) and every decimal number of
    the Status section."""
    found = re.findall(r"(\d[\d,]*(?:\.\d+)?)(?:-(\d[\d,]*(?:\.\d+)?))? ?(?:%|µs|ms|x\b)", text)
    figures = {x for pair in found for x in pair if x}
    status = text.split("\n## Status", 1)[1].split("\n## ", 1)[0]
    return figures | set(re.findall(r"\d+\.\d+", status))


def test_readme_figures_are_in_results() -> None:
    results = rec.RESULTS.read_text()
    figures = _figures((REPO / "README.md").read_text())
    assert {"41.8", "70.1", "65.1", "35.1"} <= figures  # the extraction finds the quoted figures
    missing = [f for f in sorted(figures) if not re.search(rf"(?<![\d.]){re.escape(f)}(?!\.?\d)", results)]
    assert not missing, f"README quotes figures that benchmarks/RESULTS.md does not hold: {missing}"
