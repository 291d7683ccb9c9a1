"""The README's ML quickstart: train -> run -> register -> serve -> canary -> rollback."""

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("sklearn")
pytest.importorskip("fastapi")


@pytest.mark.slow
def test_ml_quickstart_canaries_rolls_back_and_traces_the_champion(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CAIRN_HOME"}
    result = subprocess.run(
        ["bash", str(ROOT / "examples" / "ml" / "run.sh"), str(tmp_path / "ml")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    # Both protocols answered with one prediction per row.
    assert re.search(r"POST /invocations .*'predictions': \[[01], [01], [01], [01], [01]\]", out)
    assert "POST /v2/models/cancer/infer" in out and "'outputs'" in out
    # The canary split both ways; after the rollback only the champion answered.
    canary, after = re.findall(r"(\d+) requests, 0 failed; answered by (.*)", out)
    assert canary[0] == "300" and "version 1" in canary[1] and "version 2" in canary[1]
    challenger = int(re.search(r"version 2: (\d+)", canary[1]).group(1))
    assert 12 <= challenger <= 52  # 10% of 300: scipy.stats.binom.interval(0.9999, 300, 0.1)
    assert after == ("100", "version 1: 100")
    # The champion's lineage reaches the training data and the run's metrics.
    lineage = out.split("8. where did the champion come from?")[1]
    assert "part-1.csv" in lineage and "accuracy" in lineage
    logged = int(re.search(r"predictions: (\d+) log files", out).group(1))
    assert logged >= 1
    assert (tmp_path / "ml" / "val_accuracy.png").stat().st_size > 5_000
