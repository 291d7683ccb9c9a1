"""The protocol modules on their own: request bodies to frames, answers to bodies."""

from __future__ import annotations

import struct

import numpy as np
import orjson
import pandas as pd
import pytest

from cairn.server import mlflow_protocol as mlp
from cairn.server import v2_protocol as v2

SCHEMA = mlp.InputSchema.of(["a", "b"], ["double", "long"])


def _parse(doc: object, schema: mlp.InputSchema | None = SCHEMA) -> mlp.Invocation:
    return mlp.parse_invocation(orjson.dumps(doc), "application/json", schema)


def test_rows_of_numbers_keep_integer_columns_for_integer_types() -> None:
    got = _parse({"dataframe_split": {"columns": ["a", "b"], "data": [[1.5, 2], [2.5, 3]]}})
    assert list(got.frame.columns) == ["a", "b"]
    assert got.frame["b"].tolist() == [2, 3]  # not the float array's 2.0, 3.0
    floats = mlp.InputSchema.of(["a", "b"], ["double", "double"])
    fast = _parse({"instances": [[1.5, 2], [2.5, 3]]}, floats)
    assert fast.frame.dtypes.tolist() == ["float64"] * 2


def test_records_with_different_keys_and_columnar_inputs() -> None:
    got = _parse({"dataframe_records": [{"a": 1.0, "b": 2}, {"b": 3, "a": 4.0}]})
    assert got.frame.sort_index(axis=1).to_dict("list") == {"a": [1.0, 4.0], "b": [2, 3]}
    cols = _parse({"inputs": {"a": [1.0, 2.0], "b": [3, 4]}, "params": {"k": 1}})
    assert cols.frame.to_dict("list") == {"a": [1.0, 2.0], "b": [3, 4]} and cols.params == {"k": 1}
    scalars = _parse({"instances": [1.0, 2.0]}, mlp.InputSchema.of(["a"], ["double"]))
    assert scalars.frame["a"].tolist() == [1.0, 2.0]


def test_rows_without_a_signature_are_positional() -> None:
    got = _parse({"instances": [[1, 2, 3]]}, None)
    assert isinstance(got.frame.columns, pd.RangeIndex)


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"a,b\n1,2\n", "text/csv", 200),
        (b'a,b\n1,"2\n', "text/csv", 400),
        (b"{}", "application/json; foo=bar", 415),
        (b"{}", None, 415),
        (b'{"instances": [[1, 2, 3]]}', "application/json", 400),  # 3 values, 2 columns
    ],
)
def test_content_types_and_widths(body: bytes, content_type: str | None, status: int) -> None:
    if status == 200:
        assert mlp.parse_invocation(body, content_type, SCHEMA).frame.shape == (1, 2)
        return
    with pytest.raises(mlp.ProtocolError) as info:
        mlp.parse_invocation(body, content_type, SCHEMA)
    assert info.value.status == status


