"""End to end through the ``cairn`` console script: register models, list and inspect them,
move aliases and roll them back, and print a model's lineage back to its training data."""

from __future__ import annotations

import io
import json
import os
import pickle
import sys

import joblib
import skops.io as sio
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tests.cli.conftest import pfs, pipeline, seed_repo


def _iris_skops(c: float) -> bytes:
    x, y = load_iris(return_X_y=True, as_frame=True)
    return sio.dumps(make_pipeline(StandardScaler(), LogisticRegression(C=c)).fit(x, y))


def test_register_list_inspect_and_move_aliases(cairn):
    commit = seed_repo(cairn, "models", {"a.skops": _iris_skops(0.1), "b.skops": _iris_skops(5)})
    first = cairn("register", "model", "iris", "models@master:/a.skops", "-d", "small C")
    assert first.stdout.strip() == "iris/1"
    v2 = cairn.raw("register", "model", "iris", f"models@{commit[:8]}:/b.skops")
    assert (v2["version"], v2["commit"], v2["flavor"]) == (2, commit, "sklearn")
    assert v2["signature"]["inputs"][0] == {"name": "sepal length (cm)", "type": "double"}

    cairn("set", "alias", "iris", "champion", "1")
    cairn("set", "alias", "iris", "champion", "2", "--reason", "better")
    [model] = cairn.raw("list", "model")
    assert (model["name"], model["latest"], model["aliases"]) == ("iris", 2, {"champion": 2})
    assert "champion=2" in cairn("list", "model").stdout
    versions = cairn.raw("list", "model", "iris")
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0]["description"] == "small C"
    table = cairn("list", "model", "iris").stdout
    assert "VERSION" in table and "champion" in table

    shown = cairn("inspect", "model", "iris@champion").stdout
    assert "Version:" in shown and f"models@{commit}:/b.skops" in shown
    assert cairn.raw("inspect", "model", "iris/1")["aliases"] == []

    cairn("rollback", "alias", "iris")
    assert cairn.raw("inspect", "model", "iris@champion")["version"] == 1
    cairn.fails("rollback", "alias", "iris", "champion")
    cairn("delete", "alias", "iris", "champion")
    assert "no alias 'champion'" in cairn.fails("inspect", "model", "iris@champion").stderr
    assert cairn.raw("list", "model")[0]["aliases"] == {}

    cairn.fails("register", "model", "bad name", "models@master:/a.skops")
    cairn.fails("register", "model", "iris", "models@master:/nope.skops")
    cairn.fails("set", "alias", "iris", "champion", "7")
    assert len(cairn.raw("list", "model", "iris")) == 2


class _MakesADirectory:
    """Unpickling it runs ``os.mkdir(path)``: the code a hostile pickle would run."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_a_pickle_registers_only_with_trust_which_inspect_shows(cairn):
    marker = cairn.root / "ran"
    buf = io.BytesIO()
    x, y = load_iris(return_X_y=True, as_frame=True)
    joblib.dump(LogisticRegression(max_iter=500).fit(x, y), buf)
    seed_repo(
        cairn,
        "models",
        {
            "model.bin": pickle.dumps(_MakesADirectory(str(marker))),
            "iris.joblib": buf.getvalue(),
            "iris.skops": _iris_skops(1.0),
        },
    )
    # before: the pickle's code ran in the cairn process at registration
    refused = cairn.fails("register", "model", "evil", "models@master:/model.bin")
    assert "--trust" in refused.stderr and "skops" in refused.stderr
    assert not marker.exists()

    v1 = cairn.raw("register", "model", "iris", "models@master:/iris.joblib", "--trust")
    assert (v1["version"], v1["flavor"], v1["trusted"]) == (1, "sklearn", True)
    cairn("register", "model", "iris", "models@master:/iris.skops")
    assert cairn.raw("inspect", "model", "iris/2")["trusted"] is False
    for version, shown in ((1, "yes"), (2, "no")):
        lines = cairn("inspect", "model", f"iris/{version}").stdout.splitlines()
        assert [line.split()[1] for line in lines if line.startswith("Trusted:")] == [shown]


def test_register_a_command_model_with_a_signature_file(cairn):
    seed_repo(cairn, "models", {"echo/run.py": "print('[]')"})
    cairn.write("sig.json", json.dumps({"inputs": [{"name": "x", "type": "double"}]}))
    v = cairn.raw(
        "register",
        "model",
        "echo",
        "models@master:/echo",
        "--cmd",
        "python3 run.py",
        "--signature",
        "@sig.json",
        "--timeout",
        "5",
    )
    assert v["flavor"] == "command"
    assert v["info"]["command"] == ["python3", "run.py"]
    assert v["info"]["timeout"] == 5.0
    assert v["signature"]["inputs"] == [{"name": "x", "type": "double"}]
    assert "python3 run.py" in cairn("inspect", "model", "echo").stdout
    cairn.fails("register", "model", "echo", "models@master:/echo", "--signature", "{oops")


TRAIN = """
import glob, os
import pandas as pd
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
import cairn

