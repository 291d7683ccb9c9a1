"""The README's loop demo: no drift -> drift -> retrain -> canary -> promote; a worse
model (labels inverted by a labelling bug) rolled back; the champion's lineage reaches the
production window that triggered it."""

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("sklearn")
pytest.importorskip("fastapi")


def section(out: str, title: str) -> str:
    """The demo's output from the step whose header starts with ``title`` to the next."""
    return re.split(r"\n== ", out.split(f"\n== {title}", 1)[1], maxsplit=1)[0]


@pytest.mark.slow
def test_loop_demo_promotes_on_drift_rolls_back_a_worse_model_and_traces_v2(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CAIRN_HOME"}
    result = subprocess.run(
        ["bash", str(ROOT / "examples" / "loop" / "run.sh"), str(tmp_path / "loop")],
        capture_output=True,
        text=True,
        env=env,
        timeout=560,  # under pytest-timeout (600 s), so a hang shows the demo's output
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    out = result.stdout

    # Traffic like the training data: every request answered by v1, no drift, loop idle.
    calm = section(out, "4.")
    assert "clinic: 50 requests, 0 failed; answered by v1: 50" in calm
    assert "no drift: 0 of 30 features drifted" in calm
    assert re.search(r"Step:\s+idle", calm) and re.search(r"Cycle:\s+0", calm)
    assert re.search(r"Last check: .*: no drift \(0% of features, 50 rows\)", calm)

    # The referral centre's traffic drifts: the rule's verdict, then the loop up to the canary.
    shifted = section(out, "5.")
    assert "DRIFT:" in shifted
    share = re.search(r"monitor\.drift .* (\d+)% of features drifted \(>= 30%; test", shifted)
    assert int(share.group(1)) >= 30
    committed = re.search(r'monitor\.data_committed .*"commit": "(\w+)".*"labelled": 50', shifted)
    assert committed and "production/window-cancer-drift-1.csv" in shifted
    assert '"version": 2' in shifted and "monitor.canary" in shifted

    # The canary: version 2 answered some of the requests; then evaluated and promoted.
    canary = section(out, "6.")
    assert sum(int(n) for n in re.findall(r"v2: (\d+)", canary)) >= 10
    promoted = re.search(r"monitor\.promoted .*", canary).group(0)
    assert "holdout accuracy_score: challenger" in promoted and "not worse" in promoted
    assert "worse;" not in promoted.replace("not worse", "")
    assert re.search(r"Version:\s+2", canary) and re.search(r"Aliases:\s+champion", canary)

    # v2's lineage: its training input is the commit holding the production window.
    lineage = section(out, "7.")
    assert "model cancer version 2  (champion)" in lineage
    window_file = f"training@{committed.group(1)}:/production/window-cancer-drift-1.csv"
    assert window_file in lineage and f"training@{committed.group(1)}:/clinic.csv" in lineage

    # Inverted labels: drift again, v3 trained on them is worse on the holdout, rolled back.
    bad = section(out, "8.")
    assert "labels@master:/screening.csv, inverted" in bad and "answered by v2: 50" in bad
    assert re.search(r"monitor\.drift .* of features drifted \(>= 30%", bad)
    assert "production/window-cancer-drift-2.csv" in bad
    rolled = re.search(r"monitor\.rolled_back .*", bad).group(0)
    holdout = re.search(r"holdout accuracy_score: challenger ([\d.]+) vs champion ([\d.]+)", rolled)
    assert float(holdout.group(1)) < float(holdout.group(2)) and "): worse" in rolled
    assert re.search(r"Version:\s+3", bad) and re.search(r"Aliases:\s+-", bad)
    assert re.search(r"Routes:\s+champion 100%", bad) and "champion -> v2" in bad
    assert "cycle 2: rolled back" in bad

    summary = section(out, "summary")
    assert "versions 3, champion 2" in summary
    assert "cycles:   1: v2 promoted; 2: v3 rolled_back" in summary
    assert (tmp_path / "loop" / "drift.html").stat().st_size > 10_000
