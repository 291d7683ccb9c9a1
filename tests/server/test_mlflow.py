"""MLflow's scoring protocol against the real ``cairn serve``, with httpx: every payload
form and CSV give the in-process model's predictions; errors are MLflow's."""

from __future__ import annotations

import numpy as np
import pytest
from tests.server.conftest import Models, Server


def _post(server: Server, body: object, **headers: str):
    return server.http.post("/invocations", json=body, headers=headers)


def test_health_ping_and_version(digits: Server) -> None:
    from cairn import __version__

    for path in ("/ping", "/health"):
        assert digits.http.get(path).status_code == 200
    assert digits.http.get("/version").text == __version__


def test_every_payload_form_predicts_like_the_model_in_process(
    digits: Server, models: Models
) -> None:
    x = models.digits_x[:7]
    want = models.digits[1].predict(x).tolist()
    names = [str(i) for i in range(x.shape[1])]
    bodies = [
        {"dataframe_split": {"columns": names, "data": x.tolist()}},
        {"dataframe_split": {"data": x.tolist()}},  # positional: the signature's order
        {"dataframe_records": [dict(zip(names, row, strict=True)) for row in x.tolist()]},
        {"instances": x.tolist()},
        {"inputs": x.tolist()},
        {"inputs": {name: x[:, i].tolist() for i, name in enumerate(names)}},
        {"instances": x.astype(int).tolist()},  # integers convert to the double columns
    ]
    for body in bodies:
        r = _post(digits, body)
        assert r.status_code == 200, (list(body), r.text)
        assert r.json() == {"predictions": want}, list(body)
        assert r.headers["x-cairn-model-version"] == "1"


def test_csv_and_named_columns(cancer: Server, models: Models) -> None:
    frame = models.cancer_x.iloc[:9]
    want = models.cancer.predict(frame).tolist()
    r = cancer.http.post(
        "/invocations",
        content=frame.to_csv(index=False),
        headers={"content-type": "text/csv; charset=utf-8"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == want
    # columns in another order are matched by name
    shuffled = frame[list(reversed(frame.columns))]
    split = {"columns": list(shuffled.columns), "data": shuffled.to_numpy().tolist()}
    assert _post(cancer, {"dataframe_split": split}).json()["predictions"] == want


def test_params_pick_the_scikit_learn_method(digits: Server, models: Models) -> None:
    x = models.digits_x[:3]
    r = _post(digits, {"instances": x.tolist(), "params": {"method": "predict_proba"}})
    assert r.status_code == 200, r.text
    got = np.array(r.json()["predictions"])
    np.testing.assert_allclose(got, models.digits[1].predict_proba(x), rtol=1e-9)
    bad = _post(digits, {"instances": x.tolist(), "params": {"method": "fit"}})
    assert bad.status_code == 400
    assert bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"  # MLflow's, for params


def test_request_id_is_honoured_or_made(digits: Server, models: Models) -> None:
    body = {"instances": models.digits_x[:1].tolist()}
    assert _post(digits, body, **{"x-request-id": "req-42"}).headers["x-request-id"] == "req-42"
    made = _post(digits, body).headers["x-request-id"]
    assert made and made != _post(digits, body).headers["x-request-id"]


def test_signature_mismatches_are_400_with_the_column_named(cancer: Server, models: Models) -> None:
    frame = models.cancer_x.iloc[:2]
    missing = frame.drop(columns=["mean radius"])
    r = _post(
        cancer,
        {"dataframe_split": {"columns": list(missing.columns), "data": missing.values.tolist()}},
    )
    assert r.status_code == 400
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"  # MLflow's, for a missing column
    assert "mean radius" in r.json()["message"]
    records = frame.to_dict(orient="records")
    records[1]["mean texture"] = "soft"
    r = _post(cancer, {"dataframe_records": records})
    assert r.status_code == 400
    assert "mean texture" in r.json()["message"]
    r = _post(cancer, {"instances": frame.values[:, :5].tolist()})  # 5 values, 30 columns
    assert r.status_code == 400
    assert "30" in r.json()["message"]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2, 3]",
        b'{"rows": [[1, 2]]}',
        b'{"instances": [[1]], "inputs": [[1]]}',
        b'{"dataframe_split": {"columns": ["a"]}}',
        b'{"instances": [[1]], "params": [1]}',
    ],
)
def test_malformed_bodies_are_bad_requests(digits: Server, body: bytes) -> None:
    r = digits.http.post("/invocations", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    doc = r.json()
    assert doc["error_code"] == "BAD_REQUEST" and doc["message"]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/json; charset=latin-1", "application/xml", ""]
)
def test_other_content_types_are_415(digits: Server, content_type: str) -> None:
    r = digits.http.post(
        "/invocations", content=b'{"instances": [[1]]}', headers={"content-type": content_type}
    )
    assert r.status_code == 415


