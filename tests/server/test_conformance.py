"""MLflow scoring-protocol conformance: MLflow's documented payloads, each with the status
and ``error_code`` that ``mlflow models serve`` answers, checked against MLflow's own
scoring server (``mlflow.pyfunc.scoring_server``, in process) and then against
``cairn serve`` for the same model twice: as an MLflow folder (flavor ``mlflow``) and as a
scikit-learn file (cairn's ``sklearn`` flavor, default schema rules).

The model: a logistic regression on columns ``a``, ``b`` (double) and ``n`` (long), whose
MLflow signature has a params schema (``k``: long, default 1).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from tests.server.conftest import Server

JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
COLUMNS = ["a", "b", "n"]


def _split(*rows: list[Any], columns: list[str] = COLUMNS) -> dict[str, Any]:
    return {"dataframe_split": {"columns": columns, "data": list(rows)}}


def _parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf)
    return buf.getvalue()


# name -> (content type, body, status, error_code or None for a 200 / a 415 text answer)
CASES: dict[str, tuple[str, Any, int, str | None]] = {
    "split": (JSON, _split([1.0, 0.5, 1]), 200, None),
    "split with index": (
        JSON,
        {"dataframe_split": {"columns": COLUMNS, "index": [7], "data": [[1.0, 0.5, 1]]}},
        200,
        None,
    ),
    "records": (JSON, {"dataframe_records": [{"a": 1.0, "b": 2.0, "n": 1}]}, 200, None),
    "instances as records": (JSON, {"instances": [{"a": 1.0, "b": 2.0, "n": 1}]}, 200, None),
    "inputs as columns": (JSON, {"inputs": {"a": [1.0], "b": [2.0], "n": [1]}}, 200, None),
    "extra column dropped": (
        JSON,
        _split([1.0, 0.5, 1, 7], columns=[*COLUMNS, "zz"]),
        200,
        None,
    ),
    "extra record key dropped": (
        JSON,
        {"dataframe_records": [{"a": 1.0, "b": 2.0, "n": 1, "q": "x"}]},
        200,
        None,
    ),
    "numeric strings convert": (JSON, _split(["1.5", "0.5", "3"]), 200, None),
    "integers widen to double": (JSON, _split([1, 2, 1]), 200, None),
    "booleans convert to double": (JSON, _split([True, 0.5, 1]), 200, None),
    "params in the schema": (JSON, {**_split([1.0, 0.5, 1]), "params": {"k": 2}}, 200, None),
    "missing column": (
        JSON,
        _split([1.0, 0.5], columns=["a", "b"]),
        400,
        "INVALID_PARAMETER_VALUE",
    ),
    "text in a double column": (JSON, _split(["x", 0.5, 1]), 400, "BAD_REQUEST"),
    "null the model refuses": (JSON, _split([None, 0.5, 1]), 400, "BAD_REQUEST"),
    "params failing the schema": (
        JSON,
        {**_split([1.0, 0.5, 1]), "params": {"k": "many"}},
        400,
        "INVALID_PARAMETER_VALUE",
    ),
    "no rows": (JSON, _split(), 400, "BAD_REQUEST"),
    "two input fields": (JSON, {**_split([1.0, 0.5, 1]), "instances": [1]}, 400, "BAD_REQUEST"),
    "no input field": (JSON, {"foo": 1}, 400, "BAD_REQUEST"),
    "not JSON": (JSON, "{", 400, "BAD_REQUEST"),
    "a JSON list": (JSON, [1, 2], 400, "BAD_REQUEST"),
    "csv": (CSV, "a,b,n\n1.0,0.5,1\n", 200, None),
    "csv extra column dropped": (CSV, "a,b,n,z\n1,2,3,4\n", 200, None),
    "csv missing column": (CSV, "a,b\n1,2\n", 400, "INVALID_PARAMETER_VALUE"),
    "parquet": (
        PARQUET,
        _parquet(pd.DataFrame({"a": [1.0, 2.0], "b": [0.5, 0.1], "n": [1, 2]})),
        200,
        None,
    ),
    "parquet that is not": (PARQUET, b"junk", 400, "BAD_REQUEST"),
    "unsupported content type": ("text/plain", "a", 415, None),
    "charset other than utf-8": (f"{JSON}; charset=latin-1", _split([1.0, 0.5, 1]), 415, None),
}
# Where cairn's own flavors answer otherwise, by design: params are checked against what
# the model takes (cairn's models have no params schema, and MLflow would ignore them).
SKLEARN_DIFFERS = {
    "params in the schema": (400, "INVALID_PARAMETER_VALUE"),
    "params failing the schema": (400, "INVALID_PARAMETER_VALUE"),
}


def _body(payload: Any) -> bytes:
    if isinstance(payload, bytes):
        return payload
    return payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The model, saved as an MLflow folder and as a skops file, in a fresh cairn store
    where both are registered (``mlflow-conf`` and ``sklearn-conf``)."""
    import mlflow.sklearn
    import skops.io as sio
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    from cairn.client import Client

    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.5, 0.1, 0.3, 0.9], "n": [1, 2, 3, 4]})
    model = LogisticRegression().fit(frame, [0, 1, 0, 1])
    root = tmp_path_factory.mktemp("conformance")
    folder = root / "mlflow-model"
    mlflow.sklearn.save_model(
        model,
        folder,
        signature=infer_signature(frame, model.predict(frame), params={"k": 1}),
        pip_requirements=["scikit-learn"],  # else MLflow starts a process to infer them
    )
    home = root / "store"
    client = Client.open(home, auto_run=False)
    try:
        client.repos.create("models")
        client.put_local("models@master:/mlflow-model", [str(folder)], recursive=True)
        commit = client.data.put_files(
            "models", "master", [("/model.skops", io.BytesIO(sio.dumps(model)))]
        )
        client.registry.register("mlflow-conf", f"models@{commit.id}:/mlflow-model", trust=True)
        client.registry.register("sklearn-conf", f"models@{commit.id}:/model.skops")
    finally:
        client.data.catalog.dispose()
    return {"home": home, "folder": folder}


