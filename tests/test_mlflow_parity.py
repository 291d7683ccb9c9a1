"""Parity with MLflow's tracking API: one training script in MLflow's idiom
(tests/data/mlflow_style_training.py) runs with ``import cairn as mlflow`` unchanged
otherwise, and records what MLflow records when the same script runs with real MLflow
(to a file store, where mlflow is installed): params, metrics and their steps, tags, the
parent of a nested run, artifact names, the search results and the registered model's
predictions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cairn.client import Client

SCRIPT = Path(__file__).parent / "data" / "mlflow_style_training.py"


def _run(kind: str, folder: Path, env: dict[str, str]) -> dict[str, Any]:
    folder.mkdir()
    out = folder / "out.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), kind, str(out)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (folder / "local.txt").exists()
    return json.loads(out.read_text())


def _clean_env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("CAIRN_URL", "CAIRN_TOKEN", "CAIRN_CONTEXT", "CAIRN_PFS", "PACH_DATUM_ID"):
        env.pop(name, None)
    return env


@pytest.fixture(scope="module")
def on_cairn(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("cairn-parity")
    home = root / "store"
    Client(home).data.catalog.dispose()  # the store, as `cairn init` makes it
    env = {**_clean_env(), "CAIRN_HOME": str(home), "CAIRN_CONFIG_DIR": str(root / "config")}
    result = _run("cairn", root / "work", env)
    client = Client(home, auto_run=False)
    try:
        result["records"] = {
            name: _cairn_record(client, result[f"{name}_id"]) for name in ("run", "child")
        }
        result["loss"] = [(p.step, p.value) for p in client.runs.history(result["run_id"], "loss")]
        result["model_run"] = client.models.get("parity-iris/1").run
    finally:
        client.data.catalog.dispose()
    return result


def _cairn_record(client: Client, run_id: str) -> dict[str, Any]:
    run = client.runs.get(run_id)
    prefix = f":/{run.id}/"
    return {
        "name": run.name,
        "status": run.state.upper(),
        "params": {k: str(v) for k, v in run.params.items()},
        "metrics": run.metrics,
        "tags": run.tags,
        "artifacts": sorted(ref.split(prefix, 1)[1] for ref in run.info["artifacts"]),
    }


def test_an_mlflow_style_script_runs_on_cairn_with_only_the_import_changed(on_cairn):
    run, child = on_cairn["records"]["run"], on_cairn["records"]["child"]
    assert (run["name"], run["status"]) == ("train", "FINISHED")
    assert run["params"] == {"C": "0.5", "max_iter": "300", "solver": "lbfgs"}
    assert set(run["metrics"]) == {"loss", "accuracy", "f1"}
    assert on_cairn["loss"] == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))]
    assert run["tags"] == {"team": "ml", "stage": "dev", "owner": "me"}
    assert child["tags"] == {"mlflow.parentRunId": on_cairn["run_id"]}
    assert run["artifacts"] == [
        "config.json",
        "files/local.txt",
        "model/input_example.json",
        "model/model.skops",
        "model/signature.json",
        "notes/readme.txt",
        "plots/loss.png",
        "table.json",
    ]
    assert on_cairn["found"] == [on_cairn["run_id"]]
    assert on_cairn["ranked"] == ["train", "other", "child"]
    assert on_cairn["version"] == 1 and on_cairn["model_run"] == on_cairn["run_id"]
    assert on_cairn["predictions"] == [0, 0, 0, 0, 0]


def _mlflow_record(client: Any, run_id: str) -> dict[str, Any]:
    run = client.get_run(run_id)

    def walk(path: str | None = None) -> list[str]:
        found = []
        for item in client.list_artifacts(run_id, path):
            found += walk(item.path) if item.is_dir else [item.path]
        return found

    return {
        "name": run.info.run_name,
        "status": run.info.status,
        "params": dict(run.data.params),
        "metrics": dict(run.data.metrics),
        # MLflow's system tags (user, source, run name) are its bookkeeping, not the script's
        "tags": {
            k: v
            for k, v in run.data.tags.items()
            if not k.startswith("mlflow.") or k == "mlflow.parentRunId"
        },
        "artifacts": sorted(walk()),
    }


def test_the_script_records_on_cairn_what_it_records_on_mlflow(on_cairn, tmp_path, monkeypatch):
    pytest.importorskip("mlflow.sklearn")
    store = f"file://{tmp_path / 'mlruns'}"
    # MLflow 3 keeps its file store only behind this switch; nothing here needs a database
    env = {**_clean_env(), "MLFLOW_TRACKING_URI": store, "MLFLOW_ALLOW_FILE_STORE": "true"}
    theirs = _run("mlflow", tmp_path / "work", env)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store, registry_uri=store)
    records = {name: _mlflow_record(client, theirs[f"{name}_id"]) for name in ("run", "child")}
    ours = on_cairn["records"]
    for name in ("run", "child"):
        for part in ("name", "status", "params"):
            assert ours[name][part] == records[name][part], (name, part)
        # the parent's id differs between the stores: compared as "the script's run" below
        assert {**ours[name]["tags"], "mlflow.parentRunId": "parent"} == {
            **records[name]["tags"],
            "mlflow.parentRunId": "parent",
        }
        assert ours[name]["metrics"] == pytest.approx(records[name]["metrics"])
    assert ours["child"]["tags"]["mlflow.parentRunId"] == on_cairn["run_id"]
    assert records["child"]["tags"]["mlflow.parentRunId"] == theirs["run_id"]
    # MLflow's file store answers the first point twice (same step, value and timestamp)
    loss = {(m.step, m.value) for m in client.get_metric_history(theirs["run_id"], "loss")}
    assert on_cairn["loss"] == sorted(loss)
    # MLflow 3 keeps a logged model apart from the run's artifacts (a LoggedModel); cairn
    # keeps it in the run's folder, where runs:/<run>/model finds it
    assert [a for a in ours["run"]["artifacts"] if not a.startswith("model/")] == records["run"][
        "artifacts"
    ]
    for key in ("found_params", "ranked", "version", "predictions"):
        assert on_cairn[key] == theirs[key], key
    assert len(on_cairn["found"]) == len(theirs["found"]) == 1
