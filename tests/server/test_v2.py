"""The Open Inference Protocol V2 against the real ``cairn serve``, through an existing
client: tritonclient's HTTP client (JSON and binary tensor data); paths naming a version
answer only for the versions of the deployment's policy (unless --allow-any-version)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import orjson
import pytest
import tritonclient.http as triton
from tests.server.conftest import Models, Server
from tritonclient.utils import InferenceServerException

from cairn.client import Client


def _client(server: Server) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(f"127.0.0.1:{server.port}", connection_timeout=30)


def test_health_and_metadata(digits: Server, cancer: Server) -> None:
    client = _client(digits)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("digits-api")
    assert client.is_model_ready("digits-api", "1")
    assert not client.is_model_ready("digits-api", "3")  # not in the policy
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]
    meta = client.get_model_metadata("digits-api")
    assert meta["versions"] == ["1"]
    assert [t["name"] for t in meta["inputs"]] == [str(i) for i in range(64)]
    assert {t["datatype"] for t in meta["inputs"]} == {"FP64"}
    assert meta["outputs"] == [{"name": "prediction", "datatype": "INT64", "shape": [-1]}]
    assert client.get_model_metadata("digits-api", "1")["versions"] == ["1"]
    named = _client(cancer).get_model_metadata("cancer")
    assert named["inputs"][0] == {"name": "mean radius", "datatype": "FP64", "shape": [-1]}
    with pytest.raises(InferenceServerException) as info:
        client.get_model_metadata("nope")
    assert info.value.status() == "404"


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("dtype", ["FP64", "FP32", "INT64"])
def test_infer_one_2d_tensor(digits: Server, models: Models, binary: bool, dtype: str) -> None:
    x = models.digits_x[:11]
    arr = x.astype({"FP64": np.float64, "FP32": np.float32, "INT64": np.int64}[dtype])
    tensor = triton.InferInput("pixels", list(arr.shape), dtype)
    tensor.set_data_from_numpy(arr, binary_data=binary)
    wanted = [triton.InferRequestedOutput("prediction", binary_data=binary)]
    result = _client(digits).infer("digits-api", [tensor], outputs=wanted, request_id="r-7")
    np.testing.assert_array_equal(result.as_numpy("prediction"), models.digits[1].predict(arr))
    response = result.get_response()
    assert (response["id"], response["model_name"], response["model_version"]) == (
        "r-7",
        "digits-api",
        "1",
    )


def test_infer_without_requested_outputs_gets_binary_outputs(
    digits: Server, models: Models
) -> None:
    x = models.digits_x[20:25]
    tensor = triton.InferInput("x", list(x.shape), "FP64")
    tensor.set_data_from_numpy(x)
    result = _client(digits).infer("digits-api", [tensor])  # binary_data_output: true
    assert result.get_output("prediction")["parameters"]["binary_data_size"] == 5 * 8
    np.testing.assert_array_equal(result.as_numpy("prediction"), models.digits[1].predict(x))


@pytest.mark.parametrize("binary", [True, False])
def test_infer_one_tensor_per_named_column(cancer: Server, models: Models, binary: bool) -> None:
    frame = models.cancer_x.iloc[:6]
    inputs = []
    for name in reversed(frame.columns):  # any order: matched by name
        tensor = triton.InferInput(name, [len(frame)], "FP64")
        tensor.set_data_from_numpy(frame[name].to_numpy(), binary_data=binary)
        inputs.append(tensor)
    result = _client(cancer).infer("cancer", inputs)
    np.testing.assert_array_equal(result.as_numpy("prediction"), models.cancer.predict(frame))


def _pixels(models: Models, rows: int = 50) -> triton.InferInput:
    x = models.digits_x[:rows]
    tensor = triton.InferInput("x", list(x.shape), "FP64")
    tensor.set_data_from_numpy(x)
    return tensor


def test_a_version_outside_the_policy_is_404(digits: Server, models: Models) -> None:
    client = _client(digits)
    result = client.infer("digits-api", [_pixels(models)], model_version="1")  # the champion
    assert result.get_response()["model_version"] == "1"
    for version in ("3", "9"):  # registered but not in the policy; not registered
        with pytest.raises(InferenceServerException) as info:
            client.infer("digits-api", [_pixels(models)], model_version=version)
        # before: version 3 was loaded on demand and answered
        assert info.value.status() == "404"
        assert "policy" in info.value.message()
        assert "--allow-any-version" in info.value.message()
        r = digits.http.get(f"/v2/models/digits-api/versions/{version}")
        assert r.status_code == 404, r.text
        assert digits.http.get(f"/v2/models/digits-api/versions/{version}/ready").status_code == 404
    assert not client.is_model_ready("digits-api", "3")


def test_a_version_rolled_out_of_the_policy_is_404_as_soon_as_routing_leaves_it(
    start_server: Callable[..., Server], models: Models
) -> None:
    server = start_server("digits@champion", "--deployment", "digits-rollback", "--no-log")
    path = "/v2/models/digits-rollback/versions/2/infer"
    body = {
        "inputs": [
            {
                "name": "x",
                "shape": [2, 64],
                "datatype": "FP64",
                "data": models.digits_x[:2].tolist(),
            }
        ]
    }
    routed = {"instances": models.digits_x[:2].tolist()}
    client = Client.open(models.home, auto_run=False)
    try:
        assert server.http.post(path, json=body).status_code == 404
        client.deployments.canary("digits-rollback", "challenger", 50)
        _until(lambda: server.http.post(path, json=body).status_code == 200, "v2 served")
        client.deployments.rollback("digits-rollback")
        _until(lambda: server.http.post(path, json=body).status_code == 404, "v2 refused")
    finally:
        client.data.catalog.dispose()
    # the versioned route and routing read one table: once v2 is refused, no routed
    # request reaches it (with the 50% canary still in place, about half would)
    answered = [
        server.http.post("/invocations", json=routed).headers["x-cairn-model-version"]
        for _ in range(40)
    ]
    assert set(answered) == {"1"}
    assert server.http.post(path, json=body).status_code == 404


def _until(done: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"{what}: not seen within {timeout} s"
        time.sleep(0.1)


def test_allow_any_version_loads_a_version_on_demand(
    start_server: Callable[..., Server], models: Models
) -> None:
    server = start_server(
        "digits@champion", "--deployment", "digits-any", "--no-log", "--allow-any-version"
    )
    client = _client(server)
    x = models.digits_x[:300]
    tensor = triton.InferInput("x", list(x.shape), "FP64")
    tensor.set_data_from_numpy(x)
    assert not client.is_model_ready("digits-any", "3")  # not loaded yet
    result = client.infer("digits-any", [tensor], model_version="3")
    assert result.get_response()["model_version"] == "3"
    np.testing.assert_array_equal(result.as_numpy("prediction"), models.digits[3].predict(x))
    assert client.is_model_ready("digits-any", "3")  # loaded now
    assert client.get_model_metadata("digits-any", "3")["versions"] == ["3"]
    with pytest.raises(InferenceServerException) as info:
        client.infer("digits-any", [tensor], model_version="9")
    assert info.value.status() == "404"


def test_signature_and_shape_errors_are_400(digits: Server, cancer: Server, models: Models) -> None:
    narrow = models.digits_x[:2, :10]
    tensor = triton.InferInput("x", list(narrow.shape), "FP64")
    tensor.set_data_from_numpy(narrow)
    with pytest.raises(InferenceServerException) as info:
        _client(digits).infer("digits-api", [tensor])
    assert info.value.status() == "400" and "64" in info.value.message()
    frame = models.cancer_x.iloc[:2]
    inputs = []
    for name in frame.columns[1:]:  # "mean radius" missing
        t = triton.InferInput(name, [2], "FP64")
        t.set_data_from_numpy(frame[name].to_numpy())
        inputs.append(t)
    with pytest.raises(InferenceServerException) as info:
        _client(cancer).infer("cancer", inputs)
    assert info.value.status() == "400" and "mean radius" in info.value.message()
    text = triton.InferInput("mean radius", [2], "BYTES")
    text.set_data_from_numpy(np.array([b"big", b"small"], dtype=object))
    with pytest.raises(InferenceServerException) as info:
        _client(cancer).infer("cancer", [text, *inputs])
    assert info.value.status() == "400" and "mean radius" in info.value.message()
    with pytest.raises(InferenceServerException) as info:
        wanted = [triton.InferRequestedOutput("probabilities")]
        _client(cancer).infer("cancer", [*inputs[:0], *_columns(frame)], outputs=wanted)
    assert info.value.status() == "400" and "probabilities" in info.value.message()


def _columns(frame):
    out = []
    for name in frame.columns:
        t = triton.InferInput(name, [len(frame)], "FP64")
        t.set_data_from_numpy(frame[name].to_numpy())
        out.append(t)
    return out


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{", 400),
        (b'{"inputs": []}', 400),
        (b'{"inputs": [{"name": "x", "shape": [1, 64], "datatype": "FP128", "data": []}]}', 400),
        (b'{"inputs": [{"name": "x", "shape": [2, 64], "datatype": "FP64", "data": [1.0]}]}', 400),
    ],
)
def test_malformed_infer_bodies(digits: Server, body: bytes, status: int) -> None:
    r = digits.http.post("/v2/models/digits-api/infer", content=body)
    assert r.status_code == status
    assert r.json()["error"]


def test_v2_health_and_paths_over_plain_http(digits: Server) -> None:
    assert digits.http.get("/v2/health/live").json() == {"live": True}
    assert digits.http.get("/v2/health/ready").json() == {"ready": True}
    assert digits.http.get("/v2/models/digits-api/ready").json() == {
        "name": "digits-api",
        "ready": True,
    }
    r = digits.http.post("/v2/models/other/infer", json={"inputs": []})
    assert r.status_code == 404 and "digits-api" in r.json()["error"]


def _json_tensor(data: list, shape: list[int], datatype: str = "FP64") -> dict:
    return {"inputs": [{"name": "x", "shape": shape, "datatype": datatype, "data": data}]}


def _binary_tensor(arr: np.ndarray, datatype: str = "FP64") -> tuple[bytes, dict[str, str]]:
    raw = arr.astype({"FP64": "<f8", "FP32": "<f4"}[datatype]).tobytes()
    spec = {"name": "x", "shape": list(arr.shape), "datatype": datatype}
    header = orjson.dumps({"inputs": [{**spec, "parameters": {"binary_data_size": len(raw)}}]})
    return header + raw, {"inference-header-content-length": str(len(header))}


def _mistakes(models: Models) -> dict[str, tuple[bytes, dict[str, str]]]:
    x = models.digits_x[:2].copy()
    row = x[0].tolist()
    null, big = list(row), list(row)
    null[10] = None
    big[10] = 1e308
    nan, inf, overflow = x.copy(), x.copy(), x.copy()
    nan[0, 10], inf[0, 10] = np.nan, np.inf
    overflow[0, models.overflowing_column()] = 1e308
    json_cases = {
        "json empty": _json_tensor([], [0, 64]),
        "json null": _json_tensor(null, [1, 64]),
        "json 1e308 as FP32": _json_tensor(big, [1, 64], "FP32"),
        "json 1e308 overflowing the model": _json_tensor(overflow.ravel().tolist(), [2, 64]),
    }
    cases = {k: (orjson.dumps(v), {}) for k, v in json_cases.items()}
    cases["binary empty"] = _binary_tensor(np.zeros((0, 64)))
    cases["binary NaN"] = _binary_tensor(nan)
    cases["binary inf FP32"] = _binary_tensor(inf, "FP32")
    cases["binary 1e308 overflowing the model"] = _binary_tensor(overflow)
    return cases


def test_client_mistakes_in_numbers_are_400_not_500(digits: Server, models: Models) -> None:
    for case, (body, headers) in _mistakes(models).items():
        r = digits.http.post("/v2/models/digits-api/infer", content=body, headers=headers)
        # before: 500 for all but the JSON null ("the model failed on these inputs: ...")
        assert r.status_code == 400, (case, r.text)
        assert r.json()["error"], case
