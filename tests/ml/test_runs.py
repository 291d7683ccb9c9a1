"""Runs (cairn.ml.runs, cairn.ml.runfiles, the run-tracking part of cairn.sdk): recorded
from real pipelines in both file formats, linked to their job, inputs, code, environment
and artifacts, indexed once, and tracked from outside a pipeline too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cairn
from cairn import sdk
from cairn.catalog.schema import run_sources
from cairn.client import Client
from cairn.data import NotFound
from cairn.ml import MetricPoint, MLError, RunFileError
from cairn.ml.runfiles import RunFile, parse_run_file
from cairn.ml.runs import run_id

# A transform using the SDK: one datum per input file; its loss halves each step from the
# file's number, and it writes <name>.out and declares it as an artifact.
SDK_SCRIPT = """
import os, cairn
pfs = os.environ["CAIRN_PFS"]
[name] = os.listdir(f"{pfs}/nums")
start = float(open(f"{pfs}/nums/{name}").read())
with cairn.start_run(name=name):
    cairn.log_params({"start": start, "file": name})
    for step in range(4):
        cairn.log_metric("loss", start / 2**step, step=step)
    cairn.set_tag("kind", "halving")
    with open(f"{pfs}/out/{name}.out", "w") as f:
        f.write(str(start))
    cairn.log_artifact(f"{pfs}/out/{name}.out")
"""


def test_sdk_runs_of_a_job_link_job_inputs_code_environment_and_artifacts(
    client, put, python_pipeline
):
    put("nums", {"a": "8", "b": "2"})
    python_pipeline("halve", {"pfs": {"repo": "nums", "glob": "/*"}}, SDK_SCRIPT)
    found = {r.name: r for r in client.runs.list(pipeline="halve")}
    assert set(found) == {"a", "b"}
    run = found["a"]
    assert (run.state, run.experiment, run.pipeline) == ("finished", "halve", "halve")
    assert run.params == {"start": 8.0, "file": "a"}
    assert run.metrics == {"loss": 1.0}
    assert run.tags == {"kind": "halving"}
    assert [(p.step, p.value) for p in client.runs.history(run.id, "loss")] == [
        (0, 8.0),
        (1, 4.0),
        (2, 2.0),
        (3, 1.0),
    ]
    [job] = client.pipelines.list_jobs("halve")
    output = client.data.inspect_commit("halve", job.output_commit)
    assert (run.job, run.repo, run.commit) == (job.id, "halve", output.id)
    datums = {d.hash: d for d in client.pipelines.list_datums("halve", job.id)}
    assert run.datum == datums[run.datum_hash].id
    assert run.source == f"/.cairn/runs/{run.datum}.jsonl"
    nums = client.data.inspect_commit("nums", "master")
    assert run.info["inputs"] == {"nums": {"repo": "nums", "branch": "master", "commit": nums.id}}
    assert [f["path"] for f in run.info["input_files"]] == ["/a"]
    assert set(run.info["code"]) == {"main.py"} and run.info["code"] == output.info["code"]
    assert run.info["environment"]["hash"] == output.info["environment"]["hash"]
    assert run.info["artifacts"] == ["/a.out"]
    assert client.runs.for_datum("halve", run.datum_hash) == run
    assert client.runs.get(run.id[:10]) == run
    assert client.runs.get("a") == run  # by its unique name


def test_a_json_run_file_from_a_shell_transform(client, put, python_pipeline):
    put("nums", {"x": "3"})
    script = (
        'mkdir -p "$CAIRN_PFS/out/.cairn/runs"; n=$(cat "$CAIRN_PFS"/nums/*); '
        'echo "$n" > "$CAIRN_PFS/out/result.txt"; '
        'printf \'{"name": "shell", "experiment": "any-language", "params": {"n": %s}, '
        '"metrics": {"acc": 0.5, "loss": [{"value": 2, "step": 1, "timestamp": 100.5}, '
        '{"value": 1, "step": 2}]}, "tags": {"lang": "bash"}, "artifacts": ["result.txt"]}\' '
        '"$n" > "$CAIRN_PFS/out/.cairn/runs/$PACH_DATUM_ID.json"'
    )
    python_pipeline(
        "sh", {"pfs": {"repo": "nums", "glob": "/*"}}, "", transform={"cmd": ["bash", "-c", script]}
    )
    [run] = client.runs.list(experiment="any-language")
    assert (run.name, run.params, run.tags) == ("shell", {"n": 3}, {"lang": "bash"})
    assert run.metrics == {"acc": 0.5, "loss": 1.0}
    commit = client.data.inspect_commit("sh", run.commit)
    assert client.runs.history(run.id, "loss") == [
        MetricPoint("loss", 2.0, 1, 100.5),
        MetricPoint("loss", 1.0, 2, commit.created),  # no timestamp: the commit's time
    ]
    assert run.info["artifacts"] == ["/result.txt"]


def test_a_rerun_that_skips_datums_makes_no_duplicate_runs(client, put, python_pipeline):
    put("nums", {"a": "8", "b": "2"})
    python_pipeline("halve", {"pfs": {"repo": "nums", "glob": "/*"}}, SDK_SCRIPT)
    first = {r.name: r for r in client.runs.list()}
    put("nums", {"c": "4"})
    jobs = client.pipelines.list_jobs("halve")
    assert [(j.processed, j.skipped) for j in jobs] == [(1, 2), (2, 0)]
    listed = client.runs.list()
    after = {r.name: r for r in listed}
    assert sorted(r.name for r in listed) == ["a", "b", "c"]  # a and b once each
    assert after["a"] == first["a"] and after["a"].job == jobs[1].id  # still the first job's
    assert after["c"].job == jobs[0].id
    assert client.runs.sync() == []
    with client.data.catalog.read() as conn:
        assert len(conn.execute(run_sources.select()).all()) == 2
    # A changed input is a new datum hash: a new run, the old one kept as history.
    put("nums", {"a": "16"})
    runs_a = [r for r in client.runs.list() if r.name == "a"]
    assert [r.params["start"] for r in runs_a] == [16.0, 8.0]


def test_a_sweep_over_a_cross_makes_one_run_per_combination_and_picks_the_best(
    client, put, python_pipeline
):
    # Gradient descent on least squares y = w * x over the data repo, one learning rate
    # per params file: the runs differ only in their params and metrics.
    xs = [0.5 * i for i in range(1, 21)]
    put(
        "points",
        {"xy.csv": "\n".join(f"{x},{3.0 * x + (-1) ** i * 0.1}" for i, x in enumerate(xs))},
    )
    rates = {"slow": 0.001, "good": 0.01, "diverges": 0.1}
    put("params", {f"{k}.json": json.dumps({"lr": v, "epochs": 5}) for k, v in rates.items()})
    script = """
