"""MLflow's scoring protocol (``mlflow models serve``): request bodies to a DataFrame, and
predictions to ``{"predictions": ...}``.

Source: MLflow's documented REST API for served models ("Deploy MLflow models", local
inference server) and its scoring server (mlflow/pyfunc/scoring_server). A body is JSON
with exactly one of

- ``dataframe_split``: ``{"columns": [...], "data": [[...], ...]}`` (pandas' split orient;
  ``index`` is ignored),
- ``dataframe_records``: ``[{"col": value, ...}, ...]`` (pandas' records orient),
- ``instances``: a list of rows (dicts or lists) or of scalars (TF serving's row format),
- ``inputs``: the same, or ``{"col": [values...], ...}`` (TF serving's columnar format),

plus an optional ``params`` object; or CSV (``text/csv``) with a header row; or Parquet
(``application/vnd.apache.parquet``, what ``DataFrame.to_parquet()`` writes). Rows given as
lists take the signature's column names, in the signature's order.

Errors are MLflow's: 400 with ``{"error_code": "BAD_REQUEST", "message": ...}`` for a
malformed body or one without rows, 415 (plain text) for a content type other than JSON, CSV
or Parquet.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd

__all__ = [
    "FORMATS",
    "InputSchema",
    "Invocation",
    "ProtocolError",
    "frame_from_rows",
    "parse_invocation",
    "predictions_body",
    "to_jsonable",
]

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
REQUIRED = (
    "The input must be a JSON dictionary with exactly one of the input fields "
    "'dataframe_split', 'dataframe_records', 'instances' or 'inputs'"
)
PARQUET = "application/vnd.apache.parquet"
CONTENT_TYPES = ("text/csv", "application/json", PARQUET)
# MLflow column types whose values numpy may hold as float64 without losing anything the
# signature checks; a float array is only fast-pathed when every column is one of them.
_FLOAT_TYPES = frozenset({"float", "double"})
_NUMBER_TYPES = frozenset({"integer", "long", "float", "double"})


@dataclass(frozen=True)
class InputSchema:
    """The signature's input columns as the request path needs them: ``names`` in order,
    their MLflow ``types``, and ``index``, the same names as a pandas Index (building a
    DataFrame over a ready Index costs a tenth of building it over a list of names)."""

    names: tuple[str, ...]
    types: tuple[str, ...]
    index: pd.Index
    # whether rows of floats (ints) may become one float (int) array: no column's type
    # would then see a value it would have refused or read differently
    floats: bool = True
    ints: bool = True

    @classmethod
    def of(cls, names: Sequence[str], types: Sequence[str]) -> InputSchema:
        return cls(
            tuple(names),
            tuple(types),
            pd.Index(list(names), dtype=object),
            floats=all(t in _FLOAT_TYPES for t in types),
            ints=all(t in _NUMBER_TYPES for t in types),
        )

    def index_for(self, names: Sequence[str]) -> pd.Index | Sequence[str]:
        """The cached Index when ``names`` are the signature's, else ``names``."""
        return self.index if tuple(names) == self.names else names