def test_metrics_count_requests_errors_latency_and_the_log(digits: Server, models: Models) -> None:
    def value(samples, name, **labels):
        want = tuple(sorted({"deployment": "digits-api", **labels}.items()))
        return samples.get((name, want), 0.0)

    before = digits.metrics()
    body = {"instances": models.digits_x[:2].tolist()}
    for _ in range(5):
        assert _post(digits, body).status_code == 200
    assert (
        digits.http.post(
            "/invocations", content=b"{", headers={"content-type": "application/json"}
        ).status_code
        == 400
    )
    flushed = digits.http.post("/admin/log/flush").json()
    assert flushed["commit"]
    after = digits.metrics()
    ok = {"version": "1", "protocol": "mlflow", "code": "200"}
    assert (
        value(after, "cairn_requests_total", **ok) - value(before, "cairn_requests_total", **ok)
        == 5
    )
    bad = {"protocol": "mlflow", "kind": "bad_request", "side": "client"}
    assert (
        value(after, "cairn_request_errors_total", **bad)
        - value(before, "cairn_request_errors_total", **bad)
        == 1
    )
    hist = {"version": "1", "protocol": "mlflow"}
    assert (
        value(after, "cairn_request_latency_seconds_count", **hist)
        - value(before, "cairn_request_latency_seconds_count", **hist)
        == 5
    )
    assert value(after, "cairn_prediction_log_records", state="committed") >= 5
    assert value(after, "cairn_prediction_log_records", state="dropped") == 0
    assert value(after, "cairn_policy_revision") == 1
    assert value(after, "cairn_model_version_loaded", version="1") == 1


def _bodies(rows: list[list], names: list[str]) -> dict[str, dict]:
    return {
        "dataframe_split": {"dataframe_split": {"columns": names, "data": rows}},
        "dataframe_records": {
            "dataframe_records": [dict(zip(names, r, strict=True)) for r in rows]
        },
        "instances": {"instances": rows},
        "inputs": {"inputs": rows},
        "inputs_columnar": {"inputs": {n: [r[i] for r in rows] for i, n in enumerate(names)}},
    }


@pytest.mark.parametrize(
    "form", ["dataframe_split", "dataframe_records", "instances", "inputs", "inputs_columnar"]
)
@pytest.mark.parametrize("mistake", ["empty", "null", "1e308"])
def test_client_mistakes_in_numbers_are_400_not_500(
    digits: Server, models: Models, form: str, mistake: str
) -> None:
    x = models.digits_x
    names = [str(i) for i in range(x.shape[1])]
    row = x[0].tolist()
    if mistake == "null":
        row[10] = None
    elif mistake == "1e308":
        row[models.overflowing_column()] = 1e308
    rows = [] if mistake == "empty" else [row, x[1].tolist()]
    r = _post(digits, _bodies(rows, names)[form])
    # before: 500 INTERNAL_ERROR ("the model failed on these inputs: ValueError: ...")
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "BAD_REQUEST" and r.json()["message"]


@pytest.mark.parametrize(
    "csv",
    [
        "{names}\n",  # no rows
        "{names}\n{missing}\n",  # an empty field: NaN
        "{names}\n{inf}\n",  # pandas reads inf
    ],
)
def test_client_mistakes_in_csv_are_400(digits: Server, models: Models, csv: str) -> None:
    row = [str(v) for v in models.digits_x[0]]
    text = csv.format(
        names=",".join(str(i) for i in range(64)),
        missing=",".join(["", *row[1:]]),
        inf=",".join([*row[:20], "inf", *row[21:]]),
    )
    r = digits.http.post("/invocations", content=text, headers={"content-type": "text/csv"})
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "BAD_REQUEST"
