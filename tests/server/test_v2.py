"""The Open Inference Protocol V2 against the real ``cairn serve``, through an existing
client: tritonclient's HTTP client (JSON and binary tensor data)."""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.http as triton
from tests.server.conftest import Models, Server
from tritonclient.utils import InferenceServerException


def _client(server: Server) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(f"127.0.0.1:{server.port}", connection_timeout=30)


def test_health_and_metadata(digits: Server, cancer: Server) -> None:
    client = _client(digits)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("digits-api")
    assert client.is_model_ready("digits-api", "1")
    assert not client.is_model_ready("digits-api", "3")  # not served (yet)
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]
    meta = client.get_model_metadata("digits-api")
    assert meta["versions"] == ["1"]
    assert [t["name"] for t in meta["inputs"]] == [str(i) for i in range(64)]
    assert {t["datatype"] for t in meta["inputs"]} == {"FP64"}
    assert meta["outputs"] == [{"name": "prediction", "datatype": "INT64", "shape": [-1]}]
    assert client.get_model_metadata("digits-api", "3")["versions"] == ["3"]
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


def test_a_version_path_bypasses_the_policy(digits: Server, models: Models) -> None:
    x = models.digits_x[:300]
    tensor = triton.InferInput("x", list(x.shape), "FP64")
    tensor.set_data_from_numpy(x)
    client = _client(digits)
    result = client.infer("digits-api", [tensor], model_version="3")
    assert result.get_response()["model_version"] == "3"
    np.testing.assert_array_equal(result.as_numpy("prediction"), models.digits[3].predict(x))
    assert client.is_model_ready("digits-api", "3")  # loaded now
    with pytest.raises(InferenceServerException) as info:
        client.infer("digits-api", [tensor], model_version="9")
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
