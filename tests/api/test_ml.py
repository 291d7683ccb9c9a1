"""Runs, models, deployments, events and monitors through the face, with a real model:
scikit-learn's breast-cancer table, a logistic regression saved with skops, and
prediction-log records written as files (the format cairn.serving.predlog documents)."""

from __future__ import annotations

import io
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import skops.io as sio
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from cairn.api import AliasMove, ModelLineage, MonitorStep
from cairn.api.protocol import ClientProtocol
from cairn.data import InvalidReference, NotFound
from cairn.ml.errors import MLError
from cairn.monitoring.drift import DriftConfig
from cairn.monitoring.errors import RuleError
from cairn.monitoring.model_report import render_report_html
from cairn.serving.errors import PolicyError

from .helpers import plain, roundtrips


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, bytes, bytes]:
    """The table, a fitted model as skops bytes, and a second one."""
    frame = load_breast_cancer(as_frame=True).frame
    x, y = frame.drop(columns="target"), frame["target"]
    one = LogisticRegression(max_iter=3000).fit(x, y)
    two = LogisticRegression(max_iter=3000, C=0.1).fit(x, y)
    return frame, sio.dumps(one), sio.dumps(two)


@pytest.fixture
def registered(client: ClientProtocol, cancer: tuple[pd.DataFrame, bytes, bytes]) -> None:
    _, one, two = cancer
    client.repos.create("models")
    client.files.put("models@master:/v1/model.skops", one)
    client.models.register("cancer", "models@master:/v1/model.skops")
    client.files.put("models@master:/v2/model.skops", two)
    client.models.register("cancer", "models@master:/v2/model.skops", description="C=0.1")


def test_runs_create_log_finish_compare(client: ClientProtocol) -> None:
    first = client.runs.create("lr-0.1", "sweep", tags={"model": "lr"})
    assert first.state == "running"
    client.runs.log(first.id, params={"lr": 0.1}, metrics={"loss": 0.9}, step=0)
    client.runs.log(first.id, metrics={"loss": 0.4}, step=1)
    done = client.runs.finish(first.id)
    assert (done.state, done.params, done.metrics) == ("finished", {"lr": 0.1}, {"loss": 0.4})
    with pytest.raises(MLError):
        client.runs.log(first.id, metrics={"loss": 0.1})  # ended
    second = client.runs.create("lr-1", "sweep")
    client.runs.log(second.id, params={"lr": 1.0}, metrics={"loss": 0.2})
    client.runs.finish(second.id, "failed")
    assert [p.value for p in client.runs.history("lr-0.1", "loss")] == [0.9, 0.4]
    assert {r.name for r in client.runs.list(experiment="sweep")} == {"lr-0.1", "lr-1"}
    assert client.runs.get(first.id[:10]).id == first.id
    comparison = client.runs.compare(experiment="sweep")
    assert comparison.best("loss", maximize=False).name == "lr-1"
    assert comparison.differing == ["lr"]
    roundtrips(comparison)


