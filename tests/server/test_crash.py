"""The prediction log: a server killed with SIGKILL loses no record that the flush
endpoint acknowledged, and records hold what the request and the answer were."""

from __future__ import annotations

import signal
from collections.abc import Callable

import numpy as np
from tests.server.conftest import Models, Server

from cairn.client import Client
from cairn.serving.predlog import read_records


def test_acknowledged_records_survive_sigkill(
    start_server: Callable[..., Server], models: Models
) -> None:
    server = start_server(
        "cancer@champion", "--deployment", "cancer-crash", "--log-repo", "crashlog", "--admin"
    )
    frame = models.cancer_x.iloc[:3]
    split = {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}
    want = models.cancer.predict(frame).tolist()
    for i in range(30):
        r = server.http.post(
            "/invocations", json={"dataframe_split": split}, headers={"x-request-id": f"ack-{i}"}
        )
        assert r.status_code == 200
    tensor = {"name": "x", "shape": list(frame.shape), "datatype": "FP64"}
    r = server.http.post(
        "/v2/models/cancer-crash/infer",
        json={"id": "ack-v2", "inputs": [{**tensor, "data": frame.to_numpy().ravel().tolist()}]},
    )
    assert r.status_code == 200, r.text
    bad = server.http.post(
        "/invocations",
        json={"dataframe_split": {"columns": ["x"], "data": [[1.0]]}},
        headers={"x-request-id": "ack-bad"},
    )
    assert bad.status_code == 400
    ack = server.http.post("/admin/log/flush").json()
    assert ack["commit"] and ack["stats"]["committed"] == 32
    for i in range(20):  # queued, maybe committed, never acknowledged
        server.http.post(
            "/invocations", json={"dataframe_split": split}, headers={"x-request-id": f"late-{i}"}
        )
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(30)

    client = Client.open(models.home, auto_run=False)
    try:
        acknowledged = {
            r["request_id"]: r for r in read_records(client.data, "crashlog", commit=ack["commit"])
        }
        latest = {r["request_id"] for r in read_records(client.data, "crashlog")}
    finally:
        client.data.catalog.dispose()
    ids = {f"ack-{i}" for i in range(30)} | {"ack-v2", "ack-bad"}
    assert ids <= set(acknowledged)
    assert ids <= latest  # nothing acknowledged was lost with the process
    record = acknowledged["ack-7"]
    assert (record["deployment"], record["model"], record["version"]) == (
        "cancer-crash",
        "cancer",
        1,
    )
    assert (record["protocol"], record["status"], record["shadow"]) == ("mlflow", "ok", False)
    assert record["outputs"] == want
    assert record["inputs"]["columns"] == list(frame.columns)
    np.testing.assert_allclose(record["inputs"]["data"], frame.to_numpy())
    assert acknowledged["ack-v2"]["protocol"] == "v2"
    assert acknowledged["ack-v2"]["outputs"] == want
    assert acknowledged["ack-bad"]["status"] == "invalid"
