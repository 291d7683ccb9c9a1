"""The Open Inference Protocol V2 REST (KServe's "V2 inference protocol", also Triton's and
MLServer's HTTP API): tensors to a DataFrame, predictions to output tensors, and the binary
tensor data extension.

Source: KServe's documented REST spec (``/v2``, ``/v2/health/{live,ready}``,
``/v2/models/{name}[/versions/{v}][/ready|/infer]``, the tensor JSON and datatypes) and
Triton's binary tensor data extension (the ``Inference-Header-Content-Length`` header, the
``binary_data_size`` input parameter, the ``binary_data`` output parameter and the
``binary_data_output`` request parameter), which tritonclient's HTTP client uses by default.

An inference request's inputs are either one 2-D tensor ``[n, k]`` whose columns follow
the model signature's column order (any name), or one tensor ``[n]`` (or ``[n, 1]``) per
column, named like the signature's columns. Tensor data may be flat (row-major) or nested.
Binary data follows the JSON header in input order: raw little-endian values, or for
``BYTES`` each element as a 4-byte little-endian length and its bytes.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd

from cairn.server.mlflow_protocol import InputSchema

__all__ = [
    "DATATYPES",
    "InferRequest",
    "V2Error",
    "encode_outputs",
    "metadata_tensors",
    "output_name",
    "output_tensors",
    "parse_infer",
]

# V2 datatype -> numpy dtype ("<" little-endian, as the binary extension sends them).
DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
# MLflow column type -> V2 datatype (what the metadata endpoints report).
MLFLOW_TO_V2 = {
    "boolean": "BOOL",
    "integer": "INT32",
    "long": "INT64",
    "float": "FP32",
    "double": "FP64",
    "string": "BYTES",
    "binary": "BYTES",
    "datetime": "BYTES",
}
_KIND_TO_V2 = {"b": "BOOL", "O": "BYTES", "U": "BYTES", "S": "BYTES"}
HEADER = "inference-header-content-length"
# Request parameters the protocol itself uses (Triton's reserved names); the others are
# the model's params.
PROTOCOL_PARAMETERS = frozenset(
    {
        "binary_data_output",
        "sequence_id",
        "sequence_start",
        "sequence_end",
        "priority",
        "timeout",
        "headers",
        "content_type",
    }
)


class V2Error(Exception):
    """A request the protocol does not accept: ``status`` (400, 404) and a message, sent as
    ``{"error": message}``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class InferRequest:
    """A parsed inference request: the ``frame`` to predict, the request ``id`` (or None),
    its ``parameters`` (all of them) and ``params`` (those for the model: the parameters
    the protocol does not reserve), the requested ``outputs`` (name -> binary or not, None
    where the output does not say; None means all) and whether outputs are binary by
    default (``binary_data_output``)."""

    frame: pd.DataFrame
    id: str | None
    parameters: dict[str, Any]
    params: dict[str, Any] | None
    outputs: dict[str, bool | None] | None
    binary_default: bool


def output_name(signature: Mapping[str, Any] | None) -> str:
    """The name of the output tensor a prediction that is one array gets: the signature's
    single output's name, else ``predictions``. The metadata endpoints list the same name."""
    specs = (signature or {}).get("outputs") or []
    if len(specs) == 1 and specs[0].get("name"):
        return str(specs[0]["name"])
    return "predictions"


def metadata_tensors(signature: Mapping[str, Any] | None, key: str) -> list[dict[str, Any]]:
    """Metadata tensors (name, datatype, shape) for a signature's ``inputs`` or ``outputs``:
    one ``[-1]`` tensor per column, by the names ``infer`` uses. Outputs that are not
    several named columns (none, MLflow's unnamed or tensor outputs) are the one tensor
    ``output_name`` names: its datatype from the signature when it gives one type, else
    ``BYTES`` (any; infer answers the model's actual datatype)."""
    specs = (signature or {}).get(key) or []
    if key == "outputs" and not (len(specs) > 1 and all(s.get("name") for s in specs)):
        kind = specs[0].get("type") if len(specs) == 1 else None
        dtype = MLFLOW_TO_V2.get(str(kind), "BYTES")
        return [{"name": output_name(signature), "datatype": dtype, "shape": [-1]}]
    tensors = []
    for i, spec in enumerate(specs):
        name = spec.get("name") or (key[:-1] if len(specs) == 1 else f"{key[:-1]}_{i}")
        shape = [-1, *spec.get("shape", [])[1:]] if spec.get("shape") else [-1]
        dtype = MLFLOW_TO_V2.get(str(spec.get("type")), "BYTES")
        tensors.append({"name": str(name), "datatype": dtype, "shape": shape})
    return tensors


