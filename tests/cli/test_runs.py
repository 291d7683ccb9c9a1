"""``cairn list run``, ``inspect run``, ``compare run`` and ``plot metric`` against runs that
a real pipeline recorded with the SDK."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import Cairn, pfs, pipeline, seed_repo, shared_scenario

SCRIPT = """
import os, cairn
pfs = os.environ["CAIRN_PFS"]
[name] = os.listdir(f"{pfs}/rates")
rate = float(open(f"{pfs}/rates/{name}").read())
with cairn.start_run(name=name):
    cairn.log_params({"rate": rate, "epochs": 4})
    loss = 1.0
    for epoch in range(4):
        loss *= 1 - rate
        cairn.log_metric("loss", loss, step=epoch)
    cairn.log_metric("accuracy", 1 - loss)
    open(f"{pfs}/out/{name}.model", "w").write(str(rate))
"""


def _build(cairn: Cairn) -> dict[str, Any]:
    cairn.env["CAIRN_SANDBOX"] = "none"
    seed_repo(cairn, "rates", {"fast": "0.5", "slow": "0.1"})
    cairn.write("train.py", SCRIPT)
    spec = cairn.spec(pipeline("train", pfs("rates"), [sys.executable, "train.py"]))
    cairn("create", "pipeline", "-f", str(spec))
    return {"runs": cairn.raw("list", "run"), "jobs": cairn.jobs("train")}


@pytest.fixture(scope="module")
def scenario(
    tmp_path_factory: pytest.TempPathFactory, cairn_mode: str
) -> Iterator[tuple[Cairn, dict[str, Any]]]:
    """The store, and run name -> the run as ``list run --raw`` gave it."""
    with shared_scenario(tmp_path_factory, "runs-cli", _build, cairn_mode) as (cairn, facts):
        [job] = facts["jobs"]
        assert {r["job"] for r in facts["runs"]} == {job["id"]}
        yield cairn, {r["name"]: r for r in facts["runs"]}


def test_list_run_shows_each_datum_s_run(scenario):
    cairn, runs = scenario
    assert set(runs) == {"fast", "slow"}
    text = cairn("list", "run", "-p", "train").stdout
    assert "fast" in text and "slow" in text and "accuracy=" in text


def test_inspect_run_shows_params_metrics_and_links(scenario):
    cairn, runs = scenario
    run = cairn.raw("inspect", "run", runs["fast"]["id"][:10])
    assert run == runs["fast"]
    assert run["params"] == {"rate": 0.5, "epochs": 4}
    assert run["metrics"] == {"accuracy": 1 - 0.5**4, "loss": 0.5**4}
    assert run["info"]["artifacts"] == ["/fast.model"]
    text = cairn("inspect", "run", "fast").stdout
    for line in ("Pipeline:    train", f"Job:         {run['job']}", "rate: 0.5", "/fast.model"):
        assert line in text
    cairn.fails("inspect", "run", "no-such-run")


def test_compare_run_marks_differing_params_and_picks_the_best(scenario):
    cairn, runs = scenario
    table = cairn("compare", "run", "fast", "slow").stdout.splitlines()
    rate = next(line for line in table if "rate" in line)
    epochs = next(line for line in table if "epochs" in line)
    assert rate.lstrip().startswith("* rate") and not epochs.lstrip().startswith("*")
    raw = cairn.raw("compare", "run", "-p", "train", "--best", "accuracy")
    assert raw["best"] == runs["fast"]["id"] and raw["differing"] == ["rate"]
    assert "best: slow" in cairn("compare", "run", "-p", "train", "--best", "loss").stdout


def test_plot_metric_writes_a_png(scenario, tmp_path):
    from PIL import Image

    cairn, runs = scenario
    target = tmp_path / "loss.png"
    cairn("plot", "metric", "loss", "fast", runs["slow"]["id"], "-o", str(target))
    with Image.open(target) as image:
        assert image.format == "PNG" and image.size == (800, 500)
    cairn.fails("plot", "metric", "no-such-metric", "fast", "-o", str(tmp_path / "x.png"))


def test_run_files_are_versioned_output(scenario):
    cairn, runs = scenario
    run = runs["slow"]
    events = [json.loads(line) for line in cairn.get(f"train@master:{run['source']}").splitlines()]
    assert events[0] == {"name": "slow"}