@pytest.fixture(scope="module")
def mlflow_answers(fitted: dict[str, Any]) -> dict[str, tuple[int, str | None]]:
    """Every case's (status, error_code) from MLflow's own scoring server."""
    import mlflow.pyfunc
    from fastapi.testclient import TestClient
    from mlflow.pyfunc import scoring_server

    app = scoring_server.init(mlflow.pyfunc.load_model(str(fitted["folder"])))
    answers = {}
    with TestClient(app) as http:
        for name, (content_type, payload, _, _) in CASES.items():
            r = http.post(
                "/invocations", content=_body(payload), headers={"content-type": content_type}
            )
            answers[name] = (r.status_code, _code(r))
    return answers


def _code(response: Any) -> str | None:
    if response.status_code == 200 or "json" not in response.headers.get("content-type", ""):
        return None
    return str(response.json()["error_code"])


@pytest.fixture(scope="module")
def servers(fitted: dict[str, Any], start_server: Callable[..., Server]) -> dict[str, Server]:
    """``cairn serve`` of each registration, by flavor; deployments ``<flavor>-conf``."""
    env = {"CAIRN_HOME": str(fitted["home"])}
    return {
        flavor: start_server(f"{flavor}-conf/1", "--no-log", env=env)
        for flavor in ("mlflow", "sklearn")
    }


def test_the_table_is_what_mlflow_answers(mlflow_answers: dict[str, Any]) -> None:
    assert mlflow_answers == {name: (case[2], case[3]) for name, case in CASES.items()}


@pytest.mark.parametrize("flavor", ["mlflow", "sklearn"])
def test_cairn_serve_answers_as_mlflow(servers: dict[str, Server], flavor: str) -> None:
    got, want = {}, {}
    for name, (content_type, payload, status, code) in CASES.items():
        r = servers[flavor].http.post(
            "/invocations", content=_body(payload), headers={"content-type": content_type}
        )
        got[name] = (r.status_code, _code(r))
        want[name] = (
            SKLEARN_DIFFERS.get(name, (status, code))
            if flavor == "sklearn"
            else (
                status,
                code,
            )
        )
        if r.status_code == 200:
            assert list(r.json()) == ["predictions"], name
        elif r.status_code == 400:
            assert set(r.json()) >= {"error_code", "message"}, name
    assert got == want


def test_metrics_count_client_and_server_errors_apart(servers: dict[str, Server]) -> None:
    server = servers["sklearn"]
    before = server.metrics()
    server.http.post("/invocations", content=b"{", headers={"content-type": JSON})
    after = server.metrics()

    def total(samples: dict[Any, float], side: str) -> float:
        return sum(
            v
            for (name, labels), v in samples.items()
            if name == "cairn_request_errors_total" and ("side", side) in labels
        )

    assert total(after, "client") - total(before, "client") == 1
    assert total(after, "server") == total(before, "server")


def test_strict_schema_refuses_what_mlflow_converts(
    fitted: dict[str, Any], servers: dict[str, Server], tmp_path: Any
) -> None:
    import asyncio

    import httpx

    from cairn.server.app import ServerSettings, create_app

    settings = ServerSettings(
        deployment="sklearn-conf",  # made by the servers fixture's cairn serve
        home=fitted["home"],
        log_repo=None,
        cache_dir=tmp_path,
        strict_schema=True,
    )
    assert ServerSettings.model_validate(settings.to_env()).strict_schema  # what workers read
    app = create_app(settings)

    async def post_all() -> dict[str, int]:
        got = {}
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://cairn") as http:
                for name in (
                    "split",
                    "extra column dropped",
                    "numeric strings convert",
                    "text in a double column",
                ):
                    content_type, payload, _, _ = CASES[name]
                    r = await http.post(
                        "/invocations",
                        content=_body(payload),
                        headers={"content-type": content_type},
                    )
                    got[name] = r.status_code
        return got

    assert asyncio.run(post_all()) == {
        "split": 200,
        "extra column dropped": 400,
        "numeric strings convert": 400,
        "text in a double column": 400,
    }


def test_mlflow_folder_metadata_names_the_output_infer_returns(
    servers: dict[str, Server],
) -> None:
    import numpy as np
    import tritonclient.http as triton

    for flavor, server in servers.items():
        deployment = f"{flavor}-conf"
        meta = server.http.get(f"/v2/models/{deployment}").json()
        names = [o["name"] for o in meta["outputs"]]
        assert len(names) == 1
        client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
        inputs = []
        for col, dtype, value in (("a", "FP64", 1.0), ("b", "FP64", 0.5), ("n", "INT64", 1)):
            tensor = triton.InferInput(col, [1], dtype)
            tensor.set_data_from_numpy(np.array([value], dtype="<f8" if dtype == "FP64" else "<i8"))
            inputs.append(tensor)
        result = client.infer(deployment, inputs, outputs=[triton.InferRequestedOutput(names[0])])
        assert result.as_numpy(names[0]).tolist() == [0]
        client.close()


def test_v2_with_a_trailing_slash_answers_without_a_redirect(servers: dict[str, Server]) -> None:
    # before: /v2/ was a 307 to /v2
    r = servers["sklearn"].http.get("/v2/", follow_redirects=False)
    assert r.status_code == 200 and r.json()["name"] == "cairn"
