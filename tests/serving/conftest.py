"""Fixtures of the serving tests: a Client over a fresh store (pipelines do not run), and a
model ``digits`` with two registered scikit-learn versions trained on scikit-learn's
bundled handwritten digits (v1 a shallow tree, v2 Gaussian naive Bayes; both quick to
train, trained once per test session), ``champion``
on v1 and ``challenger`` on v2."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from cairn.client import Client


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.delenv("CAIRN_HOME", raising=False)
    c = Client(tmp_path / "home", auto_run=False)
    yield c
    c.data.catalog.dispose()


@dataclass(frozen=True)
class Digits:
    client: Client
    frame: pd.DataFrame  # held-out rows, columns pixel_0_0 .. pixel_7_7
    labels: list[int]


@pytest.fixture(scope="session")
def trained() -> tuple[bytes, bytes, pd.DataFrame, list[int]]:
    """The two models as .skops bytes, and the held-out rows and labels."""
    import skops.io
    from sklearn.datasets import load_digits
    from sklearn.naive_bayes import GaussianNB
    from sklearn.tree import DecisionTreeClassifier

    data = load_digits(as_frame=True)
    x, y = data.data, data.target
    train, test = slice(0, 1500), slice(1500, None)
    models = [DecisionTreeClassifier(max_depth=3, random_state=0), GaussianNB()]
    blobs = [bytes(skops.io.dumps(m.fit(x[train], y[train]))) for m in models]
    return blobs[0], blobs[1], x[test].reset_index(drop=True), [int(v) for v in y[test]]


@pytest.fixture
def digits(client: Client, trained: tuple[bytes, bytes, pd.DataFrame, list[int]]) -> Digits:
    v1, v2, frame, labels = trained
    client.create_repo("models")
    client.put_files(
        "models",
        "master",
        [("/v1/model.skops", io.BytesIO(v1)), ("/v2/model.skops", io.BytesIO(v2))],
    )
    registry = client.registry
    registry.register("digits", "models@master:/v1/model.skops")
    registry.register("digits", "models@master:/v2/model.skops")
    registry.set_alias("digits", "champion", 1)
    registry.set_alias("digits", "challenger", 2)
    return Digits(client, frame, labels)
