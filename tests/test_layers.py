"""The layers of DESIGN.md hold: no module imports a layer above its own."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKER = ROOT.parent / "shared" / "tools" / "check_layers.py"


# Modules below every layer: any layer may import them, and they import nothing of cairn.
SHARED_LEAVES = {"_lazy"}


def _cairn_imports(path: Path) -> list[str]:
    import ast

    return [
        node.module
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom)
        and node.module
        and not node.level
        and node.module.split(".")[0] == "cairn"
    ]


def test_shared_leaves_import_nothing_of_cairn():
    package = ROOT / "src" / "cairn"
    assert {leaf: _cairn_imports(package / f"{leaf}.py") for leaf in SHARED_LEAVES} == {
        leaf: [] for leaf in SHARED_LEAVES
    }


def test_imports_point_down_the_layers():
    layers = ["storage", "catalog", "data", "pipelines", "ml", "serving", "monitoring"]
    package = ROOT / "src" / "cairn"
    upward = []
    for path in package.rglob("*.py"):
        rel = path.relative_to(package).parts
        if rel[0] not in layers:
            continue
        here = layers.index(rel[0])
        for module in _cairn_imports(path):
            parts = module.split(".")
            if len(parts) > 1 and parts[1] not in SHARED_LEAVES:
                target = parts[1]
                if target not in layers or layers.index(target) > here:
                    upward.append(f"{path}: imports {module}")
    assert upward == []


def test_shared_layer_checker_agrees():
    if not CHECKER.exists():
        pytest.skip("../shared/tools/check_layers.py is not beside this checkout")
    result = subprocess.run(
        [sys.executable, str(CHECKER), str(ROOT / "src" / "cairn")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout
