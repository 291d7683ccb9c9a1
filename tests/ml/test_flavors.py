"""Flavors with real models: scikit-learn through skops (and its trust policy) and joblib,
plain Python objects, commands in Python and awk speaking JSON, and MLflow model folders;
fetching into a cache that concurrent workers share; pickles, told by their content, that
neither register nor load without the user's trust."""

from __future__ import annotations

import dataclasses
import io
import json
import pickle
import sys
import threading
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from cairn.ml import FlavorError, SignatureError, UntrustedModel
from cairn.ml.flavors import fetch, file_format, load, load_object
from cairn.ml.signature import enforce


def _halve(x):
    return x / 2


@pytest.fixture(scope="module")
def cancer():
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return x, y, make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)


def _bytes(obj, kind: str) -> bytes:
    buf = io.BytesIO()
    if kind == "skops":
        return sio.dumps(obj)
    joblib.dump(obj, buf)
    return buf.getvalue()


def _register(client, put, name: str, files: dict, path: str, **kwargs):
    put("models", files)
    return client.registry.register(name, f"models@master:{path}", **kwargs)


def _predict(version, client, tmp_path, frame, params=None):
    local = fetch(client.data, version, tmp_path / "cache")
    model = load(version, local)
    try:
        return model.predict(enforce(version.signature, frame), params)
    finally:
        model.close()


def test_fetch_is_atomic_and_shared_by_concurrent_workers(client, put, tmp_path, cancer):
    x, _, model = cancer
    files = {"mlp/model.skops": sio.dumps(model), "mlp/sub/readme.txt": "about", "mlp/x": "y"}
    version = _register(client, put, "folder", files, "/mlp", flavor="command", command=["cat"])
    found: list[Path] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            found.append(fetch(client.data, version, tmp_path / "cache"))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(found)) == 1
    local = found[0]
    assert local.name == "mlp"
    assert (local / "sub" / "readme.txt").read_text() == "about"
    assert (local / "model.skops").read_bytes() == files["mlp/model.skops"]
    # Only the winner's copy is left: no temporary folders behind.
    assert [p.name for p in local.parent.parent.iterdir()] == [local.parent.name]
    before = (local / "x").stat().st_mtime_ns
    assert fetch(client.data, version, tmp_path / "cache") == local
    assert (local / "x").stat().st_mtime_ns == before


def test_skops_sklearn_model_predicts_like_the_original(client, put, tmp_path, cancer):
    x, _, model = cancer
    version = _register(client, put, "cancer", {"m.skops": sio.dumps(model)}, "/m.skops")
    assert version.flavor == "sklearn"
    got = _predict(version, client, tmp_path, x.head(50))
    np.testing.assert_array_equal(got, model.predict(x.head(50)))
    proba = _predict(version, client, tmp_path, x.head(5), {"method": "predict_proba"})
    np.testing.assert_allclose(proba, model.predict_proba(x.head(5)))
    with pytest.raises(SignatureError):
        _predict(version, client, tmp_path, x.head(5), {"method": "fit"})
    with pytest.raises(SignatureError):
        _predict(version, client, tmp_path, x.head(5), {"temperature": 2})


def test_skops_trusts_sklearn_types_beyond_its_defaults(client, put, tmp_path, cancer):
    x, y, _ = cancer
    model = HistGradientBoostingClassifier(max_iter=20).fit(x, y)
    assert sio.get_untrusted_types(data=sio.dumps(model))  # TreePredictor, a sklearn type
    version = _register(client, put, "hgb", {"hgb.skops": sio.dumps(model)}, "/hgb.skops")
    np.testing.assert_array_equal(
        _predict(version, client, tmp_path, x.head(20)), model.predict(x.head(20))
    )


def test_skops_refuses_types_outside_the_trusted_packages(client, put, tmp_path, cancer):
    x, y, _ = cancer
    model = make_pipeline(FunctionTransformer(_halve), StandardScaler(), LogisticRegression())
    model.fit(x, y)
    put("models", {"evil.skops": sio.dumps(model)})
    with pytest.raises(FlavorError, match="_halve"):
        client.registry.register("evil", "models@master:/evil.skops")
    assert client.registry.list_models() == []


def test_skops_refuses_functions_even_from_the_trusted_packages(client, put, cancer):
    # A function reference is code the file makes run at predict time; only classes of
    # scikit-learn, NumPy and SciPy are trusted (numpy.testing has a helper calling exec).
    x, y, _ = cancer
    model = make_pipeline(
        FunctionTransformer(np.nan_to_num), StandardScaler(), LogisticRegression()
    )
    model.fit(x, y)
    assert sio.get_untrusted_types(data=sio.dumps(model)) == ["numpy.nan_to_num"]
    put("models", {"fn.skops": sio.dumps(model)})
    with pytest.raises(FlavorError, match="numpy.nan_to_num"):
        client.registry.register("fn", "models@master:/fn.skops")
    assert client.registry.list_models() == []


