"""``check_model`` end to end on real data: a classifier trained by a pipeline on half of
scikit-learn's breast cancer data (so its lineage names the training CSV), registered as
``cancer@champion``, and prediction logs written with serving's PredictionLog from the
other half: the same distribution (no drift), malignant tumours only (a genuine shift of
the class mix, drift on the size features), labels joined by request id."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from tests.cli.conftest import Cairn, shared_scenario

from cairn.client import Client
from cairn.data import NotFound, parse_ref
from cairn.ml.flavors import fetch, load
from cairn.monitoring import DriftConfig, DriftInputError, MonitoringError, prediction_drift
from cairn.monitoring.monitor import (
    check_model,
    parse_time,
    reference_frame,
    write_report_html,
)
from cairn.pipelines.sandbox import sandbox_available
from cairn.serving.predlog import PredictionLog, make_record, to_split

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC).timestamp()

# One datum per top-level entry of the input: each reads its files as CSV, whatever their
# names, and writes a model named after its first file, so that the datum of
# ``/bad/rows.jsonl`` trains although that file is not JSON Lines. joblib rather than skops
# keeps the transform's start-up short.
TRAIN = """
import glob, os
import joblib
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

pfs = os.environ["CAIRN_PFS"]
files = sorted(f for f in glob.glob(f"{pfs}/data/**", recursive=True) if os.path.isfile(f))
frame = pd.concat(pd.read_csv(f) for f in files)
x, y = frame.drop(columns="target"), frame["target"]
model = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=500)).fit(x, y)
name = os.path.splitext(os.path.basename(files[0]))[0]
os.makedirs(f"{pfs}/out", exist_ok=True)
joblib.dump(model, f"{pfs}/out/{name}.joblib")
"""


@dataclass
class Scenario:
    client: Client
    train: pd.DataFrame  # the training rows (the reference), with "target"
    held: pd.DataFrame  # the other rows, with "target"
    predict: Any  # the registered version, loaded
    train_ref: str  # repo@commit:/path of the training CSV


def halves() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training rows (even positions) and the held-out ones (odd), with ``target``
    (0 malignant, 1 benign)."""
    frame = load_breast_cancer(as_frame=True).frame
    return frame.iloc[::2], frame.iloc[1::2].reset_index(drop=True)


def build_store(cairn: Cairn) -> dict[str, Any]:
    """The store the monitoring tests share (built once per test run, across workers):
    pipeline ``train`` over repo ``cancer`` (glob ``/*``) trains ``cancer`` v1
    (``champion``) on ``/train.csv`` and ``bad`` v1 on ``/bad/rows.jsonl``, a file that
    holds CSV; the prediction log ``predictions`` holds deployment ``cancer`` (the held-out
    rows) and ``cancer-shift`` (the held-out malignant rows)."""
    train, held = halves()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CAIRN_SANDBOX", "none")
        for name in ("CAIRN_PFS", "PACH_DATUM_ID", "CAIRN_DATUM_CHANNEL", "CAIRN_HOME"):
            mp.delenv(name, raising=False)
        sandbox_available.cache_clear()
        client = Client(cairn.home, auto_run=False)
        try:
            client.create_repo("cancer")
            body = train.to_csv(index=False).encode()
            commit = client.put_files(
                "cancer",
                "master",
                [("/train.csv", io.BytesIO(body)), ("/bad/rows.jsonl", io.BytesIO(body))],
            )
            folder = cairn.root / "specs"
            folder.mkdir()
            (folder / "main.py").write_text(TRAIN)
            spec = {
                "pipeline": {"name": "train"},
                "transform": {"cmd": [sys.executable, "main.py"]},
                "input": {"pfs": {"repo": "cancer", "glob": "/*", "name": "data"}},
                "parallelism_spec": {"constant": 2},
            }
            (folder / "spec.json").write_text(orjson.dumps(spec).decode())
            client.create_pipelines(folder / "spec.json")
            [job] = client.run_pipelines()
            assert job.state == "success", job.reason
            version = client.registry.register("cancer", "train@master:/train.joblib", trust=True)
            client.registry.set_alias("cancer", "champion", version.version)
            client.registry.register("bad", "train@master:/rows.joblib", trust=True)
            model = load(version, fetch(client.data, version, cairn.root / "cache"))
            log_requests(client, model, "cancer", held)
            log_requests(client, model, "cancer-shift", held[held["target"] == 0])
        finally:
            client.data.catalog.dispose()
            sandbox_available.cache_clear()
    return {"train_ref": f"cancer@{commit.id}:/train.csv"}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    with shared_scenario(tmp_path_factory, "monitor-cancer", build_store) as (cairn, facts):
        client = Client(cairn.home, auto_run=False)
        version = client.registry.resolve("cancer@champion")
        model = load(version, fetch(client.data, version, tmp_path_factory.mktemp("cache")))
        train, held = halves()
        yield Scenario(client, train, held, model, facts["train_ref"])
        model.close()
        client.data.catalog.dispose()