def parse_infer(body: bytes, header_length: str | None, schema: InputSchema | None) -> InferRequest:
    """Parse an ``infer`` request body; ``header_length`` is the
    ``Inference-Header-Content-Length`` header (binary extension) and ``schema`` the
    signature's inputs (or None). Raises V2Error (400: malformed, no rows, or JSON data a
    datatype cannot hold, such as null or 1e308 as FP32)."""
    binary = b""
    if header_length is not None:
        try:
            size = int(header_length)
        except ValueError:
            raise V2Error(
                f"Inference-Header-Content-Length must be a number: {header_length!r}"
            ) from None
        if not 0 < size <= len(body):
            raise V2Error(f"Inference-Header-Content-Length {size} exceeds the body")
        body, binary = body[:size], body[size:]
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise V2Error(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list) or not doc["inputs"]:
        raise V2Error("an inference request is a JSON object with a non-empty 'inputs' list")
    parameters = doc.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise V2Error("'parameters' must be a JSON object")
    tensors: list[tuple[str, np.ndarray]] = []
    offset = 0
    for i, spec in enumerate(doc["inputs"]):
        name, arr, offset = _input_tensor(i, spec, binary, offset)
        tensors.append((name, arr))
    if offset != len(binary):
        raise V2Error(f"{len(binary) - offset} byte(s) of binary data no input claims")
    frame = _frame(tensors, schema)
    if not len(frame):
        # a model cannot answer zero rows (scikit-learn raises): the request's mistake
        raise V2Error("the inputs have no rows to predict: send at least one")
    outputs = _requested(doc.get("outputs"))
    request_id = doc.get("id")
    return InferRequest(
        frame=frame,
        id=None if request_id is None else str(request_id),
        parameters=parameters,
        params={
            k: v
            for k, v in parameters.items()
            if k not in PROTOCOL_PARAMETERS and not k.startswith("triton_")
        }
        or None,
        outputs=outputs,
        binary_default=bool(parameters.get("binary_data_output", False)),
    )