def test_joblib_sklearn_model_on_an_array(client, put, tmp_path):
    x, y = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=200).fit(x[:500], y[:500])
    files = {"d.joblib": _bytes(model, "joblib")}
    version = _register(client, put, "digits", files, "/d.joblib", trust=True)
    assert version.flavor == "sklearn" and version.trusted
    assert version.signature["positional"] is True
    got = _predict(version, client, tmp_path, pd.DataFrame(x[500:600]))
    np.testing.assert_array_equal(got, model.predict(x[500:600]))


class Threshold:
    """A plain Python model: 1 where a column exceeds a threshold."""

    def __init__(self, column: str, at: float) -> None:
        self.column, self.at = column, at

    def predict(self, frame, params=None):
        at = (params or {}).get("at", self.at)
        return (frame[self.column] > at).astype(int).to_numpy()


def test_python_flavor_object_with_predict_and_params(client, put, tmp_path, cancer):
    x, _, _ = cancer
    model = Threshold("mean radius", 15.0)
    version = _register(
        client,
        put,
        "thresh",
        {"t.pkl": _bytes(model, "joblib")},
        "/t.pkl",
        signature={"inputs": [{"name": "mean radius", "type": "double"}]},
        trust=True,
    )
    assert version.flavor == "python"
    frame = x[["mean radius"]].head(30)
    np.testing.assert_array_equal(_predict(version, client, tmp_path, frame), model.predict(frame))
    np.testing.assert_array_equal(
        _predict(version, client, tmp_path, frame, {"at": 12.0}),
        model.predict(frame, {"at": 12.0}),
    )


def test_a_non_sklearn_object_is_not_the_sklearn_flavor(client, put):
    put("models", {"t.pkl": _bytes(Threshold("a", 1.0), "joblib")})
    with pytest.raises(FlavorError, match="--flavor python"):
        client.registry.register("t", "models@master:/t.pkl", flavor="sklearn", trust=True)
    put("models", {"nothing.pkl": _bytes({"no": "predict"}, "joblib")})
    with pytest.raises(FlavorError, match="predict"):
        client.registry.register("t", "models@master:/nothing.pkl", trust=True)
    put("models", {"junk.pkl": b"not a pickle at all"})
    with pytest.raises(FlavorError):
        client.registry.register("t", "models@master:/junk.pkl", trust=True)
    assert client.registry.list_models() == []


# -- trust: formats whose loading runs code -------------------------------------------------


def _arm(marker: Path, model):
    """What the crafted pickle below calls while it is unpickled: leaves ``marker`` (the
    code an attacker would run) and returns a working model, so nothing looks amiss."""
    marker.write_text("this ran on the host")
    return model


class _Armed:
    def __init__(self, marker: Path, model) -> None:
        self.marker, self.model = marker, model

    def __reduce__(self):
        return (_arm, (self.marker, self.model))


def _armed(marker: Path, model, how: str) -> bytes:
    armed = _Armed(marker, model)
    if how == "joblib-zlib":
        buf = io.BytesIO()
        joblib.dump(armed, buf, compress=("zlib", 3))
        return buf.getvalue()
    return pickle.dumps(armed, protocol=0 if how == "protocol-0" else 5)


@pytest.mark.parametrize(
    "path,how,flavor",
    [
        ("/m.pkl", "pickle", None),
        ("/m.bin", "pickle", None),  # renamed: told by its content
        ("/m.skops", "pickle", None),  # misnamed
        ("/m.joblib", "joblib-zlib", None),
        ("/m.pkl", "pickle", "sklearn"),
        ("/m.data", "protocol-0", "python"),  # no header: not skops is enough
    ],
)
def test_an_untrusted_pickle_is_refused_and_never_unpickled(
    client, put, tmp_path, cancer, path, how, flavor
):
    # before: registering silently unpickled the file on the host (to infer its flavor
    # and signature), running whatever the file named
    _, _, model = cancer
    marker = tmp_path / "marker"
    put("models", {path.lstrip("/"): _armed(marker, model, how)})
    with pytest.raises(UntrustedModel):
        client.registry.register("evil", f"models@master:{path}", flavor=flavor)
    assert not marker.exists()
    assert client.registry.list_models() == []


