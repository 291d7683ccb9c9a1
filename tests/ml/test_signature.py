"""Signatures: inferred from real scikit-learn models, normalized from MLflow's JSON, and
enforced on request frames with errors a client can act on."""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer, load_digits, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from cairn.ml import SignatureError
from cairn.ml.signature import columns, enforce, infer_signature, normalize


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, Pipeline]:
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return x, make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, LogisticRegression]:
    x, y = load_digits(return_X_y=True)
    return x, LogisticRegression(max_iter=300).fit(x[:400], y[:400])


def test_a_model_fitted_on_a_frame_has_its_named_columns(cancer):
    x, model = cancer
    sig = infer_signature(model)
    assert columns(sig) == list(x.columns)
    assert {c["type"] for c in sig["inputs"]} == {"double"}
    assert sig["outputs"] == [{"name": "prediction", "type": "long"}]
    assert not sig.get("positional")


def test_a_model_fitted_on_an_array_has_positional_columns(digits):
    _, model = digits
    sig = infer_signature(model)
    assert sig["positional"] is True
    assert columns(sig) == [str(i) for i in range(64)]


def test_a_regressor_predicts_doubles():
    x, y = load_iris(return_X_y=True, as_frame=True)
    sig = infer_signature(LinearRegression().fit(x, y.astype(float)))
    assert sig["outputs"] == [{"name": "prediction", "type": "double"}]


def test_a_sample_gives_types_and_outputs(cancer):
    x, model = cancer
    sig = infer_signature(model, x.head(10))
    assert columns(sig) == list(x.columns)
    assert sig["outputs"] == [{"name": "prediction", "type": "long"}]
    sample = x.head(10).assign(count=np.arange(10, dtype=np.int32), label="a")
    sig = infer_signature(object(), sample)
    types = {c["name"]: c["type"] for c in sig["inputs"]}
    assert types["mean radius"] == "double"
    assert types["count"] == "integer"
    assert types["label"] == "string"
    assert sig["outputs"] is None


def test_nothing_to_infer_from_a_plain_object():
    assert infer_signature(object()) is None


def test_mlflow_json_with_unnamed_columns_is_positional():
    sig = normalize({"inputs": '[{"type": "double"}, {"type": "long"}]'})
    assert sig == {
        "inputs": [{"name": "0", "type": "double"}, {"name": "1", "type": "long"}],
        "outputs": None,
        "positional": True,
    }
    assert normalize({"inputs": [{"type": "tensor", "tensor-spec": {}}]}) is None


@pytest.mark.parametrize(
    "bad",
    [
        "not json",
        {"outputs": []},
        {"inputs": []},
        {"inputs": [{"name": "a"}]},
        {"inputs": [{"name": "a", "type": "decimal"}]},
        {"inputs": [{"name": "a", "type": "double"}, {"type": "double"}]},
        {"inputs": [{"name": "a", "type": "double"}, {"name": "a", "type": "long"}]},
    ],
)
def test_malformed_signatures_are_refused(bad):
    with pytest.raises(SignatureError):
        normalize(bad)


def test_enforce_orders_and_converts_named_columns(cancer):
    x, model = cancer
    sig = infer_signature(model)
    shuffled = x.head(5)[list(reversed(x.columns))]
    out = enforce(sig, shuffled)
    assert list(out.columns) == list(x.columns)
    assert (out.dtypes == np.float64).all()
    np.testing.assert_array_equal(model.predict(out), model.predict(x.head(5)))


def test_a_missing_column_is_named(cancer):
    sig = infer_signature(cancer[1])
    with pytest.raises(SignatureError, match="missing column.*'mean radius'"):
        enforce(sig, cancer[0].head(3).drop(columns="mean radius"))


def test_an_unknown_column_is_dropped_as_mlflow_does_and_named_when_strict(cancer):
    sig = infer_signature(cancer[1])
    out = enforce(sig, cancer[0].head(3).assign(extra=1.0))
    assert list(out.columns) == list(cancer[0].columns)
    with pytest.raises(SignatureError, match="unknown column.*'extra'") as caught:
        enforce(sig, cancer[0].head(3).assign(extra=1.0), strict=True)
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"


def test_a_missing_column_is_invalid_parameter_value(cancer):
    sig = infer_signature(cancer[1])
    with pytest.raises(SignatureError) as caught:
        enforce(sig, cancer[0].head(3).drop(columns=["mean area"]))
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"


def test_a_value_of_the_wrong_type_names_column_and_row(cancer):
    frame = cancer[0].head(3).astype(object)
    frame.loc[frame.index[2], "mean area"] = "big"
    with pytest.raises(SignatureError, match="'mean area'.*row 2.*'big'") as caught:
        enforce(infer_signature(cancer[1]), frame)
    assert caught.value.error_code == "BAD_REQUEST"  # MLflow's code for a failed cast


def test_positional_width_is_checked(digits):
    sig = infer_signature(digits[1])
    with pytest.raises(SignatureError, match="64 input column"):
        enforce(sig, pd.DataFrame(digits[0][:2, :63]))
    out = enforce(sig, pd.DataFrame(digits[0][:2]))
    assert out.shape == (2, 64)


