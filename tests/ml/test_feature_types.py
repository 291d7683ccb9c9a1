"""Models with real feature types: a scikit-learn pipeline whose ColumnTransformer one-hot
encodes string and boolean columns and scales numbers, on the Palmer penguins table that
the ``palmerpenguins`` package ships (344 rows, read offline), gets a typed signature from
its fitted state alone; a sample given at registration (MLflow's ``input_example``) types
integer and datetime columns too."""

from __future__ import annotations

import io

import pandas as pd
import pytest
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from cairn.ml.signature import enforce, example_json, infer_signature, load_example

NUMBERS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


def penguins() -> tuple[pd.DataFrame, pd.Series]:
    """The penguins table (rows without a sex or a measurement left out), plus ``heavy``,
    a boolean column; features and the species to predict."""
    from palmerpenguins import load_penguins

    table = load_penguins().dropna().reset_index(drop=True)
    table["heavy"] = table["body_mass_g"] > 4000
    return table.drop(columns=["species"]), table["species"]


def penguin_model(x: pd.DataFrame, y: pd.Series) -> Pipeline:
    """OneHotEncoder on the string and boolean columns, a scaler on the numbers; ``year``
    is left out (dropped by the ColumnTransformer)."""
    parts = ColumnTransformer(
        [
            ("categories", OneHotEncoder(handle_unknown="ignore"), ["island", "sex", "heavy"]),
            ("numbers", StandardScaler(), NUMBERS),
        ],
        remainder="drop",
    )
    return make_pipeline(parts, LogisticRegression(max_iter=1000)).fit(x, y)


@pytest.fixture(scope="module")
def fitted() -> tuple[pd.DataFrame, pd.Series, Pipeline]:
    x, y = penguins()
    return x, y, penguin_model(x, y)


def test_a_column_transformer_types_its_columns(fitted):
    # before: every column was typed double, so "Biscoe" was refused as not a number
    x, _, model = fitted
    sig = infer_signature(model)
    types = {c["name"]: c["type"] for c in sig["inputs"]}
    assert types == {
        "island": "string",
        "sex": "string",
        "heavy": "boolean",
        **{n: "double" for n in NUMBERS},
    }  # year: dropped by the ColumnTransformer, so not needed
    assert sig["outputs"] == [{"name": "prediction", "type": "string"}]
    rows = x.head(20).astype(object)  # as a JSON request gives them
    got = model.predict(enforce(sig, rows))
    assert got.tolist() == model.predict(x.head(20)).tolist()


def test_an_input_example_types_integer_and_datetime_columns(fitted, client, tmp_path):
    x, _, model = fitted
    sample = x.head(5).assign(seen=pd.to_datetime(["2024-05-01T10:00:00"] * 5))
    path = tmp_path / "example.csv"
    sample.to_csv(path, index=False)
    loaded = load_example(path)  # CSV: ISO 8601 text becomes datetime
    client.repos.create("models")
    commit = client.data.put_files(
        "models", "master", [("/penguins.skops", io.BytesIO(sio.dumps(model)))]
    )
    version = client.models.register(
        "penguins", f"models@{commit.id}:/penguins.skops", input_example=example_json(loaded)
    )
    types = {c["name"]: c["type"] for c in version.signature["inputs"]}
    assert types["year"] == "long" and types["seen"] == "datetime"
    assert types["island"] == "string" and types["heavy"] == "boolean"
    assert version.signature["outputs"] == [{"name": "prediction", "type": "string"}]