def test_a_trusted_pickle_is_recorded_as_trusted_and_loads(client, put, tmp_path, cancer):
    x, _, model = cancer
    marker = tmp_path / "marker"
    put("models", {"m.bin": _armed(marker, model, "pickle")})
    version = client.registry.register("ok", "models@master:/m.bin", trust=True)
    assert marker.exists()  # the user consented: its code ran, to infer the signature
    assert version.trusted and version.flavor == "sklearn"
    assert client.registry.get_version("ok", 1).trusted
    assert client.registry.list_versions("ok")[0].to_json()["trusted"] is True
    np.testing.assert_array_equal(
        _predict(version, client, tmp_path, x.head(10)), model.predict(x.head(10))
    )


def test_loading_refuses_a_pickle_version_not_recorded_as_trusted(client, put, tmp_path, cancer):
    # defence in depth: a version registered without trust (by a cairn from before trust
    # was recorded) is refused by every loader, serving and monitoring included
    _, _, model = cancer
    marker = tmp_path / "marker"
    put("models", {"m.pkl": _armed(marker, model, "pickle")})
    version = client.registry.register("ok", "models@master:/m.pkl", trust=True)
    marker.unlink()
    local = fetch(client.data, version, tmp_path / "cache")
    with pytest.raises(UntrustedModel) as refused:
        load(dataclasses.replace(version, trusted=False), local)
    # the CLI names the command that registers it again, trusted
    assert refused.value.about == ("model.retrust", {"model": "ok", "ref": version.ref})
    with pytest.raises(UntrustedModel):
        load(dataclasses.replace(version, trusted=False, flavor="python"), local)
    with pytest.raises(UntrustedModel):
        load_object(local)
    assert not marker.exists()


