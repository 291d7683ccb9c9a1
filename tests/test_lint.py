"""ruff's rules and mypy's checks from pyproject.toml hold (STYLE.md: one config for both)."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (it is in the dev extra)")
    result = subprocess.run(
        [ruff, "check", "src", "tests", "bench"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


def test_mypy_finds_nothing():
    mypy = shutil.which("mypy")
    if mypy is None:
        pytest.skip("mypy is not installed (it is in the dev extra)")
    result = subprocess.run([mypy, "src"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
