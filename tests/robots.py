"""The arms the tests run every robot-dependent check on: Spine's own (arm7, the WidowX 200),
two real ones from MuJoCo Menagerie (the Franka Panda and the UR5e, read from
``../shared/data/robots/`` through ``MENAGERIE_ROOT``) and a URDF written for the tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_ROBOTS = REPO.parent / "shared" / "data" / "robots"
URDF_ROBOT = str(REPO / "tests" / "artifacts" / "robots" / "arm4.yaml")
if SHARED_ROBOTS.is_dir():  # the menagerie package reads a local copy from here
    os.environ.setdefault("MENAGERIE_ROOT", str(SHARED_ROBOTS))

_NO_SHARED = pytest.mark.skipif(
    not SHARED_ROBOTS.is_dir(), reason=f"real arm models not found at {SHARED_ROBOTS} (../shared/data/robots)"
)
# every configured arm, as a pytest parameter (the real ones skip without ../shared)
ROBOTS = [
    pytest.param("panda", marks=_NO_SHARED, id="panda"),
    pytest.param("ur5e", marks=_NO_SHARED, id="ur5e"),
    pytest.param(URDF_ROBOT, id="urdf_arm4"),
]
