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
def test_loop_demo_promotes_on_drift_refuses_a_worse_model_and_audits(tmp_path):
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
    # Before its canary, v2 replayed the logged traffic and agreed with production.
    agreed = re.search(r'monitor\.canary .*"replay": \{"agreement": ([\d.]+)', shifted).group(1)
    assert float(agreed) >= 0.95 and '"passed": true' in shifted
    assert "holdout accuracy_score: challenger" in promoted and "not worse" in promoted
    assert "worse;" not in promoted.replace("not worse", "")
    assert re.search(r"Version:\s+2", canary) and re.search(r"Aliases:\s+champion", canary)

    # v2's lineage: its training input is the commit holding the production window.
    lineage = section(out, "7.")
    assert "model cancer version 2  (champion)" in lineage
    window_file = f"training@{committed.group(1)}:/production/window-cancer-drift-1.csv"
    assert window_file in lineage and f"training@{committed.group(1)}:/clinic.csv" in lineage

    # Inverted labels: drift again; v3 trained on them disagrees with production on the
    # logged traffic, so the replay refuses it and it never takes a live request.
    bad = section(out, "8.")
    assert "labels@master:/screening.csv, inverted" in bad and "answered by v2: 50" in bad
    assert re.search(r"monitor\.drift .* of features drifted \(>= 30%", bad)
    assert "production/window-cancer-drift-2.csv" in bad
    rolled = re.search(r"monitor\.rolled_back .*", bad).group(0)
    agreement = re.search(r"replay agreement with production ([\d.]+) on \d+ logged", rolled)
    assert float(agreement.group(1)) < 0.95 and "(min 0.95): refused" in rolled
    assert "monitor.canary" not in bad and "monitor.challenger_registered" in bad
    assert re.search(r"Version:\s+3", bad) and re.search(r"Aliases:\s+-", bad)
    assert re.search(r"Routes:\s+champion 100%", bad) and "champion -> v2" in bad
    assert "cycle 2: canary" not in bad  # the policy never routed to v3

    # The audit. A clinic request, answered by v1 before v2 was promoted, explained back to
    # v1's training file, although champion names v2 now.
    audit = section(out, "9.")
    assert "request clinic-0001" in audit
    assert "answered: cancer/1 by route champion of deployment cancer revision 1" in audit
    assert "aliases then: champion -> v1" in audit
    assert re.search(r"input: training@\w+:/clinic\.csv .* blake3 [0-9a-f]{16}", audit)
    assert re.search(r"code: train\.py\s+blake3 [0-9a-f]{16}", audit)
    assert "drift: no drifted window of monitor cancer-drift holds it" in audit
    # v1 -> v2: the production window is an added training file of 50 rows.
    assert "model cancer: v1 -> v2" in audit
    assert re.search(rf"\+\s+{re.escape(window_file)}\s+[\d.]+ KiB\s+50", audit)
    assert re.search(r"cv_accuracy\s+[\d.]+\s+[\d.]+", audit)
    # The clinic's 50 requests replayed offline against v3: it disagrees with v1.
    replayed = re.search(r"replayed 50 logged row\(s\) of cancer .*production v1: 50", audit)
    assert replayed and "against cancer/3" in audit
    assert float(re.search(r"agreement: ([\d.]+)%", audit).group(1)) < 95
    assert re.search(r"production \\ candidate\s+0\s+1", audit)
    assert (tmp_path / "loop" / "replay.html").stat().st_size > 5_000

    summary = section(out, "summary")
    assert "versions 3, champion 2" in summary
    assert "cycles:   1: v2 promoted; 2: v3 rolled_back" in summary
    assert (tmp_path / "loop" / "drift.html").stat().st_size > 10_000