def test_models_by_alias_and_version(client: ClientProtocol, registered: None) -> None:
    assert [v.version for v in client.models.versions("cancer")] == [1, 2]
    assert client.models.get("cancer").version == 2  # the latest
    assert client.models.get("cancer/1").flavor == "sklearn"
    client.models.set_alias("cancer@champion", 1, reason="first")
    client.models.set_alias("cancer@champion", 2)
    champion = client.models.get("cancer@champion")
    assert (champion.version, champion.aliases) == (2, ("champion",))
    assert roundtrips(champion)["signature"]["inputs"][0]["name"] == "mean radius"
    assert client.models.rollback("cancer").version == 1  # NAME alone: its champion
    assert client.models.aliases("cancer") == {"champion": 1}
    moves = client.models.alias_history("cancer@champion")
    assert [(m.kind, m.version) for m in moves] == [("set", 1), ("set", 2), ("rollback", 1)]
    assert isinstance(moves[0], AliasMove) and moves[0].reason == "first"
    [info] = client.models.list()
    assert (info.name, info.latest, info.aliases) == ("cancer", 2, {"champion": 1})
    client.models.set_alias("cancer@challenger", 2)
    client.models.delete_alias("cancer@challenger")
    with pytest.raises(NotFound):
        client.models.get("cancer@challenger")
    with pytest.raises(InvalidReference):
        client.models.set_alias("cancer/2", 1)  # a version is not an alias
    with pytest.raises(NotFound):
        client.models.get("cancer/9")
    lineage = client.models.lineage("cancer@champion")
    assert isinstance(lineage, ModelLineage)
    assert (lineage.version, lineage.training, lineage.path) == (1, None, "/v1/model.skops")
    assert ModelLineage.from_json(roundtrips(lineage)) == lineage
    kinds = [e.kind for e in client.events.list(subject="cancer")]
    assert kinds[:2] == ["model.register", "model.register"]
    [newest] = client.events.list(subject="cancer", kind="alias.", limit=1)
    assert (newest.kind, newest.info["alias"]) == ("alias.delete", "challenger")


def test_deployments_apply_one_change_per_revision(
    client: ClientProtocol, registered: None
) -> None:
    client.models.set_alias("cancer@champion", 1)
    client.models.set_alias("cancer@challenger", 2)
    made = client.deployments.create("cancer", "cancer@champion")
    assert (made.revision, made.policy.percentages()) == (1, {"champion": 100.0})
    assert client.deployments.create("cancer", "cancer@champion") == made  # as it is
    changed = client.deployments.apply(
        "cancer", canary=("challenger", 10), sticky_header="X-User", reason="try v2"
    )
    assert changed.revision == 2
    assert changed.policy.percentages() == {"champion": 90.0, "challenger": 10.0}
    assert changed.policy.sticky_header == "x-user"
    unstuck = client.deployments.apply("cancer", sticky_header="")
    assert unstuck.policy.sticky_header is None and unstuck.revision == 3
    whole = client.deployments.apply(
        "cancer", policy={"routes": [{"target": "2", "weight": 1}], "shadow": ["champion"]}
    )
    assert whole.policy.targets() == ["2", "champion"]
    with pytest.raises(PolicyError):
        client.deployments.apply("cancer", split={"nobody": 100})
    with pytest.raises(PolicyError):
        client.deployments.apply("cancer")
    back = client.deployments.rollback("cancer")
    assert back.policy == unstuck.policy and back.revision == 5
    history = client.deployments.history("cancer")
    assert [h.revision for h in history] == [1, 2, 3, 4, 5] and history[-1].restores == 3
    assert [d.name for d in client.deployments.list()] == ["cancer"]
    assert roundtrips(client.deployments.get("cancer"))["policy"]["routes"][0]["target"] == (
        "champion"
    )
    with pytest.raises(InvalidReference):
        client.deployments.create("other", "cancer")  # which alias or version?
    events = client.events.list(subject="cancer", kind="deployment.")
    assert [e.kind for e in events][-1] == "deployment.rollback"


def _log_traffic(client: ClientProtocol, frame: pd.DataFrame, model: bytes, rows: int) -> None:
    """``rows`` requests answered by cancer v1 on deployment ``cancer``, as the prediction
    log writes them (cairn.serving.predlog)."""
    fitted = sio.loads(model, trusted=sio.get_untrusted_types(data=model))
    x = frame.drop(columns="target").iloc[:rows]
    outputs = fitted.predict(x)
    now = time.time()
    lines = []
    for i in range(rows):
        record = {
            "request_id": uuid.uuid4().hex,
            "time": now - rows + i,
            "deployment": "cancer",
            "model": "cancer",
            "version": 1,
            "target": "champion",
            "protocol": "mlflow",
            "inputs": {"columns": list(x.columns), "data": [x.iloc[i].tolist()]},
            "outputs": [int(outputs[i])],
            "latency_ms": 1.0,
            "shadow": False,
            "status": "ok",
            "error": None,
        }
        lines.append(json.dumps(record))
    day = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")
    body = ("\n".join(lines) + "\n").encode()
    client.files.put(f"predictions@master:/cancer/{day}/log-1.jsonl", io.BytesIO(body))