class ProtocolError(Exception):
    """A request the protocol does not accept: ``status`` (400 or 415) and a message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Invocation:
    """A parsed ``/invocations`` body: the ``frame`` to predict and the ``params`` (or
    None)."""

    frame: pd.DataFrame
    params: dict[str, Any] | None


def parse_invocation(
    body: bytes, content_type: str | None, schema: InputSchema | None
) -> Invocation:
    """Parse an ``/invocations`` body of ``content_type``. ``schema`` is the signature's
    inputs (it names rows given as lists), or None. Raises ProtocolError (400 malformed or
    without rows, 415 unsupported content type)."""
    mime, _, rest = (content_type or "").partition(";")
    mime = mime.strip().lower()
    if rest:
        for item in rest.split(";"):
            key, _, value = item.strip().partition("=")
            if key.strip().lower() != "charset":
                raise ProtocolError(f"Unrecognized content type parameters: {key.strip()}", 415)
            if value.strip().strip('"').lower() not in ("utf-8", "utf8"):
                raise ProtocolError("The scoring server only supports UTF-8", 415)
    if mime == "application/json":
        parsed = _parse_json(body, schema)
    elif mime == "text/csv":
        parsed = _parse_csv(body)
    elif mime == PARQUET:
        parsed = _parse_parquet(body)
    else:
        raise ProtocolError(
            "This predictor only supports the following content types: "
            f"{list(CONTENT_TYPES)}. Got '{content_type or ''}'.",
            415,
        )
    if not len(parsed.frame):
        # a model cannot answer zero rows (scikit-learn raises): the request's mistake
        raise ProtocolError("the request has no rows to predict: send at least one")
    return parsed


def _parse_json(body: bytes, schema: InputSchema | None) -> Invocation:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(
            f"Ensure that input is a valid JSON formatted string. Error: {exc}"
        ) from None
    if not isinstance(doc, dict):
        raise ProtocolError(f"{REQUIRED}. Received {type(doc).__name__}.")
    found = [key for key in FORMATS if key in doc]
    if len(found) != 1:
        raise ProtocolError(f"{REQUIRED}. Received dictionary with input fields: {list(doc)}.")
    params = doc.get("params")
    if params is not None and not isinstance(params, dict):
        raise ProtocolError("'params' must be a JSON object of parameter name to value")
    key = found[0]
    value = doc[key]
    if key == "dataframe_split":
        if not isinstance(value, dict) or not isinstance(value.get("data"), list):
            raise ProtocolError(
                "'dataframe_split' must be an object with 'data' (a list of rows) and "
                "optionally 'columns' (a list of names)"
            )
        names = value.get("columns")
        if names is not None and not (
            isinstance(names, list) and all(isinstance(n, str) for n in names)
        ):
            raise ProtocolError("'dataframe_split.columns' must be a list of strings")
        return _rows(value["data"], names, schema, params)
    if key == "inputs" and isinstance(value, dict):
        return _columnar(value, params)
    if not isinstance(value, list):
        raise ProtocolError(f"'{key}' must be a list of rows")
    if value and isinstance(value[0], dict):
        return _records(value, schema, params)
    return _rows(value, None, schema, params)


def _records(
    records: list[Any], schema: InputSchema | None, params: dict[str, Any] | None
) -> Invocation:
    names = list(records[0])
    same = True
    for rec in records:
        if not isinstance(rec, dict):
            raise ProtocolError("every record must be a JSON object of column name to value")
        if same and list(rec) != names:
            same = False
    if same:
        rows = [list(rec.values()) for rec in records]
        return _rows(rows, names, schema, params)
    try:
        frame = pd.DataFrame.from_records(records)
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"cannot read the records as a table: {exc}") from exc
    return Invocation(frame, params)


def _columnar(value: dict[str, Any], params: dict[str, Any] | None) -> Invocation:
    try:
        arrays = {str(k): v if isinstance(v, list) else [v] for k, v in value.items()}
        frame = pd.DataFrame(arrays)
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"'inputs' columns must be lists of one length: {exc}") from exc
    return Invocation(frame, params)


def _rows(
    rows: list[Any],
    names: list[str] | None,
    schema: InputSchema | None,
    params: dict[str, Any] | None,
) -> Invocation:
    return Invocation(frame_from_rows(rows, names, schema), params)


def frame_from_rows(
    rows: list[Any], names: Sequence[str] | None, schema: InputSchema | None
) -> pd.DataFrame:
    """A DataFrame from a list of rows (lists) or of scalars (one column). ``names`` are
    the given column names; without them, rows take the signature's names (the width must
    match) or positions 0..k-1. Rows of numbers become one 2-D numpy array, and the frame a
    view of it, when the signature's types allow it. Raises ProtocolError."""
    if rows and not isinstance(rows[0], list):
        rows = [[v] for v in rows]
    width = len(rows[0]) if rows else len(names or (schema.names if schema else ()))
    if names is None:
        if schema is not None and len(schema.names) == width:
            names = schema.names
        elif schema is not None:
            raise ProtocolError(
                f"rows have {width} value(s) but the model's signature has "
                f"{len(schema.names)} column(s): {', '.join(schema.names[:8])}"
                f"{', ...' if len(schema.names) > 8 else ''}; send one value per column, in "
                "this order, or name the columns"
            )
    elif len(names) != width and rows:
        raise ProtocolError(f"{len(names)} column name(s) but rows of {width} value(s)")
    fast = _numeric(rows, schema)
    if names is None:
        columns: Any = range(width)
    else:
        columns = schema.index_for(names) if schema is not None else list(names)
    if fast is not None:
        return pd.DataFrame(fast, columns=columns, copy=False)
    for i, row in enumerate(rows):  # pandas would pad a short row with NaN
        if not isinstance(row, list) or len(row) != width:
            got = f"{len(row)} value(s)" if isinstance(row, list) else "not a list"
            raise ProtocolError(f"row {i} has {got}; every row needs {width}")
    try:
        return pd.DataFrame(rows, columns=columns)
    except (TypeError, ValueError, AssertionError) as exc:
        raise ProtocolError(f"cannot read the rows as a table: {exc}") from exc


