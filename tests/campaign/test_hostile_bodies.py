"""Hostile request bodies, fuzzed with hypothesis, against a real ``cairn serve`` (the
server tests' fixtures: scikit-learn models in a store, the server in a subprocess):
random JSON, wrong types, huge shapes, deep nesting, invalid UTF-8. Target: no 5xx, the
server stays up. Slow and oversized bodies: tests/server/test_limits.py."""

from __future__ import annotations

import time

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.server.conftest import Server, cancer, models, start_server  # noqa: F401

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PATHS = ["/invocations", "/v2/models/cancer/infer", "/v2/models/cancer/versions/1/infer"]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.text(max_size=20),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=40,
)
KEYS = [
    "dataframe_split",
    "dataframe_records",
    "instances",
    "inputs",
    "params",
    "columns",
    "data",
    "name",
    "shape",
    "datatype",
    "parameters",
    "outputs",
    "index",
]
SHAPED = st.fixed_dictionaries(
    {},
    optional={k: JSON for k in KEYS}
    | {
        "inputs": st.lists(
            st.fixed_dictionaries(
                {
                    "name": st.text(max_size=5),
                    "shape": st.lists(st.integers(min_value=-3, max_value=2**62), max_size=4),
                    "datatype": st.sampled_from(["FP64", "FP32", "INT64", "BYTES", "BOOL", "X"]),
                    "data": JSON,
                }
            ),
            max_size=3,
        ),
        "dataframe_split": st.fixed_dictionaries(
            {"columns": st.lists(st.text(max_size=8), max_size=31), "data": JSON}
        ),
    },
)


def deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


RAW = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [
            b"\xff\xfe\xfd",
            b'{"instances": [[123456789012345678901234567890, 1e999]]}',
            b'{"inputs": "\xc3\x28"}',
            b'{"dataframe_split": {"columns": ["\xed\xa0\x80"], "data": [[1]]}}',
            deep(100_000),
            b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
            b'{"instances": [' + b"1," * 200_000 + b"1]}",
            b'{"inputs": [{"name": "x", "shape": [100000000, 100000000], "datatype": "FP64", '
            b'"data": [1]}]}',
        ]
    ),
)


@FUZZ
@given(
    body=st.one_of(JSON.map(orjson.dumps), SHAPED.map(orjson.dumps), RAW),
    path=st.sampled_from(PATHS),
    content_type=st.sampled_from(["application/json", "text/csv", "application/octet-stream"]),
)
def test_no_body_makes_a_5xx_or_stops_the_server(
    cancer: Server,  # noqa: F811
    body: bytes,
    path: str,
    content_type: str,
) -> None:
    t0 = time.monotonic()
    answer = cancer.http.post(
        path, content=body, headers={"content-type": content_type}, timeout=120
    )
    took = time.monotonic() - t0
    if took > 5:
        print(f"slow: {took:.1f}s {path} {content_type} {body[:80]!r} ({len(body)} bytes)")
    assert answer.status_code < 500, (path, body[:200], answer.status_code, answer.text[:300])
    assert "Traceback" not in answer.text


def test_the_server_is_up_after_the_fuzzing(cancer: Server) -> None:  # noqa: F811
    assert cancer.proc.poll() is None
    assert cancer.http.get("/ping").status_code == 200