def test_monitors_check_and_rules(
    client: ClientProtocol, registered: None, cancer: tuple[pd.DataFrame, bytes, bytes]
) -> None:
    frame, one, _ = cancer
    client.models.set_alias("cancer@champion", 1)
    client.repos.create("predictions")
    _log_traffic(client, frame, one, 60)
    # The reference: the model file was put by a user, so name the training data.
    client.repos.create("training")
    client.files.put("training@master:/cancer.csv", frame.to_csv(index=False).encode())
    report = client.monitors.check(
        "cancer@champion", since="1d", reference="training@master:/cancer.csv"
    )
    assert (report.model, report.version, report.deployment) == ("cancer", 1, "cancer")
    assert report.window["rows"] == 60 and report.window["version_rows"] == 60
    assert report.reference["predictions"] == "model"
    assert json.loads(report.to_json())["model"] == "cancer"
    # What `cairn monitor --html` writes: the plots need the compared frames.
    page = render_report_html(report)
    assert "Drift of cancer v1 on cancer" in page and "data:image/png;base64," in page
    config = DriftConfig(method="psi", drift_share=0.9)  # what `cairn monitor` passes
    tuned = client.monitors.check(
        "cancer@champion", last=60, reference="training@master:/cancer.csv", config=config
    )
    assert tuned.result.config == config and tuned.result.method == "psi"
    too_few = client.monitors.check(
        "cancer@champion", last=10, min_rows=5, reference="training@master:/cancer.csv"
    )
    assert too_few.window["rows"] == 10

    rule = {
        "name": "cancer-drift",
        "model": "cancer@champion",
        "reference": "training@master:/cancer.csv",
        "window": {"last": 60, "min_rows": 30},
        "action": {"alert": {}},
    }
    made = client.monitors.create(rule)
    assert (made.name, made.version) == ("cancer-drift", 1)
    assert client.monitors.state("cancer-drift").step is MonitorStep.IDLE
    [state] = client.monitors.tick()
    assert state.step is MonitorStep.IDLE and "last_check" in state.info
    assert roundtrips(state)["step"] == "idle"
    plain(client.monitors.get("cancer-drift"))
    updated = client.monitors.update({**rule, "drift_share": 0.9})
    assert updated.version == 2 and [m.name for m in client.monitors.list()] == ["cancer-drift"]
    client.monitors.delete("cancer-drift")
    with pytest.raises(NotFound):
        client.monitors.get("cancer-drift")


def test_a_monitor_rule_file_is_read_where_the_caller_is(
    client: ClientProtocol, tmp_path: Path
) -> None:
    path = tmp_path / "rule.yaml"
    path.write_text(
        "name: from-file\nmodel: cancer@champion\nwindow: {last: 60, min_rows: 30}\n"
        "action: {alert: {}}\n"
    )
    made = client.monitors.create(path)
    assert (made.name, made.version) == ("from-file", 1)
    path.write_text(path.read_text().replace("last: 60", "last: 90"))
    assert client.monitors.update(str(path)).version == 2
    path.write_text("name: from-file\nmodel: cancer@champion\nwindwo: {}\n")
    with pytest.raises(RuleError) as caught:
        client.monitors.update(path)
    assert caught.value.field == "windwo" and str(path) in str(caught.value)


def test_models_download_writes_a_versions_file(
    client: ClientProtocol,
    registered: None,
    cancer: tuple[pd.DataFrame, bytes, bytes],
    tmp_path: Path,
) -> None:
    _, one, two = cancer
    written = client.models.download("cancer/2", tmp_path / "out" / "m.skops")
    assert written == [tmp_path / "out" / "m.skops"]
    assert written[0].read_bytes() == two
    client.models.set_alias("cancer@champion", 1)
    assert client.models.download("cancer@champion", tmp_path / "c.skops")[0].read_bytes() == one
    with pytest.raises(NotFound):
        client.models.download("cancer/9", tmp_path / "gone.skops")


