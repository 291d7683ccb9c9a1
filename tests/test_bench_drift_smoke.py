"""bench/drift.py still runs: its cairn side, at a tiny size, without Evidently.

Benchmarks are not tests (nothing here looks at speed); this keeps the drift benchmark
from rotting as cairn.monitoring changes, and checks that its shifted features are the
ones cairn finds.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_drift_bench_runs_cairn_side(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "drift.py"),
            "--rows",
            "3000",
            "--repeat",
            "1",
            "--no-evidently",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    res = json.loads((tmp_path / "results" / "drift.json").read_text())
    (size,) = res["sizes"]
    assert size["rows"] == 3000 and "evidently" not in size
    assert sorted(size["cairn"]["drifted"]) == sorted(res["features"]["shifted"])
    assert res["target"]["met"] is None  # not measured below 1,000,000 rows
    report = (tmp_path / "DRIFT_RESULTS.md").read_text()
    assert "| rows | cairn median (s)" in report and "Evidently was not run" in report