import glob, json, os, cairn
pfs = os.environ["CAIRN_PFS"]
[path] = glob.glob(f"{pfs}/params/*.json")
name = os.path.basename(path)[:-5]
params = json.load(open(path))
rows = [tuple(map(float, line.split(","))) for line in open(f"{pfs}/points/xy.csv")]
w = 0.0
with cairn.start_run(name=name, experiment="sweep"):
    cairn.log_params(params)
    for epoch in range(1, params["epochs"] + 1):
        grad = sum(2 * (w * x - y) * x for x, y in rows) / len(rows)
        w -= params["lr"] * grad
        mse = sum((w * x - y) ** 2 for x, y in rows) / len(rows)
        cairn.log_metric("mse", min(mse, 1e300), step=epoch)
    os.makedirs(f"{pfs}/out/{name}")
    open(f"{pfs}/out/{name}/model.json", "w").write(json.dumps({"w": w}))
"""
    cross = {
        "cross": [
            {"pfs": {"repo": "params", "glob": "/*"}},
            {"pfs": {"repo": "points", "glob": "/"}},
        ]
    }
    python_pipeline("fit", cross, script)
    cmp = client.runs.compare(experiment="sweep")
    assert sorted(r.name for r in cmp.runs) == sorted(rates)
    assert cmp.differing == ["lr"] and set(cmp.params) == {"epochs", "lr"}
    best = cmp.best("mse", maximize=False)
    assert best.name == "good" and best.metrics["mse"] == min(cmp.metrics["mse"])
    assert best.info["artifacts"] == ["/good/model.json"]
    assert cmp.best("mse").name == "diverges"
    with pytest.raises(NotFound):
        cmp.best("accuracy")


def test_sdk_with_datum_batching_writes_one_run_per_datum(client, put, python_pipeline):
    put("nums", {"a": "1", "b": "2", "c": "3"})
    script = """
import os, cairn
from cairn.sdk import datums
pfs = os.environ["CAIRN_PFS"]
for _ in datums():
    [name] = os.listdir(f"{pfs}/nums")
    cairn.log_param("file", name)
    cairn.log_metric("value", float(open(f"{pfs}/nums/{name}").read()))
