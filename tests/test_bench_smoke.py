"""The benchmark suite still runs: its cairn side, at a tiny scale, without DVC.

Benchmarks are not tests (nothing here looks at speed); this only keeps bench/suite.py
from rotting as cairn's CLI and API change. One test per case, so they spread over
pytest-xdist's workers.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "bench" / "suite.py"


@pytest.mark.parametrize("case", ["A", "B", "P", "M"])
def test_suite_runs_cairn_side(case, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(SUITE),
            "--scale",
            "0.0005",
            "--repeat",
            "1",
            "--only",
            case,
            "--no-dvc",
            "--workdir",
            str(tmp_path),
            "--out",
            str(tmp_path / "out"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    res = json.loads((tmp_path / "out" / "results" / "suite.json").read_text())
    assert list(res["cases"]) == [case]
    assert "| case | DVC | cairn |" in (tmp_path / "out" / "RESULTS.md").read_text()
    got = res["cases"][case]
    if case == "A":
        assert got["rounds"][0]["cairn"]["change_growth"]["apparent"] > 0
    elif case == "B":
        assert got["rounds"][0]["cairn"]["edit_growth"]["apparent"] > 0
    elif case == "P":
        run = got["rounds"][0]["cairn"]["datum"]
        assert run["full"]["processed"] == got["datums"]
        assert run["change"]["processed"] == got["changed"]
    else:
        assert all(s["ops"]["diff_changes"] == [1] * 4 for s in got["sizes"])