def test_explain_diff_and_replay_a_logged_request(
    client: ClientProtocol, registered: None, cancer: tuple[pd.DataFrame, bytes, bytes]
) -> None:
    frame, one, _ = cancer
    client.models.set_alias("cancer@champion", 1)
    client.repos.create("predictions")
    _log_traffic(client, frame, one, 30)
    # Two more requests: one answered by v1, one by a version 9 that exists no more.
    fitted = sio.loads(one, trusted=sio.get_untrusted_types(data=one))
    x = frame.drop(columns="target").iloc[30:32]
    now = time.time()
    records = [
        {
            "request_id": rid,
            "time": now + i * 0.1,
            "deployment": "cancer",
            "model": "cancer",
            "version": version,
            "target": "champion",
            "protocol": "mlflow",
            "inputs": {"columns": list(x.columns), "data": [x.iloc[i].tolist()]},
            "outputs": [int(fitted.predict(x.iloc[[i]])[0])],
            "latency_ms": 2.5,
            "shadow": False,
            "status": "ok",
            "error": None,
        }
        for i, (rid, version) in enumerate([("known-1", 1), ("gone-1", 9)])
    ]
    day = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")
    body = "".join(json.dumps(r) + "\n" for r in records).encode()
    client.files.put(f"predictions@master:/cancer/{day}/log-2.jsonl", io.BytesIO(body))

    doc = roundtrips(client.monitors.explain("known-1"))
    assert doc["request"]["latency_ms"] == 2.5 and doc["request"]["version"] == 1
    assert (doc["lineage"]["model"], doc["lineage"]["version"]) == ("cancer", 1)
    assert doc["lineage"]["ref"].startswith("models@") and doc["lineage"]["training"] is None
    assert doc["aliases"] == {"champion": 1} and doc["answered_as"] == ["champion"]
    assert doc["missing"] == ["deployment 'cancer' was deleted"]  # never created here
    # The record of a version deleted since: said, not failed.
    gone = client.monitors.explain("gone-1")
    assert gone["lineage"] is None and gone["request"]["version"] == 9
    assert [m.split(":")[0] for m in gone["missing"]][-1] == "model version cancer/9"
    assert client.monitors.explain(deployment="cancer", at=now + 0.01)["request"]["request_id"] == (
        "known-1"
    )
    with pytest.raises(NotFound):
        client.monitors.explain("no-such-request")

    diff = roundtrips(client.models.diff("cancer/1", "cancer/2"))
    assert (diff["old"]["version"], diff["new"]["version"]) == (1, 2)
    assert diff["data"] == {"added": [], "removed": [], "modified": [], "unchanged": 0}
    assert len(diff["missing"]) == 2 and diff["signature"]["changed"] is False

    client.repos.create("labels")
    truth = int(frame["target"].iloc[30])
    client.files.put("labels@master:/l.csv", f"request_id,label\nknown-1,{truth}\n".encode())
    same = roundtrips(client.monitors.replay("cancer", "cancer@champion", since="1d"))
    assert same["compared"] == 32 and same["agreement"] == 1.0
    assert same["production"] == {"1": 31, "9": 1} and same["kind"] == "classes"
    other = client.monitors.replay(
        "cancer", "cancer/2", last=32, labels="labels@master", metric="accuracy_score"
    )
    counts = other["confusion"]["counts"]
    assert sum(map(sum, counts)) == 32
    assert other["agreement"] == sum(counts[i][i] for i in range(len(counts))) / 32
    assert other["labels"]["labelled"] == 1 and other["labels"]["production"] == 1.0
    with pytest.raises(NotFound):
        client.monitors.replay("elsewhere", "cancer/2")
