"""The import rules of docs/ARCHITECTURE.md, checked on every source file (lazy imports inside
functions included): sim <- policies <- deploy <- ros_nodes (a layer imports only the layers
before it), and torch only in policies/ and deploy/export/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAYERS = ("sim", "policies", "deploy", "ros_nodes")  # each may import those before it
# path prefixes (relative to the repo); sim/warp/: the MuJoCo Warp backend hands its worlds'
# tensors to torch on their device (the scale extra; importing it without torch still works)
TORCH_ALLOWED = ("policies/", "deploy/export/", "sim/warp/")


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in ``path``, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def sources() -> list[Path]:
    return sorted(p for layer in LAYERS for p in (REPO / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_imports_only_the_layers_below_it(layer: str) -> None:
    below = set(LAYERS[: LAYERS.index(layer) + 1])
    bad = [
        f"{path.relative_to(REPO)}:{line} imports {module}"
        for path in sorted((REPO / layer).rglob("*.py"))
        for line, module in imports(path)
        if module.split(".")[0] in LAYERS and module.split(".")[0] not in below
    ]
    assert not bad, "\n".join(bad)


def test_torch_only_in_policies_and_export() -> None:
    bad = [
        f"{rel}:{line}"
        for path in sources()
        for rel in [path.relative_to(REPO).as_posix()]
        for line, module in imports(path)
        if module.split(".")[0] == "torch" and not rel.startswith(TORCH_ALLOWED)
    ]
    assert not bad, "torch imported outside policies/ and deploy/export/: " + ", ".join(bad)


def test_the_rules_catch_a_violation(tmp_path: Path) -> None:
    """The checker sees an import inside a function (not only at the top of a module)."""
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from deploy.runtime.bundle import load_bundle\n    import torch\n")
    assert [m for _, m in imports(f)] == ["deploy.runtime.bundle", "torch"]