@pytest.mark.parametrize(
    "doc",
    [
        {"inputs": [[1.0, 2], [3.0]]},
        {"instances": [[1.0, 2], [3.0, 4, 5]]},
        {"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2], [3.0]]}},
        {"instances": [[1.0, 2], 3.0]},
    ],
)
def test_ragged_rows_are_400_not_padded_with_nan(doc: dict) -> None:
    with pytest.raises(mlp.ProtocolError, match="row 1") as info:
        _parse(doc)
    assert info.value.status == 400


def test_predictions_bodies() -> None:
    assert orjson.loads(mlp.predictions_body(np.array([1, 2]))) == {"predictions": [1, 2]}
    frame = pd.DataFrame({"p": [0.5], "label": ["x"]})
    assert orjson.loads(mlp.predictions_body(frame)) == {"predictions": [{"p": 0.5, "label": "x"}]}
    strings = np.array(["a", "b"], dtype=object)
    assert orjson.loads(mlp.predictions_body(strings)) == {"predictions": ["a", "b"]}


def _binary_request(inputs: list[tuple[dict, bytes]], **extra: object) -> tuple[bytes, str]:
    header = orjson.dumps(
        {
            "inputs": [
                {**spec, "parameters": {"binary_data_size": len(raw)}} for spec, raw in inputs
            ],
            **extra,
        }
    )
    return header + b"".join(raw for _, raw in inputs), str(len(header))


def test_binary_tensors_of_every_kind() -> None:
    words = [b"alpha", "b\u00e9ta".encode()]
    packed = b"".join(struct.pack("<I", len(w)) + w for w in words)
    schema = mlp.InputSchema.of(["n", "f", "flag", "word"], ["long", "float", "boolean", "string"])
    body, size = _binary_request(
        [
            ({"name": "n", "shape": [2], "datatype": "INT32"}, np.array([1, 2], "<i4").tobytes()),
            (
                {"name": "f", "shape": [2, 1], "datatype": "FP16"},
                np.array([0.5, 1], "<f2").tobytes(),
            ),
            ({"name": "flag", "shape": [2], "datatype": "BOOL"}, bytes([1, 0])),
            ({"name": "word", "shape": [2], "datatype": "BYTES"}, packed),
        ],
        outputs=[{"name": "y", "parameters": {"binary_data": True}}],
        parameters={"binary_data_output": True, "method": "predict"},
    )
    req = v2.parse_infer(body, size, schema)
    assert req.frame.to_dict("list") == {
        "n": [1, 2],
        "f": [0.5, 1.0],
        "flag": [True, False],
        "word": ["alpha", "b\u00e9ta"],
    }
    assert req.outputs == {"y": True} and req.binary_default
    assert req.params == {"method": "predict"}


@pytest.mark.parametrize(
    "doc",
    [
        {"inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "data": [1]}]},
        {"inputs": [{"name": "x", "shape": [1], "datatype": "INT8", "data": ["a"]}]},
        {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32"}]},
        {"inputs": [{"name": "x", "shape": [2, 2, 2], "datatype": "FP32", "data": [0] * 8}]},
        {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}], "outputs": 3},
        {"inputs": [{"name": "x", "shape": [True], "datatype": "FP32", "data": [1]}]},
    ],
)
def test_bad_tensors_are_400(doc: dict) -> None:
    with pytest.raises(v2.V2Error) as info:
        v2.parse_infer(orjson.dumps(doc), None, None)
    assert info.value.status == 400


@pytest.mark.parametrize("shape", [[2**32, 2**32], [2**62, 4], [2**31, 2**31, 4], [2**61, 8]])
@pytest.mark.parametrize("binary", [False, True])
def test_shapes_whose_product_overflows_are_400(shape: list, binary: bool) -> None:
    # int64 products wrap (2**32 * 2**32 == 0), so an empty tensor matched such a shape and
    # reshaping it raised ValueError: a 500 instead of a 400
    spec = {"name": "x", "shape": shape, "datatype": "FP64"}
    if binary:
        body, size = _binary_request([(spec, b"")])
    else:
        body, size = orjson.dumps({"inputs": [{**spec, "data": []}]}), None
    with pytest.raises(v2.V2Error) as info:
        v2.parse_infer(body, size, None)
    assert info.value.status == 400


def test_binary_sizes_must_add_up() -> None:
    body, size = _binary_request(
        [({"name": "x", "shape": [2], "datatype": "FP64"}, np.zeros(2).tobytes())]
    )
    with pytest.raises(v2.V2Error):
        v2.parse_infer(body + b"extra", size, None)
    with pytest.raises(v2.V2Error):
        v2.parse_infer(body[:-1], size, None)


def test_nested_json_data_and_output_encoding() -> None:
    doc = {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [[1, 2], [3, 4]]}]}
    req = v2.parse_infer(orjson.dumps(doc), None, mlp.InputSchema.of(["a", "b"], ["double"] * 2))
    assert req.frame.to_dict("list") == {"a": [1.0, 3.0], "b": [2.0, 4.0]}
    tensors = v2.output_tensors(
        pd.DataFrame({"label": ["x", "yz"], "p": np.array([0.5, 1.0], "<f4")}), None
    )
    out, chunks = v2.encode_outputs(tensors, {"label": True, "p": False}, False)
    assert out[0] == {
        "name": "label",
        "datatype": "BYTES",
        "shape": [2],
        "parameters": {"binary_data_size": 4 + 1 + 4 + 2},
    }
    assert chunks == [struct.pack("<I", 1) + b"x" + struct.pack("<I", 2) + b"yz"]
    assert orjson.loads(mlp.dumps(out[1])) == {
        "name": "p",
        "datatype": "FP32",
        "shape": [2],
        "data": [0.5, 1.0],
    }
    with pytest.raises(v2.V2Error):
        v2.encode_outputs(tensors, {"missing": False}, False)


