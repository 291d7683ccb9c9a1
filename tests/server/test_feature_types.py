"""A mixed-type model served without a hand-written signature: the penguins pipeline of
tests/ml/test_feature_types.py (string and boolean columns one-hot encoded, numbers
scaled), registered as a .skops file, answers MLflow's ``/invocations`` and, through
tritonclient, the V2 protocol with one tensor per column (BYTES for the strings)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import skops.io as sio
from tests.ml.test_feature_types import penguin_model, penguins
from tests.server.conftest import Server


@pytest.fixture(scope="module")
def served(
    start_server: Callable[..., Server], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Server, Any, Any]:
    from cairn.client import Client

    x, y = penguins()
    model = penguin_model(x, y)
    home = tmp_path_factory.mktemp("penguins") / "store"
    client = Client.open(home, auto_run=False)
    try:
        client.repos.create("models")
        commit = client.data.put_files(
            "models", "master", [("/penguins.skops", io.BytesIO(sio.dumps(model)))]
        )
        client.models.register("penguins", f"models@{commit.id}:/penguins.skops")
    finally:
        client.data.catalog.dispose()
    return start_server("penguins/1", "--no-log", env={"CAIRN_HOME": str(home)}), x, model


def test_mlflow_payloads_with_strings_and_booleans(served: tuple[Server, Any, Any]) -> None:
    server, x, model = served
    rows = x.sample(25, random_state=0)
    want = model.predict(rows).tolist()
    records = rows.to_dict(orient="records")
    r = server.http.post("/invocations", json={"dataframe_records": records})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": want}
    split = {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}
    assert server.http.post("/invocations", json={"dataframe_split": split}).json() == {
        "predictions": want
    }


def test_v2_with_a_tensor_per_column(served: tuple[Server, Any, Any]) -> None:
    import tritonclient.http as triton

    server, x, model = served
    rows = x.sample(25, random_state=1)
    meta = server.http.get("/v2/models/penguins").json()
    datatypes = {t["name"]: t["datatype"] for t in meta["inputs"]}
    assert datatypes["island"] == "BYTES" and datatypes["heavy"] == "BOOL"
    inputs = []
    for name, datatype in datatypes.items():
        values = rows[name].to_numpy()
        if datatype == "BYTES":
            values = values.astype(object)
        elif datatype == "BOOL":
            values = values.astype(bool)
        else:
            values = values.astype(np.float64)
        tensor = triton.InferInput(name, [len(rows)], datatype)
        tensor.set_data_from_numpy(values)
        inputs.append(tensor)
    output = meta["outputs"][0]["name"]
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
    try:
        result = client.infer("penguins", inputs, outputs=[triton.InferRequestedOutput(output)])
    finally:
        client.close()
    got = [v.decode() for v in result.as_numpy(output).tolist()]
    assert got == model.predict(rows).tolist()
