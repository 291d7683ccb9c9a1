"""The registry: immutable auto-numbered versions of real scikit-learn models, aliases with
their history and rollback, and lineage from a version back to the training job, its data
files and its run."""

from __future__ import annotations

import io
import threading

import joblib
import numpy as np
import pytest
import skops.io as sio
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sqlalchemy import text

from cairn.client import Client
from cairn.data import CommitStateError, InvalidReference, NotFound, parse_ref
from cairn.ml import FlavorError, MLError, SignatureError, UntrustedModel
from cairn.ml.events import list_events
from cairn.ml.flavors import fetch, load
from cairn.ml.signature import enforce


@pytest.fixture(scope="module")
def iris_models() -> list[bytes]:
    """Two different classifiers on iris (as a DataFrame: named columns), as .skops bytes."""
    x, y = load_iris(return_X_y=True, as_frame=True)
    return [
        sio.dumps(make_pipeline(StandardScaler(), LogisticRegression(C=c)).fit(x, y))
        for c in (0.01, 10.0)
    ]


def test_register_pins_the_commit_and_records_what_it_is(client, put, iris_models):
    first = put("models", {"iris.skops": iris_models[0]})
    v1 = client.registry.register("iris", "models@master:/iris.skops", description="baseline")
    assert (v1.name, v1.version, v1.commit, v1.path) == ("iris", 1, first.id, "/iris.skops")
    assert v1.flavor == "sklearn"
    assert v1.run is None and "training" not in v1.info  # a user's put, no pipeline
    assert (
        v1.info["hash"]
        == client.data.inspect_file(parse_ref(f"models@{first.id}:/iris.skops")).hash
    )
    assert [c["name"] for c in v1.signature["inputs"]][0] == "sepal length (cm)"
    # The branch moves on; the version does not.
    put("models", {"iris.skops": iris_models[1]})
    assert client.registry.get_version("iris", 1).commit == first.id
    v2 = client.registry.register("iris", "models@master:/iris.skops")
    assert v2.version == 2 and v2.commit != first.id
    assert [v.version for v in client.registry.list_versions("iris")] == [1, 2]
    [info] = client.registry.list_models()
    assert (info.name, info.latest, info.description) == ("iris", 2, "baseline")
    kinds = [e.kind for e in list_events(client.data.catalog, subject="iris")]
    assert kinds == ["model.register", "model.register"]


def test_registered_versions_load_and_predict_like_the_originals(
    client, put, iris_models, tmp_path
):
    x, _ = load_iris(return_X_y=True, as_frame=True)
    put("models", {"a.skops": iris_models[0], "b.skops": iris_models[1]})
    for i, path in enumerate(["/a.skops", "/b.skops"]):
        version = client.registry.register("iris", f"models@master:{path}")
        model = load(version, fetch(client.data, version, tmp_path / "cache"))
        expected = sio.loads(iris_models[i], trusted=sio.get_untrusted_types(data=iris_models[i]))
        frame = x.sample(60, random_state=i)
        np.testing.assert_array_equal(
            model.predict(enforce(model.signature, frame)), expected.predict(frame)
        )
    # The two versions differ, so the comparison above tells them apart.
    a, b = (sio.loads(m, trusted=sio.get_untrusted_types(data=m)) for m in iris_models)
    assert (a.predict(x) != b.predict(x)).any()


def test_a_given_signature_wins(client, put, iris_models):
    put("models", {"iris.skops": iris_models[0]})
    sig = {"inputs": [{"name": "only", "type": "long"}]}
    version = client.registry.register("iris", "models@master:/iris.skops", signature=sig)
    assert version.signature == {"inputs": [{"name": "only", "type": "long"}], "outputs": None}


@pytest.mark.parametrize(
    "name,ref,error",
    [
        ("bad name!", "models@master:/iris.skops", InvalidReference),
        ("-dash", "models@master:/iris.skops", InvalidReference),
        ("iris", "models@master", InvalidReference),
        ("iris", "models@master:/", InvalidReference),
        ("iris", "models@master:/missing.skops", NotFound),
        ("iris", "nosuchrepo@master:/iris.skops", NotFound),
        ("iris", "models@nosuchbranch:/iris.skops", NotFound),
        ("iris", "models@master:/notes.txt", FlavorError),
    ],
)
def test_bad_registrations_change_nothing(client, put, iris_models, name, ref, error):
    put("models", {"iris.skops": iris_models[0], "notes.txt": "hello"})
    with pytest.raises(error):
        client.registry.register(name, ref)
    assert client.registry.list_models() == []


def test_an_open_commit_cannot_be_registered(client, put, iris_models):
    first = put("models", {"iris.skops": iris_models[0]})
    client.start_commit("models", "master")
    client.put_files("models", "master", [("late.skops", io.BytesIO(iris_models[1]))])
    with pytest.raises(CommitStateError):
        client.registry.register("iris", "models@master:/late.skops")
    finished = f"models@{first.id}:/iris.skops"
    with pytest.raises(FlavorError):
        client.registry.register("iris", finished, flavor="tensorflow")
    with pytest.raises(SignatureError):
        client.registry.register("iris", finished, signature={"inputs": []})
    assert client.registry.list_models() == []
    assert client.registry.register("iris", finished).version == 1