def test_file_format_reads_the_content_not_the_name(tmp_path, cancer):
    _, _, model = cancer
    cases = {
        "skops": sio.dumps(model),
        "pickle": pickle.dumps(model, protocol=2),
        "joblib": _bytes(model, "joblib"),  # uncompressed joblib is a pickle
        "zlib": _armed(tmp_path / "m", model, "joblib-zlib"),
        "text": b"not a model",
        "empty": b"",
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("other.json", "{}")
    cases["zip"] = buf.getvalue()
    found = {}
    for name, blob in cases.items():
        (tmp_path / f"{name}.skops").write_bytes(blob)
        found[name] = file_format(tmp_path / f"{name}.skops")
    assert found == {
        "skops": "skops",
        "pickle": "pickle",
        "joblib": "pickle",
        "zlib": "joblib",
        "text": "unknown",
        "empty": "unknown",
        "zip": "unknown",
    }


PREDICT_PY = """
import json, sys
request = json.load(sys.stdin)
split = request["dataframe_split"]
weights = json.load(open("weights.json"))
col = {name: i for i, name in enumerate(split["columns"])}
scale = request["params"].get("scale", 1)
out = [scale * sum(w * row[col[name]] for name, w in weights.items()) for row in split["data"]]
print(json.dumps({"predictions": out}))
"""

# y = 2 * x + 1 over the first column; the request is one line of JSON (pandas' to_json).
PREDICT_AWK = r"""{
  match($0, /"data":\[\[.*\]\]/)
  s = substr($0, RSTART + 9, RLENGTH - 11)
  n = split(s, rows, /\],\[/)
  out = ""
  for (i = 1; i <= n; i++) { split(rows[i], v, ","); out = out (i > 1 ? "," : "") (2 * v[1] + 1) }
  print "[" out "]"
}
"""


def test_command_flavor_in_python(client, put, tmp_path):
    files = {"lin/predict.py": PREDICT_PY, "lin/weights.json": json.dumps({"a": 2.0, "b": -1.0})}
    version = _register(
        client,
        put,
        "lin",
        files,
        "/lin",
        command=[sys.executable, "predict.py"],
        signature={"inputs": [{"name": "a", "type": "double"}, {"name": "b", "type": "double"}]},
    )
    assert version.flavor == "command"
    frame = pd.DataFrame({"b": [1.0, 0.5, 3.0], "a": [4.0, 1.0, 0.0]})
    assert _predict(version, client, tmp_path, frame) == [7.0, 1.5, -3.0]
    assert _predict(version, client, tmp_path, frame, {"scale": 2}) == [14.0, 3.0, -6.0]


def test_command_flavor_in_awk(client, put, tmp_path):
    version = _register(
        client,
        put,
        "awk",
        {"awk/predict.awk": PREDICT_AWK},
        "/awk",
        command=["awk", "-f", "predict.awk"],
    )
    frame = pd.DataFrame({"x": [1.0, 2.5, -4.0]})
    assert _predict(version, client, tmp_path, frame) == [3, 6, -7]


@pytest.mark.parametrize(
    "script,match",
    [
        ("import sys; print('boom', file=sys.stderr); sys.exit(3)", "status 3: boom"),
        ("print('not json')", "no JSON"),
        ("print('[1]')", "list of 2"),
        ("import time; time.sleep(30)", "within 0.5 s"),
    ],
)
def test_a_failing_command_raises_a_clear_error(client, put, tmp_path, script, match):
    version = _register(
        client,
        put,
        "bad",
        {"bad/run.py": script},
        "/bad",
        command=[sys.executable, "run.py"],
        timeout=0.5,
    )
    with pytest.raises(FlavorError, match=match):
        _predict(version, client, tmp_path, pd.DataFrame({"x": [1.0, 2.0]}))


GRANDCHILD = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
open(sys.argv[1], "w").write(str(child.pid))
if sys.argv[2] == "hang":
    time.sleep(300)
print("[1, 2]")
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("mode", ["hang", "answer"])
def test_a_command_leaves_no_process_behind(client, put, tmp_path, mode):
    # a timed-out (or answered) command's own children are killed with it: before, only
    # the direct child was killed, and a child holding stdout kept predict waiting for the
    # whole timeout even after the command had answered
    pidfile = tmp_path / "grandchild.pid"
    version = _register(
        client,
        put,
        f"spawn-{mode}",
        {"spawn/run.py": GRANDCHILD},
        "/spawn",
        command=[sys.executable, "run.py", str(pidfile), mode],
        timeout=5,
    )
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    if mode == "hang":
        with pytest.raises(FlavorError, match="within 5 s"):
            _predict(version, client, tmp_path, frame)
    else:
        assert _predict(version, client, tmp_path, frame) == [1, 2]
    pid = int(pidfile.read_text())
    for _ in range(100):
        if not _alive(pid):
            break
        threading.Event().wait(0.05)
    assert not _alive(pid)


def test_a_command_writing_without_end_is_stopped_at_the_output_limit(
    client, put, tmp_path, monkeypatch
):
    from cairn.ml import flavors

    monkeypatch.setattr(flavors, "MAX_OUTPUT", 1 << 20, raising=False)
    script = "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n"
    version = _register(
        client,
        put,
        "chatty",
        {"chatty/run.py": script},
        "/chatty",
        command=[sys.executable, "run.py"],
        timeout=20,
    )
    # before: every byte was kept in memory until the timeout (GBs), then "did not answer"
    with pytest.raises(FlavorError, match="more than 1048576 bytes"):
        _predict(version, client, tmp_path, pd.DataFrame({"x": [1.0]}))


def test_command_flavor_needs_a_command(client, put):
    put("models", {"f/run.py": "print(1)"})
    with pytest.raises(FlavorError, match="--cmd"):
        client.registry.register("c", "models@master:/f", flavor="command")
    with pytest.raises(FlavorError, match="MLmodel"):
        client.registry.register("c", "models@master:/f")


def _mlflow_folder(tmp_path: Path, model, x) -> Path:
    mlflow_sklearn = pytest.importorskip("mlflow.sklearn")
    from mlflow.models import infer_signature as mlflow_signature

    folder = tmp_path / "mlflow-model"
    # Requirements given, so MLflow does not start a process to infer them.
    mlflow_sklearn.save_model(
        model,
        folder,
        signature=mlflow_signature(x, model.predict(x)),
        pip_requirements=["scikit-learn"],
    )
    return folder


def test_mlflow_model_folder(client, tmp_path, cancer):
    x, _, model = cancer
    folder = _mlflow_folder(tmp_path, model, x.head(20))
    client.create_repo("exported")
    client.put_local("exported@master:/cancer", [str(folder)], recursive=True)
    # MLflow loads its models by importing the module the MLmodel names and unpickling
    with pytest.raises(UntrustedModel):
        client.registry.register("from-mlflow", "exported@master:/cancer")
    assert client.registry.list_models() == []
    version = client.registry.register("from-mlflow", "exported@master:/cancer", trust=True)
    assert version.flavor == "mlflow" and version.trusted
    assert [c["name"] for c in version.signature["inputs"]] == list(x.columns)
    got = _predict(version, client, tmp_path, x.head(40))
    np.testing.assert_array_equal(np.asarray(got), model.predict(x.head(40)))


def test_mlflow_folder_needs_python_function(client, put):
    put("models", {"mf/MLmodel": "flavors:\n  keras: {}\n"})
    with pytest.raises(FlavorError, match="python_function"):
        client.registry.register("mf", "models@master:/mf", trust=True)


def test_mlflow_missing_says_which_extra(client, put, tmp_path, monkeypatch):
    put("models", {"mf/MLmodel": "flavors:\n  python_function: {loader_module: x}\n"})
    version = client.registry.register("mf", "models@master:/mf", trust=True)
    local = fetch(client.data, version, tmp_path / "cache")
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setitem(sys.modules, "mlflow.pyfunc", None)
    with pytest.raises(FlavorError, match=r"pip install 'cairn\[mlflow\]'"):
        load(version, local)