def test_unnamed_columns_match_a_named_signature_by_position(cancer):
    x, model = cancer
    sig = infer_signature(model)
    out = enforce(sig, pd.DataFrame(x.head(4).to_numpy()))
    assert list(out.columns) == list(x.columns)
    with pytest.raises(SignatureError, match="names no columns"):
        enforce(sig, pd.DataFrame(x.head(4).to_numpy()[:, :5]))


def test_integer_columns():
    sig = normalize({"inputs": [{"name": "n", "type": "integer"}]})
    assert enforce(sig, pd.DataFrame({"n": [1.0, 2.0]}))["n"].dtype == np.int32
    for bad in ([1.5, 2.0], [None, 1], [2**40, 1], [True, 1], ["3", 1]):
        with pytest.raises(SignatureError):
            enforce(sig, pd.DataFrame({"n": pd.Series(bad, dtype=object)}), strict=True)
    # MLflow's rules (its astype cast): numeric strings and booleans convert, fractions
    # truncate; nulls, huge numbers and other text still fail
    for sent, want in (([1.5, 2.0], [1, 2]), ([True, 1], [1, 1]), (["3", 1], [3, 1])):
        out = enforce(sig, pd.DataFrame({"n": pd.Series(sent, dtype=object)}))
        assert out["n"].tolist() == want and out["n"].dtype == np.int32
    for bad in ([None, 1], [2**40, 1], ["three", 1]):
        with pytest.raises(SignatureError):
            enforce(sig, pd.DataFrame({"n": pd.Series(bad, dtype=object)}))


def test_double_columns_take_numbers_and_nulls_only():
    sig = normalize({"inputs": [{"name": "x", "type": "double"}]})
    out = enforce(sig, pd.DataFrame({"x": pd.Series([1, None, 2.5], dtype=object)}))
    assert out["x"].isna().tolist() == [False, True, False]
    for bad in (["1.5"], [True], [[1.0]]):
        with pytest.raises(SignatureError):
            enforce(sig, pd.DataFrame({"x": pd.Series(bad, dtype=object)}), strict=True)
    out = enforce(sig, pd.DataFrame({"x": pd.Series(["1.5", True, None], dtype=object)}))
    assert out["x"].tolist()[:2] == [1.5, 1.0] and np.isnan(out["x"].iloc[2])
    for bad in (["x"], [[1.0]]):
        with pytest.raises(SignatureError):
            enforce(sig, pd.DataFrame({"x": pd.Series(bad, dtype=object)}))


@pytest.mark.parametrize(
    "column",
    [
        pd.Series([1.0, 1e308]),  # the one-array path
        pd.Series([1.0, 1e308], dtype=object),  # the column-by-column path
        pd.Series([None, -1e39], dtype=object),
    ],
)
def test_float_columns_refuse_values_beyond_32_bits(column):
    # before: 1e308 became inf in the float32 column and the model raised (a 500)
    sig = normalize({"inputs": [{"name": "x", "type": "float"}, {"name": "y", "type": "float"}]})
    with pytest.raises(SignatureError, match="row 1"):
        enforce(sig, pd.DataFrame({"x": column, "y": [0.5, 0.5]}))
    wide = normalize({"inputs": [{"name": "x", "type": "double"}, {"name": "y", "type": "float"}]})
    out = enforce(wide, pd.DataFrame({"x": column, "y": [0.5, 0.5]}))
    assert out["x"].iloc[1] == column.iloc[1]
    ok = enforce(sig, pd.DataFrame({"x": [1.0, 3e38], "y": [np.inf, np.nan]}))
    assert ok["x"].dtype == np.float32 and np.isinf(ok["y"].iloc[0])  # inf is not an overflow


def test_boolean_string_binary_datetime_columns():
    sig = normalize(
        {
            "inputs": [
                {"name": "b", "type": "boolean"},
                {"name": "s", "type": "string"},
                {"name": "raw", "type": "binary"},
                {"name": "t", "type": "datetime"},
                {"name": "opt", "type": "double", "required": False},
            ]
        }
    )
    frame = pd.DataFrame(
        {
            "b": [True, False],
            "s": ["x", None],
            "raw": [b"\x00\x01", base64.b64encode(b"hi").decode()],
            "t": ["2024-01-01", "2024-06-30T12:00:00"],
        }
    )
    out = enforce(sig, frame)
    assert out["raw"].tolist() == [b"\x00\x01", b"hi"]
    assert out["t"].dt.month.tolist() == [1, 6]
    assert out["opt"].isna().all()
    with pytest.raises(SignatureError):
        enforce(sig, frame.assign(b=[1, 0]))
    with pytest.raises(SignatureError):
        enforce(sig, frame.assign(s=[1, "x"]))
    with pytest.raises(SignatureError):
        enforce(sig, frame.assign(raw=["not base64!", b""]))
    with pytest.raises(SignatureError):
        enforce(sig, frame.assign(t=["yesterday", "2024-01-01"]))


def test_no_signature_leaves_the_frame_alone():
    frame = pd.DataFrame({"anything": ["goes"]})
    assert enforce(None, frame) is frame


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(
            st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=3, max_size=3
        ),
        min_size=1,
        max_size=20,
    )
)
def test_a_frame_passes_its_own_inferred_signature_unchanged(rows):
    frame = pd.DataFrame(rows, columns=["a", "b", "c"])
    sig = infer_signature(object(), frame)
    pd.testing.assert_frame_equal(enforce(sig, frame[["c", "a", "b"]]), frame)