def test_concurrent_registrations_get_distinct_numbers(client, put, iris_models, tmp_path):
    put("models", {"iris.skops": iris_models[0]})
    home = client.home
    numbers: list[int] = []
    errors: list[BaseException] = []

    def register() -> None:
        # Each thread has its own Client (its own engine and connections), as processes do.
        other = Client(home, auto_run=False)
        try:
            for _ in range(3):
                numbers.append(other.registry.register("iris", "models@master:/iris.skops").version)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            other.data.catalog.dispose()

    threads = [threading.Thread(target=register) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(numbers) == list(range(1, 13))


def test_resolve_specs(client, put, iris_models):
    put("models", {"iris.skops": iris_models[0]})
    for _ in range(3):
        client.registry.register("iris", "models@master:/iris.skops")
    client.registry.set_alias("iris", "champion", 2)
    assert client.registry.resolve("iris").version == 3
    assert client.registry.resolve("iris/latest").version == 3
    assert client.registry.resolve("iris/1").version == 1
    champion = client.registry.resolve("iris@champion")
    assert (champion.version, champion.aliases) == (2, ("champion",))
    assert client.registry.resolve("models:/iris@champion").version == 2
    with pytest.raises(NotFound):
        client.registry.resolve("iris@challenger")
    with pytest.raises(NotFound):
        client.registry.resolve("iris/9")
    with pytest.raises(NotFound):
        client.registry.resolve("nosuch")
    with pytest.raises(InvalidReference):
        client.registry.resolve("iris/champion")
    # numbers beyond SQLite's 64-bit integers are versions that do not exist (they raised
    # OverflowError from the driver: a traceback from `cairn inspect model iris/1e23`)
    huge = 10**23
    with pytest.raises(NotFound):
        client.registry.resolve(f"iris/{huge}")
    with pytest.raises(NotFound):
        client.registry.get_version("iris", huge)
    with pytest.raises(NotFound):
        client.registry.set_alias("iris", "champion", huge)


def test_aliases_move_delete_and_roll_back_like_an_undo_stack(client, put, iris_models):
    put("models", {"iris.skops": iris_models[0]})
    for _ in range(3):
        client.registry.register("iris", "models@master:/iris.skops")
    reg = client.registry
    for v in (1, 2, 3):
        reg.set_alias("iris", "champion", v, reason=f"promote {v}")
    reg.set_alias("iris", "champion", 3)  # no move: nothing recorded
    reg.set_alias("iris", "challenger", 1)
    assert reg.aliases("iris") == {"challenger": 1, "champion": 3}
    assert reg.get_version("iris", 3).aliases == ("champion",)

    assert reg.rollback_alias("iris", reason="bad canary").version == 2
    assert reg.rollback_alias("iris").version == 1
    with pytest.raises(MLError):
        reg.rollback_alias("iris")
    assert reg.aliases("iris")["champion"] == 1

    reg.set_alias("iris", "champion", 3)
    reg.delete_alias("iris", "champion")
    assert "champion" not in reg.aliases("iris")
    with pytest.raises(NotFound):
        reg.resolve("iris@champion")
    assert reg.rollback_alias("iris").version == 3  # undo the delete
    assert reg.rollback_alias("iris").version == 1  # undo the move to 3

    history = reg.alias_history("iris", "champion")
    assert [(h["kind"], h["version"]) for h in history] == [
        ("set", 1),
        ("set", 2),
        ("set", 3),
        ("rollback", 2),
        ("rollback", 1),
        ("set", 3),
        ("delete", None),
        ("rollback", 3),
        ("rollback", 1),
    ]
    events = list_events(client.data.catalog, subject="iris", kind="alias.")
    assert len(events) == len(history) + 1  # + the challenger's
    champion = [e for e in events if e.info["alias"] == "champion"]
    assert [e.kind.partition(".")[2] for e in champion] == [h["kind"] for h in history]
    assert champion[3].info == {
        "alias": "champion",
        "version": 2,
        "previous": 3,
        "reason": "bad canary",
    }


def test_alias_errors(client, put, iris_models):
    put("models", {"iris.skops": iris_models[0]})
    client.registry.register("iris", "models@master:/iris.skops")
    reg = client.registry
    with pytest.raises(NotFound):
        reg.set_alias("iris", "champion", 2)
    with pytest.raises(NotFound):
        reg.set_alias("nosuch", "champion", 1)
    for bad in ("latest", "12", "no spaces"):
        with pytest.raises(InvalidReference):
            reg.set_alias("iris", bad, 1)
    with pytest.raises(NotFound):
        reg.delete_alias("iris", "champion")
    with pytest.raises(MLError):
        reg.rollback_alias("iris", "champion")
    reg.set_alias("iris", "champion", 1)
    with pytest.raises(MLError):
        reg.rollback_alias("iris", "champion")
    assert [e.kind for e in list_events(client.data.catalog, subject="iris", kind="alias.")] == [
        "alias.set"
    ]


TRAIN = """
import glob, os
import pandas as pd
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
import cairn

pfs = os.environ["CAIRN_PFS"]
frame = pd.concat(pd.read_csv(f) for f in sorted(glob.glob(f"{pfs}/data/*.csv")))
x, y = frame.drop(columns="target"), frame["target"]
C = 0.5
cairn.log_params({"C": C, "rows": len(frame)})
model = make_pipeline(StandardScaler(), LogisticRegression(C=C)).fit(x, y)
cairn.log_metric("train_accuracy", float((model.predict(x) == y).mean()))
os.makedirs(f"{pfs}/out/model", exist_ok=True)
sio.dump(model, f"{pfs}/out/model/cancer.skops")
"""


def test_lineage_of_a_model_trained_by_a_pipeline(client, put, python_pipeline, tmp_path):
    frame = load_breast_cancer(as_frame=True).frame
    halves = {
        "part-1.csv": frame.iloc[::2].to_csv(index=False),
        "part-2.csv": frame.iloc[1::2].to_csv(index=False),
    }
    data_commit = put("cancer-data", halves)
    python_pipeline("train", {"pfs": {"repo": "cancer-data", "glob": "/", "name": "data"}}, TRAIN)
    [job] = client.pipelines.list_jobs("train")
    assert job.state == "success", job.reason

    version = client.registry.register("cancer", "train@master:/model/cancer.skops")
    assert version.flavor == "sklearn"
    assert version.info["training"]["pipeline"] == "train"
    assert version.info["training"]["job"] == job.id
    run = client.runs.get(version.run)
    assert run.params == {"C": 0.5, "rows": len(frame)}
    client.registry.set_alias("cancer", "champion", version.version)

    lineage = client.registry.lineage("cancer@champion")
    assert lineage["version"] == 1 and lineage["aliases"] == ["champion"]
    assert lineage["commit"] == version.commit
    training = lineage["training"]
    assert (training["pipeline"], training["job"], training["spec_version"]) == ("train", job.id, 1)
    assert training["input_commits"] == {
        "data": {"repo": "cancer-data", "branch": "master", "commit": data_commit.id}
    }
    files = {(f["repo"], f["commit"], f["path"]) for f in training["input_files"]}
    assert files == {
        ("cancer-data", data_commit.id, "/part-1.csv"),
        ("cancer-data", data_commit.id, "/part-2.csv"),
    }
    assert training["code"] and "main.py" in "".join(training["code"])
    assert training["code_hash"] == run.info["code_hash"]
    assert training["environment"]["python"]
    assert lineage["run"]["id"] == run.id
    assert lineage["run"]["params"]["C"] == 0.5
    assert 0.9 < lineage["run"]["metrics"]["train_accuracy"] <= 1.0

    # The registered model predicts like the model the pipeline wrote.
    model = load(version, fetch(client.data, version, tmp_path / "cache"))
    x = frame.drop(columns="target")
    accuracy = (model.predict(enforce(model.signature, x)) == frame["target"]).mean()
    assert accuracy == pytest.approx(lineage["run"]["metrics"]["train_accuracy"])


def test_versions_from_before_trust_was_recorded_load_only_if_they_need_none(
    client, put, iris_models, tmp_path
):
    # A store an older cairn wrote: model_versions without ``trusted``, a joblib version
    # registered back then without any consent, and a skops one.
    x, y = load_iris(return_X_y=True, as_frame=True)
    buf = io.BytesIO()
    joblib.dump(LogisticRegression(max_iter=500).fit(x, y), buf)
    put("models", {"old.joblib": buf.getvalue(), "old.skops": iris_models[0]})
    client.registry.register("iris", "models@master:/old.joblib", trust=True)
    client.registry.register("iris", "models@master:/old.skops")
    with client.data.catalog.write() as conn:
        conn.execute(text("ALTER TABLE model_versions DROP COLUMN trusted"))
    client.data.catalog.dispose()

    upgraded = Client(client.home, auto_run=False)
    try:
        pickled, skops_version = upgraded.registry.list_versions("iris")
        assert not pickled.trusted and not skops_version.trusted
        cache = tmp_path / "cache"
        with pytest.raises(UntrustedModel):
            load(pickled, fetch(upgraded.data, pickled, cache))
        assert load(skops_version, fetch(upgraded.data, skops_version, cache)).predict(x).size
        # what the error says to do: register it again, trusted
        again = upgraded.registry.register("iris", pickled.ref, trust=True)
        assert again.trusted and load(again, fetch(upgraded.data, again, cache)).predict(x).size
    finally:
        upgraded.data.catalog.dispose()