pfs = os.environ["CAIRN_PFS"]
frame = pd.concat(pd.read_csv(f) for f in sorted(glob.glob(f"{pfs}/training/*.csv")))
cairn.log_params({"C": 2.0})
model = make_pipeline(StandardScaler(), LogisticRegression(C=2.0))
model.fit(frame.drop(columns="target"), frame["target"])
cairn.log_metric("train_accuracy", model.score(frame.drop(columns="target"), frame["target"]))
sio.dump(model, f"{pfs}/out/model.skops")
"""


def test_lineage_model_reaches_the_training_data_and_the_run(cairn):
    table = load_breast_cancer(as_frame=True).frame
    data = seed_repo(cairn, "training", {"cancer.csv": table.to_csv(index=False)})
    cairn.write("train.py", TRAIN)
    spec = pipeline("train", pfs("training", "/"), [sys.executable, "train.py"])
    cairn("create", "pipeline", "-f", str(cairn.spec(spec)), env={"CAIRN_SANDBOX": "none"})
    cairn("register", "model", "cancer", "train@master:/model.skops")
    cairn("set", "alias", "cancer", "champion", "1")

    lineage = cairn.raw("lineage", "model", "cancer@champion")
    assert lineage["training"]["pipeline"] == "train"
    [source] = lineage["training"]["input_files"]
    assert (source["repo"], source["commit"], source["path"]) == ("training", data, "/cancer.csv")
    assert lineage["run"]["params"] == {"C": 2.0}

    text = cairn("lineage", "model", "cancer@champion").stdout
    assert "pipeline train" in text
    assert f"training@{data}:/cancer.csv" in text
    assert "param C = 2.0" in text and "metric train_accuracy" in text
    # The repo form still works next to the model form.
    assert "written by pipeline train" in cairn("lineage", "train@master:/model.skops").stdout
    cairn.fails("lineage", "model", "cancer@nosuch")


def test_register_with_an_input_example_types_the_signature(cairn):
    # before: no --input-example; a command model had no signature unless written by hand
    seed_repo(cairn, "models", {"echo/run.py": "print('[]')"})
    cairn.write(
        "example.csv",
        "island,year,heavy,seen,mass\nBiscoe,2007,true,2024-05-01T10:00:00,3750.5\n"
        "Dream,2008,false,2024-05-02T11:30:00,4200.0\n",
    )
    v = cairn.raw(
        "register",
        "model",
        "echo",
        "models@master:/echo",
        "--cmd",
        "python3 run.py",
        "--input-example",
        "example.csv",
    )
    assert v["signature"]["inputs"] == [
        {"name": "island", "type": "string"},
        {"name": "year", "type": "long"},
        {"name": "heavy", "type": "boolean"},
        {"name": "seen", "type": "datetime"},
        {"name": "mass", "type": "double"},
    ]
    cairn.write("bad.csv", "")
    cairn.fails(
        "register",
        "model",
        "echo",
        "models@master:/echo",
        "--cmd",
        "python3 run.py",
        "--input-example",
        "bad.csv",
    )
