"""``cairn monitor`` end to end through the console script, on the store of the monitoring
tests (a breast cancer classifier trained by a pipeline, and logged traffic like its
training data and of malignant tumours only)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.cli.conftest import Cairn, shared_scenario
from tests.monitoring.test_monitor import build_store


@pytest.fixture(scope="module")
def store(
    tmp_path_factory: pytest.TempPathFactory, cairn_mode: str
) -> Iterator[tuple[Cairn, dict]]:
    with shared_scenario(tmp_path_factory, "monitor-cancer", build_store, cairn_mode) as found:
        yield found


def test_raw_json_of_traffic_like_the_training_data(store):
    cairn, facts = store
    report = cairn.raw("monitor", "cancer@champion")
    assert (report["model"], report["version"], report["deployment"]) == ("cancer", 1, "cancer")
    assert report["drifted"] is False and report["result"]["n_drifted"] == 0
    assert report["reference"]["files"] == [facts["train_ref"]]
    assert report["prediction"]["drifted"] is False
    assert report["window"]["rows"] == 284
    # Settings reach the computation.
    psi = cairn.raw(
        "monitor", "cancer@champion", "--method", "psi", "--threshold", "0.3", "--last", "100"
    )
    assert psi["result"]["method"] == "psi" and psi["window"]["rows"] == 100
    assert {f["threshold"] for f in psi["result"]["features"]} == {0.3}


def test_table_verdict_and_html_of_shifted_traffic(store):
    cairn, _ = store
    page = cairn.root / "shift-report.html"
    proc = cairn(
        "monitor",
        "cancer@champion",
        "--deployment",
        "cancer-shift",
        "--correction",
        "fdr",
        "--html",
        str(page),
    )
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("reference (lineage, 285 rows): cancer@")
    assert "mean radius" in proc.stdout and "DRIFT" in proc.stdout
    assert lines[-1].startswith("cancer v1 on cancer-shift: DRIFT (")
    assert "prediction drift" in lines[-1]
    text = page.read_text()
    assert text.count("<img ") == 31 and "<script" not in text


def test_errors_exit_1_with_one_line(store):
    cairn, _ = store
    cairn.fails("monitor", "cancer@champion", "--last", "5")
    cairn.fails("monitor", "cancer@champion", "--log-repo", "nosuch")
    proc = cairn.fails("monitor", "bad", "--deployment", "cancer")
    assert "rows.jsonl" in proc.stderr  # names the unreadable file