def test_metadata_tensors_from_signatures() -> None:
    sig = {
        "inputs": [{"name": "a", "type": "long"}, {"name": "s", "type": "string"}],
        "outputs": None,
    }
    assert v2.metadata_tensors(sig, "inputs") == [
        {"name": "a", "datatype": "INT64", "shape": [-1]},
        {"name": "s", "datatype": "BYTES", "shape": [-1]},
    ]
    # no outputs in the signature: the one tensor infer answers, by the name it uses
    assert v2.metadata_tensors(sig, "outputs") == [
        {"name": "predictions", "datatype": "BYTES", "shape": [-1]}
    ]
    assert v2.output_tensors(np.array([1, 2]), sig)[0][0] == "predictions"
    # MLflow's unnamed outputs (column or tensor): the same
    unnamed = {"inputs": sig["inputs"], "outputs": [{"type": "long"}]}
    assert v2.metadata_tensors(unnamed, "outputs") == [
        {"name": "predictions", "datatype": "INT64", "shape": [-1]}
    ]
    assert v2.output_tensors(np.array([1, 2]), unnamed)[0][0] == "predictions"


@pytest.mark.parametrize(
    "doc",
    [
        {"dataframe_split": {"columns": ["a", "b"], "data": []}},
        {"dataframe_split": {"data": []}},
        {"dataframe_records": []},
        {"instances": []},
        {"inputs": []},
        {"inputs": {"a": [], "b": []}},
    ],
)
def test_bodies_without_rows_are_400(doc: dict) -> None:
    # before: an empty frame reached the model, which raised (a 500)
    with pytest.raises(mlp.ProtocolError) as info:
        _parse(doc)
    assert info.value.status == 400
    with pytest.raises(mlp.ProtocolError):
        mlp.parse_invocation(b"a,b\n", "text/csv", SCHEMA)


@pytest.mark.parametrize(
    ("data", "datatype"),
    [
        ([1.0, None], "FP64"),  # null: nothing in V2's JSON tensor data
        ([1.0, None], "FP32"),
        ([1.0, 1e308], "FP32"),  # overflows FP32 to inf
        ([1.0, 1e5], "FP16"),
    ],
)
def test_json_tensor_data_the_datatype_cannot_hold_is_400(data: list, datatype: str) -> None:
    doc = {"inputs": [{"name": "x", "shape": [2], "datatype": datatype, "data": data}]}
    with pytest.raises(v2.V2Error) as info:
        v2.parse_infer(orjson.dumps(doc), None, None)
    assert info.value.status == 400
    fine = {"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", "data": [1.0, 1e308]}]}
    assert v2.parse_infer(orjson.dumps(fine), None, None).frame.iloc[1, 0] == 1e308


@pytest.mark.parametrize("binary", [False, True])
def test_tensors_without_rows_are_400(binary: bool) -> None:
    spec = {"name": "x", "shape": [0, 3], "datatype": "FP64"}
    if binary:
        body, size = _binary_request([(spec, b"")])
    else:
        body, size = orjson.dumps({"inputs": [{**spec, "data": []}]}), None
    with pytest.raises(v2.V2Error) as info:
        v2.parse_infer(body, size, None)
    assert info.value.status == 400


def test_binary_data_output_applies_to_listed_outputs_that_do_not_say() -> None:
    # before: a listed output without binary_data was JSON even with binary_data_output
    doc = {
        "inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]}],
        "outputs": [{"name": "a"}, {"name": "b", "parameters": {"binary_data": False}}],
        "parameters": {"binary_data_output": True},
    }
    parsed = v2.parse_infer(orjson.dumps(doc), None, None)
    tensors = [("a", np.array([1, 2])), ("b", np.array([3, 4]))]
    encoded, chunks = v2.encode_outputs(tensors, parsed.outputs, parsed.binary_default)
    assert "binary_data_size" in encoded[0]["parameters"] and "data" not in encoded[0]
    assert encoded[1]["data"].tolist() == [3, 4] and len(chunks) == 1


@pytest.mark.parametrize("key", ["classification", "class_count"])
def test_class_count_is_refused_not_ignored(key: str) -> None:
    doc = {
        "inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]}],
        "outputs": [{"name": "predictions", "parameters": {key: 3}}],
    }
    with pytest.raises(v2.V2Error) as caught:
        v2.parse_infer(orjson.dumps(doc), None, None)
    assert caught.value.status == 400


def test_parquet_bodies_read_as_mlflow_reads_them() -> None:
    import io

    frame = pd.DataFrame({"a": [1.0, 2.0], "s": ["x", "y"]})
    buf = io.BytesIO()
    frame.to_parquet(buf)
    parsed = mlp.parse_invocation(buf.getvalue(), mlp.PARQUET, None)
    pd.testing.assert_frame_equal(parsed.frame, frame)
    with pytest.raises(mlp.ProtocolError) as caught:
        mlp.parse_invocation(b"not parquet", mlp.PARQUET, None)
    assert caught.value.status == 400
