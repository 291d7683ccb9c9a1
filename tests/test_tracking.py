"""MLflow's tracking calls on cairn (cairn.sdk, cairn.tracking, cairn.sklearn), through
both clients of the face: embedded and remote (a ``cairn server``). Each test drives the
module-level API the way a training script does, with the SDK pointed at the client."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.team_server import face_clients

import cairn
from cairn import sdk, tracking
from cairn.api.errors import InvalidReference, MLError, NotFound, UntrustedModel

CLIENTS = face_clients(pipelines=False)


@pytest.fixture(scope="module", params=sorted(CLIENTS))
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    with CLIENTS[request.param](tmp_path_factory.mktemp("home")) as client:
        yield client


@pytest.fixture(autouse=True)
def tracked(store: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in ("CAIRN_PFS", "PACH_DATUM_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sdk, "_store", store)
    monkeypatch.setattr(sdk, "_stack", [])
    monkeypatch.setattr(sdk, "_last", None)
    monkeypatch.setattr(sdk, "_experiment", None)
    yield store
    while sdk._stack:
        sdk.end_run()


def test_runs_start_without_with_nest_and_take_mlflow_arguments(store):
    cairn.set_experiment("tracking-runs")
    outer = cairn.start_run(run_name="outer", tags={"team": "a"}, description="first try")
    assert cairn.active_run() == outer and outer.info.run_id == outer.id
    child = cairn.start_run(run_name="child", nested=True)
    assert cairn.active_run() == child
    with pytest.raises(RuntimeError):
        cairn.start_run(run_name="not nested")
    cairn.log_metric("inner", 1.0)
    cairn.end_run()
    assert cairn.active_run() == outer
    with cairn.start_run(run_name="with-child", nested=True) as second:
        cairn.log_param("p", 1)
    cairn.end_run()
    assert cairn.active_run() is None and cairn.last_active_run() == outer
    runs = {r.name: r for r in store.runs.list("tracking-runs")}
    assert set(runs) == {"outer", "child", "with-child"}
    assert all(r.state == "finished" for r in runs.values())
    assert runs["child"].tags == {"mlflow.parentRunId": outer.id}
    assert runs["with-child"].tags == {"mlflow.parentRunId": outer.id}
    assert runs["outer"].tags == {"team": "a", "mlflow.note.content": "first try"}
    assert second.parent == outer.id
    failing = cairn.start_run()
    cairn.end_run("KILLED")
    assert store.runs.get(failing.id).state == "failed"


def test_metrics_take_steps_and_millisecond_timestamps_and_tags_can_go(store):
    with cairn.start_run() as run:
        cairn.log_metric("loss", 0.5, step=3, timestamp=1_700_000_000_123)
        cairn.log_metrics({"loss": 0.25, "acc": 0.9}, step=4)
        cairn.set_tags({"keep": "yes", "drop": "no"})
        cairn.delete_tag("drop")
        cairn.delete_tag("never-set")
    points = store.runs.history(run.id, "loss")
    assert [(p.step, p.value) for p in points] == [(3, 0.5), (4, 0.25)]
    assert points[0].timestamp == pytest.approx(1_700_000_000.123)
    assert store.runs.get(run.id).tags == {"keep": "yes"}


def test_artifacts_are_copies_in_the_store(store, tmp_path):
    local = tmp_path / "notes.txt"
    local.write_text("hello")
    folder = tmp_path / "outputs"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.csv").write_text("x\n1\n")
    (folder / "sub" / "b.bin").write_bytes(b"\0\1")
    with cairn.start_run() as run:
        cairn.log_artifact(local, artifact_path="docs")
        cairn.log_artifact(local)
        cairn.log_artifacts(folder, artifact_path="out")
        cairn.log_dict({"lr": 0.1}, "config/params.json")
        cairn.log_dict({"lr": 0.1}, "config/params.yaml")
        cairn.log_text("text", "t.txt")
        with pytest.raises(FileNotFoundError):
            cairn.log_artifact(tmp_path / "missing")
        with pytest.raises(ValueError):
            cairn.log_text("x", "../escape.txt")
    local.unlink()
    (folder / "a.csv").unlink()
    found = {
        ref.split(f":/{run.id}/", 1)[1]: ref for ref in store.runs.get(run.id).info["artifacts"]
    }
    assert tracking.list_artifacts(run.id) == sorted(found)
    assert sorted(found) == [
        "config/params.json",
        "config/params.yaml",
        "docs/notes.txt",
        "notes.txt",
        "out/a.csv",
        "out/sub/b.bin",
        "t.txt",
    ]
    assert store.files.read(found["docs/notes.txt"]) == b"hello"
    assert store.files.read(found["out/a.csv"]) == b"x\n1\n"
    assert store.files.read(found["out/sub/b.bin"]) == b"\0\1"
    assert json.loads(store.files.read(found["config/params.json"])) == {"lr": 0.1}
    assert store.files.read(found["config/params.yaml"]) == b"lr: 0.1\n"


def test_figures_images_tables_and_inputs(store, tmp_path):
    from matplotlib.figure import Figure
    from PIL import Image

    store.repos.create("tracking-data")
    store.files.put("tracking-data@master:/train.csv", b"a,b\n1,2\n")
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    figure = Figure()
    figure.subplots().plot([1, 2, 3])
    with cairn.start_run() as run:
        cairn.log_figure(figure, "plots/curve.png")
        cairn.log_image(np.full((4, 5, 3), 0.5), "images/grey.png")
        cairn.log_image(Image.new("L", (3, 2), 7), "images/pil.png")
        cairn.log_table(frame, "tables/t.json")
        cairn.log_input("tracking-data@master:/train.csv", context="training")
        cairn.log_input(frame, context="eval", name="holdout")
        with pytest.raises(ValueError):
            cairn.log_image(np.full((2, 2), 2.0), "bad.png")
        with pytest.raises(TypeError):
            cairn.log_input(object())
    info = store.runs.get(run.id).info
    found = {ref.split(f":/{run.id}/", 1)[1]: ref for ref in info["artifacts"]}
    grey = tmp_path / "grey.png"
    grey.write_bytes(store.files.read(found["images/grey.png"]))
    with Image.open(grey) as image:
        assert (image.size, image.getpixel((0, 0))) == ((5, 4), (128, 128, 128))
    assert store.files.read(found["plots/curve.png"]).startswith(b"\x89PNG")
    assert json.loads(store.files.read(found["tables/t.json"])) == {
        "columns": ["a", "b"],
        "data": [[1, "x"], [2, "y"]],
    }
    head = store.commits.get("tracking-data@master")
    data = info["inputs"]["tracking-data/train.csv"]
    assert (data["commit"], data["path"], data["context"]) == (head.id, "/train.csv", "training")
    assert data["hash"] == store.files.get("tracking-data@master:/train.csv").hash
    assert info["inputs"]["holdout"]["rows"] == 2


@pytest.fixture(scope="module")
def iris() -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


def test_a_logged_model_registers_by_runs_uri_and_loads_by_models_uri(store, iris):
    from sklearn.linear_model import LogisticRegression

    X, y = iris
    model = LogisticRegression(max_iter=300).fit(X, y)
    with cairn.start_run() as run:
        logged = cairn.log_model(model, "clf", input_example=X.head(3))
    assert logged.model_uri == f"runs:/{run.id}/clf"
    version = cairn.register_model(logged.model_uri, "tracking-iris")
    assert (version.flavor, version.run, version.trusted) == ("sklearn", run.id, False)
    assert [c["name"] for c in version.signature["inputs"]] == list(X.columns)
    store.models.set_alias("tracking-iris@champion", version.version)
    expected = model.predict(X.head(10))
    for uri in ("models:/tracking-iris@champion", f"models:/tracking-iris/{version.version}"):
        loaded = cairn.load_model(uri)
        assert list(loaded.predict(X.head(10))) == list(expected)
        assert loaded.metadata.version == version.version
    assert list(cairn.load_model(logged.model_uri).predict(X.head(10).to_numpy())) == list(expected)
    assert type(cairn.sklearn.load_model("models:/tracking-iris/latest")) is LogisticRegression
    with pytest.raises(NotFound):
        cairn.register_model(f"runs:/{run.id}/nothing", "tracking-iris")
    with pytest.raises(InvalidReference):
        cairn.load_model("models:/")


class Doubler:
    """A model that is no scikit-learn estimator: stored with joblib (pickle)."""

    def predict(self, frame):
        return frame.iloc[:, 0] * 2


def test_a_model_that_needs_pickle_registers_only_with_trust(store):
    with cairn.start_run():
        logged = cairn.log_model(Doubler(), "doubler")
    with pytest.raises(UntrustedModel):
        cairn.register_model(logged.model_uri, "tracking-doubler")
    with pytest.raises(UntrustedModel):
        cairn.load_model(logged.model_uri)
    assert list(cairn.load_model(logged.model_uri, trust=True).predict([[1.5], [2]])) == [3, 4]


def test_search_runs_filters_orders_and_returns_mlflow_shaped_frames(store):
    cairn.set_experiment("tracking-search")
    for lr, acc in ((0.1, 0.9), (0.01, 0.7), (0.1, 0.8)):
        with cairn.start_run(run_name=f"lr-{lr}-{acc}"):
            cairn.log_params({"lr": lr, "model": "svm"})
            cairn.log_metric("acc", acc)
    frame = cairn.search_runs(filter_string="params.lr = '0.1'", order_by=["metrics.acc DESC"])
    assert list(frame["metrics.acc"]) == [0.9, 0.8]
    assert list(frame.columns[:6]) == [
        "run_id",
        "experiment_id",
        "status",
        "artifact_uri",
        "start_time",
        "end_time",
    ]
    assert {"params.lr", "params.model", "tags.mlflow.runName"} <= set(frame.columns)
    assert list(frame["params.lr"]) == ["0.1", "0.1"] and set(frame["status"]) == {"FINISHED"}
    assert str(frame["start_time"].dtype).startswith("datetime64") and frame["start_time"].dt.tz
    runs = cairn.search_runs(
        experiment_names=["tracking-search"],
        filter_string="attributes.run_name LIKE 'lr-0.01%'",
        output_format="list",
    )
    assert [r.name for r in runs] == ["lr-0.01-0.7"]
    with pytest.raises(MLError):
        cairn.search_runs(filter_string="params.lr = 0.1")
    assert cairn.search_runs(experiment_names=["no-such-experiment"]).empty


def test_autolog_records_params_training_metrics_tags_and_model(store, iris):
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = iris
    cairn.sklearn.autolog()
    try:
        pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=300))])
        pipe.fit(X, y)
        classified = store.runs.get(cairn.last_active_run().id)
        with cairn.start_run(run_name="inside") as outer:
            LinearRegression().fit(X, X["sepal length (cm)"])
        regressed = store.runs.get(outer.id)
    finally:
        cairn.sklearn.autolog(disable=True)
    LinearRegression().fit(X, y)  # disabled: records nothing
    assert cairn.last_active_run() == outer
    assert classified.state == "finished"
    assert classified.params["clf__C"] == "1.0" and classified.params["scale__with_mean"] == "True"
    assert classified.tags == {
        "estimator_name": "Pipeline",
        "estimator_class": "sklearn.pipeline.Pipeline",
        "mlflow.autologging": "sklearn",
    }
    assert set(classified.metrics) == {
        "training_accuracy_score",
        "training_precision_score",
        "training_recall_score",
        "training_f1_score",
        "training_log_loss",
        "training_roc_auc",
        "training_score",
    }
    assert classified.metrics["training_score"] == pytest.approx(pipe.score(X, y))
    assert set(tracking.list_artifacts(classified.id)) >= {
        "estimator.html",
        "training_confusion_matrix.png",
        "model/model.skops",
    }
    assert set(regressed.metrics) == {
        "training_mean_squared_error",
        "training_root_mean_squared_error",
        "training_mean_absolute_error",
        "training_r2_score",
        "training_score",
    }
    assert regressed.metrics["training_r2_score"] == pytest.approx(1.0)
    version = cairn.register_model(f"runs:/{classified.id}/model", "tracking-autolog")
    assert list(cairn.load_model("models:/tracking-autolog/1").predict(X.head(5))) == list(
        pipe.predict(X.head(5))
    )
    assert version.version == 1


def test_the_cli_registers_a_runs_uri(store, iris, tmp_path):
    import shutil
    import subprocess

    from sklearn.tree import DecisionTreeClassifier

    X, y = iris
    with cairn.start_run() as run:
        cairn.log_model(DecisionTreeClassifier(max_depth=2).fit(X, y), "tree")
    env = {**os.environ, "CAIRN_CONFIG_DIR": str(tmp_path / "config")}
    for name in ("CAIRN_URL", "CAIRN_HOME", "CAIRN_TOKEN", "CAIRN_CONTEXT"):
        env.pop(name, None)
    if isinstance(store, cairn.Client):
        env["CAIRN_HOME"] = str(store.home)
    else:
        env["CAIRN_URL"] = store.transport.url
    command = ["register", "model", "tracking-cli", f"runs:/{run.id}/tree"]
    cli = shutil.which("cairn") or "cairn"
    out = subprocess.run([cli, *command], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "tracking-cli/1"
    version = store.models.get("tracking-cli/1")
    assert (version.run, Path(version.path).name) == (run.id, "model.skops")


def test_inside_a_transform_artifacts_are_output_files_of_the_datum(tmp_path, monkeypatch):
    pfs = tmp_path / "pfs"
    (pfs / "out").mkdir(parents=True)
    monkeypatch.setenv("CAIRN_PFS", str(pfs))
    monkeypatch.setenv("PACH_DATUM_ID", "d1")
    local = tmp_path / "report.txt"
    local.write_text("made elsewhere")
    with cairn.start_run(run_name="datum"):
        cairn.log_text("hi", "notes/a.txt")
        cairn.log_artifact(local, artifact_path="reports")
        cairn.log_artifact(pfs / "out" / "later.bin")  # an output the datum writes later
        with pytest.raises(RuntimeError):
            cairn.start_run(nested=True)  # one run per datum
        with pytest.raises(RuntimeError):
            cairn.delete_tag("x")
    assert (pfs / "out" / "notes" / "a.txt").read_text() == "hi"
    assert (pfs / "out" / "reports" / "report.txt").read_text() == "made elsewhere"
    events = [json.loads(line) for line in (pfs / "out/.cairn/runs/d1.jsonl").read_text().split()]
    assert [e["artifact"] for e in events if "artifact" in e] == [
        "notes/a.txt",
        "reports/report.txt",
        "later.bin",
    ]


def test_the_sdk_names_the_artifact_repo_the_registry_links_runs_by():
    from cairn.ml.runs import ARTIFACT_REPO

    assert sdk.ARTIFACT_REPO == ARTIFACT_REPO
