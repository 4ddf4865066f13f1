"""Every install extra holds what its stage imports: each stage's modules are imported in a fresh
interpreter in which every installed distribution outside the extra's requirements (read from
pyproject.toml, expanded through the installed packages' own metadata) refuses to import.

This is the import half of "installs and imports alone"; installing each extra into its own
virtual environment (``pip install .[runtime]``) is the other half, too slow for every test run
(docs/ARCHITECTURE.md says how to run it by hand)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
OWN = ("sim", "policies", "deploy", "ros_nodes", "configs", "tests")

# modules whose dependency no extra can hold, and why
OUTSIDE_PYPI = {"ros_nodes.rclpy_port": "rclpy comes from a ROS 2 install, never from PyPI"}

# the extra a stage is installed with -> the packages it must import alone
STAGES = {
    "sim": ["sim"],
    "train": ["policies"],
    "safety": ["deploy.safety"],
    "runtime": ["deploy.runtime"],
    "logs": ["deploy.logs"],
    "offline": ["deploy.offline"],
    "export": ["deploy.export"],
    "ros": ["ros_nodes"],
}


def extra_requirements(extra: str) -> list[Requirement]:
    """The base dependencies plus ``extra``'s, with ``spine[...]`` self-references expanded."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    reqs, seen, todo = [Requirement(r) for r in project["dependencies"]], set(), [extra]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        assert name in extras, f"pyproject.toml has no extra {name!r}"
        seen.add(name)
        for line in extras[name]:
            req = Requirement(line)
            if canonicalize_name(req.name) == "spine":
                todo += sorted(req.extras)
            else:
                reqs.append(req)
    return reqs


def allowed_distributions(extra: str) -> set[str]:
    """Canonical names of every installed distribution the extra pulls in, transitively."""
    allowed: set[str] = set()
    todo = [(canonicalize_name(r.name), frozenset(r.extras)) for r in extra_requirements(extra)]
    while todo:
        name, wanted = todo.pop()
        key = f"{name}[{','.join(sorted(wanted))}]"
        if key in allowed:
            continue
        allowed |= {name, key}
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue  # an optional dependency not installed here: nothing of it can be imported
        for line in requires:
            req = Requirement(line)
            if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in (*wanted, "")):
                continue
            todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    return {a for a in allowed if "[" not in a}


BLOCKER = textwrap.dedent(
    """
    import importlib, importlib.abc, importlib.metadata as md, pkgutil, sys
    from packaging.utils import canonicalize_name
    allowed, packages, own = set(sys.argv[1].split(",")), sys.argv[2].split(","), set(sys.argv[3].split(","))
    outside = set(sys.argv[4].split(","))
    owners = {top: {canonicalize_name(d) for d in ds} for top, ds in md.packages_distributions().items()}

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            top = name.split(".")[0]
            if top in own or top in sys.stdlib_module_names or top not in owners:
                return None
            if owners[top] & allowed:
                return None
            raise ImportError(f"{name}: distribution {sorted(owners[top])} is not in this extra")

    sys.meta_path.insert(0, Refuse())
    failed = []
    for package in packages:
        mod = importlib.import_module(package)
        names = [package] + [m.name for m in pkgutil.walk_packages(mod.__path__, package + ".")]
        for name in names:
            if name in outside:
                continue
            try:
                importlib.import_module(name)
            except ImportError as e:
                failed.append(f"{name}: {e}")
    print("\\n".join(failed))
    sys.exit(1 if failed else 0)
    """
)


@pytest.mark.parametrize("extra", sorted(STAGES))
def test_each_stage_imports_with_only_its_extra(extra: str) -> None:
    allowed = allowed_distributions(extra) | {"packaging"}  # packaging: the blocker's own import
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            BLOCKER,
            ",".join(sorted(allowed)),
            ",".join(STAGES[extra]),
            ",".join(OWN),
            ",".join(OUTSIDE_PYPI),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, f"[{extra}] imports outside its extra:\n{r.stdout}{r.stderr[-3000:]}"


def test_the_check_catches_a_missing_dependency() -> None:
    """The logs stage without mcap: the salvage module's import is refused (the check can fail)."""
    allowed = allowed_distributions("logs") - {"mcap"} | {"packaging"}
    r = subprocess.run(
        [sys.executable, "-c", BLOCKER, ",".join(sorted(allowed)), "deploy.logs", ",".join(OWN), ""],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 1 and "deploy.logs.salvage" in r.stdout and "mcap" in r.stdout


def test_every_extra_in_pyproject_resolves() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra in extras:
        assert extra_requirements(extra)
    assert "torch" not in {
        canonicalize_name(r.name)
        for e in ("safety", "runtime", "logs", "offline")
        for r in extra_requirements(e)
    }