def _input_tensor(i: int, spec: Any, binary: bytes, offset: int) -> tuple[str, np.ndarray, int]:
    if not isinstance(spec, dict):
        raise V2Error(f"inputs[{i}] must be an object with name, shape, datatype and data")
    name, shape, datatype = spec.get("name"), spec.get("shape"), spec.get("datatype")
    if not isinstance(name, str):
        raise V2Error(f"inputs[{i}].name must be a string")
    if not (
        isinstance(shape, list)
        and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise V2Error(f"input {name!r}: shape must be a list of non-negative integers")
    dtype = DATATYPES.get(datatype) if isinstance(datatype, str) else None
    if dtype is None:
        raise V2Error(
            f"input {name!r}: datatype {datatype!r} is not supported; use one of "
            f"{', '.join(DATATYPES)}"
        )
    count = math.prod(shape)  # Python ints: numpy's int64 product wraps (2**32 * 2**32 == 0)
    params = spec.get("parameters") or {}
    size = params.get("binary_data_size") if isinstance(params, dict) else None
    if size is not None:
        if not isinstance(size, int) or size < 0 or offset + size > len(binary):
            raise V2Error(f"input {name!r}: binary_data_size {size!r} exceeds the binary data")
        chunk = binary[offset : offset + size]
        offset += size
        if datatype == "BYTES":
            arr = _unpack_bytes(name, chunk)
        else:
            if size != count * dtype.itemsize:
                raise V2Error(
                    f"input {name!r}: {size} byte(s) of binary data for shape {shape} of "
                    f"{datatype} ({count * dtype.itemsize} expected)"
                )
            arr = np.frombuffer(chunk, dtype=dtype)
    else:
        if "data" not in spec:
            raise V2Error(f"input {name!r} has neither data nor parameters.binary_data_size")
        try:
            if datatype == "BYTES":
                arr = np.array(_flatten(spec["data"]), dtype=object)
            else:
                with np.errstate(over="ignore", invalid="ignore"):  # checked below
                    arr = np.asarray(spec["data"], dtype=dtype).reshape(-1)
        except (TypeError, ValueError, OverflowError) as exc:
            raise V2Error(f"input {name!r}: data is not {datatype}: {exc}") from exc
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            # JSON has no NaN or infinity: a null, or a number beyond the datatype's range
            at = int(np.flatnonzero(~np.isfinite(arr))[0])
            raise V2Error(
                f"input {name!r}: element {at} is null or outside the range of {datatype}; "
                "data must be numbers the datatype holds"
            )
    if arr.size != count:
        raise V2Error(f"input {name!r}: {arr.size} value(s) for shape {shape} ({count} expected)")
    return name, arr.reshape(shape), offset


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    if not data or not isinstance(data[0], list):
        return data
    flat: list[Any] = []
    for item in data:
        flat.extend(_flatten(item))
    return flat


def _unpack_bytes(name: str, chunk: bytes) -> np.ndarray:
    """BYTES elements in the binary form: a 4-byte little-endian length, then the bytes."""
    items: list[Any] = []
    pos = 0
    while pos < len(chunk):
        if pos + 4 > len(chunk):
            raise V2Error(f"input {name!r}: truncated BYTES element")
        (n,) = struct.unpack_from("<I", chunk, pos)
        pos += 4
        if pos + n > len(chunk):
            raise V2Error(f"input {name!r}: truncated BYTES element")
        items.append(chunk[pos : pos + n])
        pos += n
    return np.array(items, dtype=object)


def _decode(arr: np.ndarray) -> np.ndarray:
    """BYTES tensors hold strings for the model (UTF-8 where they decode)."""
    if arr.dtype == object:
        out = np.empty(arr.shape, dtype=object)
        for idx, value in np.ndenumerate(arr):
            if isinstance(value, bytes):
                try:
                    value = value.decode("utf-8")
                except UnicodeDecodeError:
                    pass
            out[idx] = value
        return out
    return arr


def _frame(tensors: list[tuple[str, np.ndarray]], schema: InputSchema | None) -> pd.DataFrame:
    columns: Sequence[str] = schema.names if schema is not None else ()
    if len(tensors) == 1 and tensors[0][1].ndim == 2 and tensors[0][1].shape[1] != 1:
        name, arr = tensors[0]
        width = arr.shape[1]
        if schema is not None and len(columns) != width:
            shown = ", ".join(columns[:8]) + (", ..." if len(columns) > 8 else "")
            raise V2Error(
                f"input {name!r} has {width} column(s) but the model's signature has "
                f"{len(columns)}: {shown}; send [n, {len(columns)}] in this order or one "
                "tensor per column"
            )
        names: Any = schema.index if schema is not None else range(width)
        arr = _decode(arr)
        return pd.DataFrame(arr, columns=names, copy=False)
    if len(tensors) == 1 and columns and len(columns) == 1:
        tensors = [(columns[0], tensors[0][1])]  # a one-column model takes any name
    data: dict[str, np.ndarray] = {}
    length = None
    for name, arr in tensors:
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.ndim != 1:
            raise V2Error(
                f"input {name!r} has shape {list(arr.shape)}: send one [n] tensor per column, "
                "or a single [n, k] tensor"
            )
        if length is not None and len(arr) != length:
            raise V2Error(f"input {name!r} has {len(arr)} row(s), the others {length}")
        length = len(arr)
        if name in data:
            raise V2Error(f"input {name!r} is given twice")
        data[name] = _decode(arr)
    if columns:
        order = [c for c in columns if c in data] + [c for c in data if c not in columns]
        data = {c: data[c] for c in order}
    return pd.DataFrame(data, copy=False)


def _requested(outputs: Any) -> dict[str, bool | None] | None:
    """Requested outputs: name -> ``binary_data`` (None when not given). Raises V2Error for
    Triton's classification extension (``classification``, tritonclient's ``class_count``),
    which cairn does not implement: refused rather than ignored."""
    if outputs is None:
        return None
    if not isinstance(outputs, list):
        raise V2Error("'outputs' must be a list of {name, parameters}")
    wanted: dict[str, bool | None] = {}
    for i, spec in enumerate(outputs):
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise V2Error(f"outputs[{i}] must be an object with a name")
        params = spec.get("parameters") or {}
        if not isinstance(params, dict):
            raise V2Error(f"outputs[{i}].parameters must be an object")
        if params.get("classification") or params.get("class_count"):
            raise V2Error(
                f"output {spec['name']!r}: the classification extension (class_count) is not "
                "supported; ask for the output without it, or for predict_proba with "
                '"parameters": {"method": "predict_proba"}'
            )
        binary = params.get("binary_data")
        wanted[spec["name"]] = None if binary is None else bool(binary)
    return wanted


def output_tensors(
    outputs: Any, signature: Mapping[str, Any] | None
) -> list[tuple[str, np.ndarray]]:
    """A prediction as named arrays: a DataFrame or dict gives one tensor per column or key;
    an array one tensor, named by the signature's single output or ``predictions``."""
    if isinstance(outputs, pd.DataFrame):
        return [(str(c), outputs[c].to_numpy()) for c in outputs.columns]
    if isinstance(outputs, dict):
        return [(str(k), np.asarray(v)) for k, v in outputs.items()]
    if isinstance(outputs, pd.Series):
        outputs = outputs.to_numpy()
    return [(output_name(signature), np.asarray(outputs))]


def _datatype(arr: np.ndarray) -> tuple[str, np.ndarray]:
    kind = arr.dtype.kind
    if kind in _KIND_TO_V2:
        return _KIND_TO_V2[kind], arr
    if kind in "iuf":
        prefix = {"i": "INT", "u": "UINT", "f": "FP"}[kind]
        return f"{prefix}{arr.dtype.itemsize * 8}", arr
    # datetimes and anything else travel as strings
    return "BYTES", arr.astype(str).astype(object)


def encode_outputs(
    tensors: list[tuple[str, np.ndarray]],
    wanted: dict[str, bool | None] | None,
    binary_default: bool,
) -> tuple[list[dict[str, Any]], list[bytes]]:
    """Output tensors as JSON objects, and the binary chunks to append after the JSON (in
    output order). An output is binary when it asks so (``binary_data``), else when the
    request does (``binary_data_output``). Raises V2Error for a requested output the model
    does not give."""
    if wanted is not None:
        known = {name for name, _ in tensors}
        missing = [name for name in wanted if name not in known]
        if missing:
            raise V2Error(
                f"unknown output(s) {', '.join(missing)}; the model gives "
                f"{', '.join(sorted(known))}"
            )
    encoded: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for name, arr in tensors:
        if wanted is not None and name not in wanted:
            continue
        asked = wanted.get(name) if wanted is not None else None
        as_binary = binary_default if asked is None else asked
        datatype, arr = _datatype(arr)
        tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(arr.shape)}
        if as_binary:
            raw = _pack(arr, datatype)
            tensor["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        elif datatype == "BYTES":
            tensor["data"] = [_text(v) for v in arr.ravel().tolist()]
        else:
            tensor["data"] = np.ascontiguousarray(arr).reshape(-1)
        encoded.append(tensor)
    return encoded, chunks


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else str(value)


def _pack(arr: np.ndarray, datatype: str) -> bytes:
    if datatype == "BYTES":
        parts = []
        for value in arr.ravel().tolist():
            raw = value if isinstance(value, bytes) else str(value).encode("utf-8")
            parts.append(struct.pack("<I", len(raw)))
            parts.append(raw)
        return b"".join(parts)
    return np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