def _numeric(rows: list[Any], schema: InputSchema | None) -> np.ndarray | None:
    """``rows`` as one 2-D int or float array when that loses nothing, else None."""
    if not rows:
        return None
    try:
        arr = np.array(rows)
    except (ValueError, TypeError):
        return None
    if arr.ndim != 2:
        return None
    kind = arr.dtype.kind
    if kind in "iu":
        ok = schema is None or schema.ints
    elif kind == "f":
        ok = schema is None or schema.floats
    else:
        ok = False
    return arr if ok else None


def _parse_csv(body: bytes) -> Invocation:
    try:
        frame = pd.read_csv(io.BytesIO(body))
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise ProtocolError(
            "Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid "
            f"CSV-formatted Pandas DataFrame produced using DataFrame.to_csv(). Error: '{exc}'"
        ) from exc
    return Invocation(frame, None)


def _parse_parquet(body: bytes) -> Invocation:
    try:
        frame = pd.read_parquet(io.BytesIO(body))
    except Exception as exc:  # noqa: BLE001  (pyarrow raises ArrowInvalid, OSError, ...)
        raise ProtocolError(
            "Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid "
            "Parquet Pandas DataFrame produced using the `pandas.DataFrame.to_parquet()` "
            f"method. Error: '{exc}'"
        ) from exc
    return Invocation(frame, None)


def to_jsonable(outputs: Any) -> Any:
    """Predictions as MLflow returns them: an array as (nested) lists, a DataFrame as
    records, a Series as a list, a dict with each value converted."""
    if isinstance(outputs, np.ndarray):
        return outputs
    if isinstance(outputs, pd.DataFrame):
        return outputs.to_dict(orient="records")
    if isinstance(outputs, pd.Series):
        return outputs.to_numpy()
    if isinstance(outputs, dict):
        return {str(k): to_jsonable(v) for k, v in outputs.items()}
    return outputs


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, pd.DataFrame | pd.Series):
        return to_jsonable(obj)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def dumps(obj: Any) -> bytes:
    """JSON bytes; numpy arrays are written by orjson directly (no ``tolist``)."""
    return orjson.dumps(obj, default=_default, option=orjson.OPT_SERIALIZE_NUMPY)


def predictions_body(outputs: Any) -> bytes:
    """The response body ``{"predictions": ...}``."""
    return dumps({"predictions": to_jsonable(outputs)})