"""
    python_pipeline(
        "batched",
        {"pfs": {"repo": "nums", "glob": "/*"}},
        script,
        transform={"datum_batching": True},
    )
    runs = client.runs.list(pipeline="batched")
    assert sorted((r.params["file"], r.metrics["value"]) for r in runs) == [
        ("a", 1.0),
        ("b", 2.0),
        ("c", 3.0),
    ]
    assert len({r.datum for r in runs}) == 3


@pytest.mark.parametrize(
    ("name", "content", "field"),
    [
        ("r.json", '{"params": {"lr": [1, 2]}}', "params.lr"),
        ("r.json", '{"metrics": {"acc": "high"}}', "metrics.acc.value"),
        ("r.json", '{"metrics": {"loss": [{"value": 1, "step": 1.5}]}}', "metrics.loss[0].step"),
        ("r.json", '{"metrix": {}}', "metrix"),
        ("r.jsonl", '{"param": "a", "value": 1}\n{"metric": "m", "value": NaN}\n', "(json)"),
        ("r.jsonl", '{"param": "a", "value": 1}\n{"metric": "m"}\n', "value"),
        ("r.jsonl", '{"tag": "", "value": 1}\n', "tag"),
        ("r.jsonl", '{"param": "a", "metric": "b", "value": 1}\n', "metric"),
        ("r.txt", "anything", "(name)"),
    ],
)
def test_malformed_run_files_name_the_file_line_and_field(name, content, field):
    with pytest.raises(RunFileError) as caught:
        parse_run_file(f".cairn/runs/{name}", content.encode())
    line = content.count("\n") if name.endswith(".jsonl") else 1
    assert f"/.cairn/runs/{name}, line {line}, field {field}:" in str(caught.value)


def test_a_malformed_run_file_in_a_job_is_reported_once_and_the_others_indexed(
    client, put, python_pipeline
):
    put("nums", {"good": "1", "bad": "2"})
    script = """
import json, os
pfs = os.environ["CAIRN_PFS"]
[name] = os.listdir(f"{pfs}/nums")
os.makedirs(f"{pfs}/out/.cairn/runs")
value = {"good": 1.0, "bad": "oops"}[name]
with open(f"{pfs}/out/.cairn/runs/{name}.json", "w") as f:
    json.dump({"name": name, "metrics": {"m": value}}, f)
