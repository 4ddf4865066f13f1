"""spine-summary reports the main job's outputs and fails on a folder that lacks them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploy.offline.summary import REQUIRED, main


def test_an_empty_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path)]) == 1
    assert "holds no main-job output" in capsys.readouterr().err
    assert main([str(tmp_path / "nowhere")]) == 1


def test_a_folder_missing_a_stage_names_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for f in REQUIRED[:-1]:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text(json.dumps({}))
    assert main([str(tmp_path)]) == 1
    out = capsys.readouterr()
    assert "Spine demo summary" in out.out and "replay/report.json" in out.err
    (tmp_path / "replay").mkdir()
    (tmp_path / "replay/report.json").write_text("{}")
    assert main([str(tmp_path)]) == 0
