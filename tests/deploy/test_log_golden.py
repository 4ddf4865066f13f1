"""The golden WidowX log (tests/artifacts/, see its README) reads back exactly as recorded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import sim
from deploy.logs.mapped import read_mapped
from deploy.logs.mapping import load_mapping
from deploy.logs.resample import resample

ROOT = Path(__file__).parents[2]
BAG = ROOT / "tests" / "artifacts" / "widowx_golden.bag"
EXPECTED = json.loads((ROOT / "tests" / "artifacts" / "widowx_golden.json").read_text())


def test_golden_log_reads_as_recorded() -> None:
    spec = sim.make("widowx_reach").task_spec
    mapping = load_mapping(ROOT / "configs" / "replay" / "widowx200.yaml")
    log = read_mapped(BAG, mapping, spec.joint_names, spec.joint_pos_min, spec.joint_pos_max)
    assert len(log.joint_pos) == EXPECTED["joint_states"] == 581
    assert {t: s.to_dict() for t, s in log.stamps.items()} == EXPECTED["stamps"]
    assert log.commanded.tolist() == EXPECTED["commanded"]
    assert log.skipped == EXPECTED["skipped"]
    np.testing.assert_allclose(log.joint_pos.values[0], EXPECTED["joint_pos_first"], atol=1e-12)
    np.testing.assert_allclose(log.joint_pos.values[-1], EXPECTED["joint_pos_last"], atol=1e-12)
    ticks = resample(log, 25.0, mapping.resample.max_gap_s)
    assert len(ticks) == EXPECTED["ticks_25hz"]
    assert ticks.gaps() == [tuple(g) for g in EXPECTED["gaps_s"]]
    assert float(ticks.joint_pos.sum()) == pytest.approx(EXPECTED["ticks_joint_pos_sum"], abs=1e-9)
    assert float(ticks.command.sum()) == pytest.approx(EXPECTED["ticks_command_sum"], abs=1e-9)
    assert log.extras["temperature"].values.shape == (4, 5)