def log_requests(
    client: Client,
    model: Any,
    deployment: str,
    rows: pd.DataFrame,
    *,
    repo: str = "predictions",
    per_request: int = 4,
    start: float = T0,
    step: float = 60.0,
) -> list[str]:
    """Log ``rows`` (feature columns) as requests of ``per_request`` rows, one every
    ``step`` seconds from ``start``, answered by ``model`` (``cancer`` v1); returns the
    request ids."""
    features = rows.drop(columns="target", errors="ignore")
    log = PredictionLog(client.data, repo, max_records=10_000)
    ids = []
    try:
        for i in range(0, len(features), per_request):
            batch = features.iloc[i : i + per_request]
            request_id = f"{deployment}-{i // per_request}"
            log.submit(
                make_record(
                    request_id=request_id,
                    deployment=deployment,
                    model="cancer",
                    version=1,
                    protocol="mlflow",
                    inputs=to_split(batch),
                    outputs=model.predict(batch),
                    latency_ms=1.0,
                    time_=start + (i // per_request) * step,
                    target="champion",
                )
            )
            ids.append(request_id)
        assert log.flush(timeout=30)
    finally:
        log.close()
    return ids


def log(s: Scenario, deployment: str, rows: pd.DataFrame, **kwargs: Any) -> list[str]:
    return log_requests(s.client, s.predict, deployment, rows, **kwargs)


def test_traffic_like_the_training_data_shows_no_drift(scenario):
    report = check_model(scenario.client.data, scenario.client.registry, "cancer@champion")
    assert (report.model, report.version, report.deployment) == ("cancer", 1, "cancer")
    assert report.reference["source"] == "lineage"
    assert report.reference["ref"] == [scenario.train_ref]
    assert report.reference["files"] == [scenario.train_ref]
    assert report.reference["rows"] == len(scenario.train)
    assert report.reference["columns"] == 30  # the signature's inputs, not "target"
    assert report.reference["predictions"] == "model"
    assert report.window["rows"] == report.window["version_rows"] == len(scenario.held)
    assert report.window["first_time"] == T0
    assert report.result.method == "test"  # <= 1000 reference rows: KS, Bonferroni
    assert not report.result.drifted and report.result.drifted_features == []
    assert report.prediction is not None and not report.prediction.drifted
    assert report.prediction.features[0].kind == "categorical"  # class labels
    assert report.performance is None
    assert "no drift" in report.verdict()
    raw = orjson.loads(report.to_json())
    assert raw["result"]["n_features"] == 30 and raw["drifted"] is False


def test_malignant_only_traffic_drifts_on_the_size_features(scenario):
    malignant = scenario.held[scenario.held["target"] == 0]
    report = check_model(
        scenario.client.data,
        scenario.client.registry,
        "cancer@champion",
        deployment="cancer-shift",
    )
    assert report.window["rows"] == len(malignant)
    assert report.result.drifted
    drifted = set(report.result.drifted_features)
    for name in ("mean radius", "worst perimeter", "worst concave points", "mean area"):
        assert name in drifted
    # Features that barely differ between the classes stay put.
    assert "mean fractal dimension" not in drifted
    assert report.prediction is not None and report.prediction.drifted
    assert "DRIFT" in report.verdict() and "prediction drift" in report.verdict()
    # The same traffic against a reference of malignant tumours is no shift at all.
    client = scenario.client
    client.create_repo("malignant")
    train_malignant = scenario.train[scenario.train["target"] == 0]
    commit = client.put_files(
        "malignant",
        "master",
        [("/m.csv", io.BytesIO(train_malignant.to_csv(index=False).encode()))],
    )
    named = check_model(
        client.data,
        client.registry,
        "cancer@champion",
        deployment="cancer-shift",
        reference="malignant@master",
    )
    assert named.reference["source"] == "named"
    assert named.reference["ref"] == f"malignant@{commit.id}:/"
    assert named.reference["rows"] == len(train_malignant)
    assert not named.result.drifted
    # (Its predictions differ a little: the model fits its own training rows better than
    # held-out ones, so only the inputs are compared here.)


def test_the_html_report_is_one_offline_file(scenario, tmp_path):
    # Four features keep the plotting short; the table and plots follow the result.
    columns = ("mean radius", "worst perimeter", "mean fractal dimension", "texture error")
    report = check_model(
        scenario.client.data,
        scenario.client.registry,
        "cancer@champion",
        deployment="cancer-shift",
        config=DriftConfig(columns=columns),
    )
    assert [f.name for f in report.result.features] == list(columns)
    page = write_report_html(tmp_path / "report.html", report).read_text()
    assert page.count("<img ") == 5  # a plot per feature and one of the outputs
    assert "Prediction drift" in page and scenario.train_ref in page
    assert page.count("DRIFT") >= 3  # the verdict and two size features at least
    assert "<script" not in page and "<link" not in page and "src='http" not in page


def test_windows_by_time_and_count(scenario):
    rows = scenario.held.iloc[:200]
    log(scenario, "cancer-time", rows, per_request=2, step=60.0)  # 100 requests
    data, registry = scenario.client.data, scenario.client.registry
    kwargs = {"deployment": "cancer-time"}
    whole = check_model(data, registry, "cancer/1", **kwargs)
    assert whole.window["rows"] == 200
    half = check_model(data, registry, "cancer", since=T0 + 50 * 60, **kwargs)
    assert half.window["rows"] == 100 and half.window["first_time"] == T0 + 50 * 60
    until = check_model(data, registry, "cancer", until=T0 + 20 * 60, **kwargs)
    assert until.window["rows"] == 40 and until.window["last_time"] == T0 + 19 * 60
    last = check_model(data, registry, "cancer", last=60, **kwargs)
    assert last.window["rows"] == 60 and last.window["last_time"] == T0 + 99 * 60
    with pytest.raises(DriftInputError, match="holds 0 logged row"):
        check_model(data, registry, "cancer", since=T0 + 86400, **kwargs)
    with pytest.raises(DriftInputError, match="holds 10 logged row"):
        check_model(data, registry, "cancer", last=10, **kwargs)
    assert check_model(data, registry, "cancer", last=10, min_rows=5, **kwargs).window["rows"]


def test_labels_joined_by_request_id_give_accuracy_per_hour(scenario):
    rows = scenario.held.iloc[:160]
    ids = log(scenario, "cancer-labels", rows, per_request=2, step=90.0)
    # Labels arrive later, for 60 of the 80 requests, two rows each, in request order.
    lines = []
    for k, request_id in enumerate(ids[:60]):
        for target in rows["target"].iloc[2 * k : 2 * k + 2]:
            lines.append(orjson.dumps({"request_id": request_id, "truth": int(target)}))
    client = scenario.client
    client.create_repo("cancer-truth")
    client.put_files("cancer-truth", "master", [("/day1.jsonl", io.BytesIO(b"\n".join(lines)))])
    report = check_model(
        client.data,
        client.registry,
        "cancer@champion",
        deployment="cancer-labels",
        labels="cancer-truth",
        label_column="truth",
    )
    perf = report.performance
    assert [p["metric"] for p in perf] == ["accuracy_score"] * 2  # 80 x 90 s: two hours
    assert [p["start"] for p in perf] == ["2026-11-23T10:00:00+00:00", "2026-11-23T11:00:00+00:00"]
    assert sum(p["predictions"] for p in perf) == 160
    assert sum(p["labelled"] for p in perf) == 120
    preds = scenario.predict.predict(rows.drop(columns="target").iloc[:120])
    expected = float((preds == rows["target"].iloc[:120].to_numpy()).mean())
    labelled = sum(p["value"] * p["labelled"] for p in perf) / 120
    assert labelled == pytest.approx(expected)
    assert 0.85 < expected <= 1.0
    with pytest.raises(DriftInputError):
        check_model(
            client.data,
            client.registry,
            "cancer",
            deployment="cancer-labels",
            labels="cancer-truth",
        )


def test_settings_reach_the_drift_computation(scenario):
    log(scenario, "cancer-settings", scenario.held)
    report = check_model(
        scenario.client.data,
        scenario.client.registry,
        "cancer@champion",
        deployment="cancer-settings",
        config=DriftConfig(method="psi", psi_threshold=0.1, drift_share=0.0),
    )
    assert report.result.method == "psi"
    assert report.result.config.drift_share == 0.0
    assert all(f.threshold == 0.1 for f in report.result.features)


def test_errors_name_what_is_missing(scenario, tmp_path):
    client = scenario.client
    data, registry = client.data, client.registry
    log(scenario, "cancer-errors", scenario.held.iloc[:40])
    with pytest.raises(NotFound):
        check_model(data, registry, "nosuch@champion")
    with pytest.raises(NotFound):
        check_model(data, registry, "cancer@champion", log_repo="no-log")
    with pytest.raises(NotFound):
        check_model(data, registry, "cancer@champion", deployment="never-served")
    with pytest.raises(NotFound):
        check_model(
            data, registry, "cancer@champion", deployment="cancer-errors", reference="nosuch@master"
        )
    # The bad model's lineage names a file that is not JSON Lines: the error names it.
    with pytest.raises(MonitoringError, match=r"cancer@[0-9a-f]+:/bad/rows\.jsonl.*jsonl"):
        check_model(data, registry, "bad", deployment="cancer-errors")
    # A version put by hand has no lineage to follow; a named reference still works.
    client.create_repo("handmade")
    blob = b"".join(data.read_file(parse_ref(registry.get_version("cancer", 1).ref)))
    client.put_files("handmade", "master", [("/m.joblib", io.BytesIO(blob))])
    hand = registry.register("handmade", "handmade@master:/m.joblib", trust=True)
    with pytest.raises(MonitoringError, match="--reference"):
        reference_frame(data, registry, hand)
    report = check_model(
        data, registry, "handmade", deployment="cancer-errors", reference="cancer@master:/train.csv"
    )
    assert report.reference["files"] == [scenario.train_ref]
    # A reference without tables.
    client.create_repo("notes")
    client.put_files("notes", "master", [("/README.txt", io.BytesIO(b"hello"))])
    with pytest.raises(MonitoringError, match="no table"):
        check_model(data, registry, "cancer", deployment="cancer-errors", reference="notes@master")


def test_a_window_with_predict_proba_requests_compares_like_with_like(scenario):
    """Before, one request answered by predict_proba (a list of probabilities among class
    labels) crashed the check with TypeError: unhashable type: 'list'."""
    client = scenario.client
    features = scenario.held.drop(columns="target").iloc[:120]
    log = PredictionLog(client.data, "predictions", max_records=10_000)
    try:
        for n, i in enumerate(range(0, len(features), 4)):
            batch = features.iloc[i : i + 4]
            proba = n in (3, 7)
            log.submit(
                make_record(
                    request_id=f"mixed-{n}",
                    deployment="cancer-mixed",
                    model="cancer",
                    version=1,
                    protocol="mlflow",
                    inputs=to_split(batch),
                    outputs=scenario.predict.predict(
                        batch, params={"method": "predict_proba"} if proba else None
                    ),
                    latency_ms=1.0,
                    time_=T0 + n * 60.0,
                    target="champion",
                    method="predict_proba" if proba else "predict",
                )
            )
        assert log.flush(timeout=30)
    finally:
        log.close()

    report = check_model(client.data, client.registry, "cancer@champion", deployment="cancer-mixed")
    assert report.window["rows"] == report.window["version_rows"] == 120
    assert report.window["compared_rows"] == 112
    assert report.window["left_out"] == {"predict_proba": 8}
    assert report.prediction is not None
    assert report.prediction.features[0].kind == "categorical"  # the labels alone
    assert report.frames is not None and len(report.frames.current_outputs) == 112

    # A rule over the same window ticks without raising, and records its check.
    client.monitors.create(
        {
            "name": "mixed-window",
            "model": "cancer@champion",
            "deployment": "cancer-mixed",
            "window": {"last": 120, "min_rows": 40},
            "schedule": {"interval": "1h"},
        }
    )
    try:
        [state] = [s for s in client.monitors.tick() if s.monitor == "mixed-window"]
        check = state.info["last_check"]
        assert check["rows"] == 120 and "error" not in check
    finally:
        client.monitors.delete("mixed-window")


def test_outputs_of_another_shape_are_refused_by_type_not_by_a_crash():
    with pytest.raises(DriftInputError):
        prediction_drift([0, 1, 1, 0], [1, [0.2, 0.8], 0, 1])


def test_parse_time():
    now = T0
    assert parse_time("1h", now) == now - 3600
    assert parse_time("30m", now) == now - 1800
    assert parse_time("2d", now) == now - 2 * 86400
    assert parse_time("2026-11-23T10:00", now) == T0
    assert parse_time("2026-11-23T11:00+01:00", now) == T0
    assert parse_time("2026-11-23", now) == T0 - 10 * 3600
    assert parse_time(str(T0), now) == T0
    assert parse_time(None) is None
    for bad in ("yesterday", "1y", "-1h"):
        with pytest.raises(DriftInputError):
            parse_time(bad, now)