"""
    with pytest.raises(RunFileError, match=r"bad\.json, line 1, field metrics\.m"):
        python_pipeline("p", {"pfs": {"repo": "nums", "glob": "/*"}}, script)
    assert [r.name for r in client.runs.list()] == ["good"]
    assert client.runs.sync() == []  # that commit counts as read


def test_sdk_outside_a_transform_records_into_the_store(client, monkeypatch, tmp_path):
    monkeypatch.setenv("CAIRN_HOME", str(client.home))
    monkeypatch.setattr(sdk, "_store", None)
    monkeypatch.setattr(sdk, "_stack", [])
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    with cairn.start_run(name="notebook", experiment="local") as active:
        assert client.runs.get(active.id).state == "running"
        cairn.log_params({"lr": 0.1, "layers": [64, 32]})
        cairn.set_tag("who", "me")
        for step in range(3):
            cairn.log_metric("loss", 1.0 - step / 10, step=step)
        cairn.log_artifact(model)
    run = client.runs.get(active.id)
    assert (run.name, run.experiment, run.state) == ("notebook", "local", "finished")
    assert run.params == {"lr": 0.1, "layers": "[64, 32]"}  # non-scalars as str, as MLflow
    assert run.tags == {"who": "me"}
    assert [p.value for p in client.runs.history(run.id, "loss")] == [1.0, 0.9, 0.8]
    # a copy in the store, at a commit: the run keeps it whatever happens to the file
    [artifact] = run.info["artifacts"]
    assert artifact.startswith("run-artifacts@") and artifact.endswith(f"/{run.id}/model.bin")
    model.unlink()
    assert client.files.read(artifact) == b"weights"
    assert run.info["environment"]["hash"]
    with pytest.raises(ZeroDivisionError), cairn.start_run(name="broken") as failing:
        cairn.log_metric("x", 1 / 0)
    assert client.runs.get(failing.id).state == "failed"
    with pytest.raises(MLError):
        client.runs.log(failing.id, params={"late": 1})  # an ended run takes no more
    # Logging with no run started starts one, as MLflow does; end_run finishes it.
    cairn.log_metric("implicit", 2.5)
    implicit = cairn.active_run()
    assert implicit is not None and client.runs.get(implicit.id).state == "running"
    cairn.end_run()
    assert client.runs.get(implicit.id).metrics == {"implicit": 2.5}
    assert client.runs.get(implicit.id).state == "finished"
    with pytest.raises(ValueError):
        cairn.log_metric("nan", float("nan"))
    cairn.end_run()


def test_the_run_sdk_imports_only_the_standard_library():
    code = (
        "import sys, cairn; cairn.log_metric; cairn.start_run; "
        "print(sorted(m for m in sys.modules if m.startswith('cairn')), "
        "any(m in sys.modules for m in ('sqlalchemy', 'pydantic', 'blake3', 'yaml')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['cairn', 'cairn.sdk'] False"


def test_run_ids_are_length_framed():
    assert run_id("ab", "c", "p", "h") != run_id("a", "bc", "p", "h")
    assert len(run_id("r", None, "p", "h")) == 32


# -- the run-file format round trip -------------------------------------------------------
keys = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
numbers = st.floats(allow_nan=False, allow_infinity=False, width=64)
points = st.lists(
    st.tuples(numbers, st.integers(-(2**40), 2**40), st.floats(0, 4e9)), min_size=1, max_size=5
)
segments = st.text("abcxyz019_-.", min_size=1, max_size=8).filter(lambda s: s not in (".", ".."))
runs = st.builds(
    RunFile,
    name=st.none() | st.text(min_size=1, max_size=20),
    experiment=st.none() | st.text(min_size=1, max_size=20),
    params=st.dictionaries(keys, scalars, max_size=5),
    metrics=st.dictionaries(keys, points, max_size=4).map(
        lambda d: {k: [MetricPoint(k, v, s, t) for v, s, t in ps] for k, ps in d.items()}
    ),
    tags=st.dictionaries(keys, scalars, max_size=3),
    artifacts=st.lists(st.lists(segments, min_size=1, max_size=3).map("/".join), max_size=3),
)


@settings(max_examples=60, deadline=None)
@given(runs)
def test_json_run_files_round_trip(run):
    data = json.dumps(run.to_json()).encode()
    assert parse_run_file(".cairn/runs/x.json", data) == run


@settings(max_examples=60, deadline=None)
@given(runs)
def test_sdk_events_round_trip_through_the_jsonl_format(run):
    with tempfile.TemporaryDirectory() as pfs, pytest.MonkeyPatch.context() as mp:
        mp.setenv("CAIRN_PFS", pfs)
        mp.setenv("PACH_DATUM_ID", "d" * 64)
        os.makedirs(f"{pfs}/out")
        mp.setattr(sdk, "_stack", [])
        with cairn.start_run(name=run.name, experiment=run.experiment) as active:
            assert active.id is None
            cairn.log_params(run.params)
            cairn.set_tags(run.tags)
            for key, ps in run.metrics.items():
                for p in ps:
                    mp.setattr(sdk.time, "time", lambda t=p.timestamp: t)
                    cairn.log_metric(key, p.value, step=p.step)
            for path in run.artifacts:
                cairn.log_artifact(f"{pfs}/out/{path}")
        written = Path(f"{pfs}/out/.cairn/runs/{'d' * 64}.jsonl")
        assert parse_run_file(".cairn/runs/r.jsonl", written.read_bytes()) == run


def test_runs_outside_pipelines_refuse_bad_values(client):
    run = client.runs.start(name="n")
    with pytest.raises(MLError):
        client.runs.log(run.id, metrics={"m": float("inf")})
    with pytest.raises(MLError):
        client.runs.log(run.id, params={"p": {"nested": 1}})
    with pytest.raises(NotFound):
        client.runs.log("0" * 32, params={"p": 1})
    assert client.runs.get(run.id).params == {}
    with pytest.raises(NotFound):
        client.runs.get("no-such-run")


def test_a_name_wins_over_an_id_prefix_and_ambiguity_is_refused(client):
    first = client.runs.start(name="x")
    second = client.runs.start(name=first.id[:4])
    assert client.runs.get(first.id[:4]) == second
    assert client.runs.get(first.id[:12]) == first
    client.runs.start(name="x")
    with pytest.raises(NotFound):
        client.runs.get("x")


# -- the README's sweep example -----------------------------------------------------------
@pytest.mark.slow
def test_the_sweep_example_runs_and_picks_the_best(tmp_path):
    pytest.importorskip("skops")
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k not in ("CAIRN_HOME", "CAIRN_PFS")}
    # The transforms' `python3` is this interpreter, as in an activated environment.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["CAIRN_SANDBOX"] = "none"
    result = subprocess.run(
        ["bash", str(root / "examples" / "sweep" / "run.sh"), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sweep: the last job processed 1 datum(s), skipped 4" in result.stdout
    assert "runs: 5" in result.stdout
    client = Client(tmp_path / "out" / ".cairn", auto_run=False)
    try:
        cmp = client.runs.compare(pipeline="sweep")
        best = cmp.best("test_accuracy")
        assert f"best run of all: {best.name} ({best.id})" in result.stdout
        assert best.metrics["test_accuracy"] == max(cmp.metrics["test_accuracy"])
        assert len(client.runs.history(best.id, "val_accuracy")) == best.params["epochs"]
        assert f"/{best.name}/model.skops" in best.info["artifacts"]
    finally:
        client.data.catalog.dispose()
    from PIL import Image

    with Image.open(tmp_path / "out" / "val_accuracy.png") as image:
        assert image.format == "PNG"
