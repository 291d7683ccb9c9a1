"""The readers data scientists use, pointed at ``cairn://``: pandas (CSV, Parquet),
pyarrow datasets over partitioned folders, DuckDB through its fsspec registration; on
real data (scikit-learn's bundled iris and digits), at a branch and at an old commit."""

from __future__ import annotations

import pandas as pd
import pyarrow.dataset as ds
import pytest
from sklearn.datasets import load_digits, load_iris

from cairn.api.protocol import ClientProtocol
from cairn.fs import CairnFileSystem


@pytest.fixture(scope="module")
def iris() -> pd.DataFrame:
    return load_iris(as_frame=True).frame


@pytest.fixture(scope="module")
def digits() -> pd.DataFrame:
    frame = load_digits(as_frame=True).frame
    frame.columns = [str(c) for c in frame.columns]
    return frame


def test_pandas_csv_round_trip_at_a_branch_and_at_an_old_commit(
    fs: CairnFileSystem, client: ClientProtocol, iris: pd.DataFrame
) -> None:
    url = "cairn://training@master/iris.csv"
    iris.to_csv(url, index=False, storage_options={"client": fs.client})
    first = client.commits.get("training@master").id
    iris.head(10).to_csv(url, index=False, storage_options={"client": fs.client})

    now = pd.read_csv(url, storage_options={"client": fs.client})
    then = pd.read_csv(f"cairn://training@{first}/iris.csv", storage_options={"client": fs.client})
    back = pd.read_csv("cairn://training@master^/iris.csv", storage_options={"client": fs.client})
    pd.testing.assert_frame_equal(now, iris.head(10))
    pd.testing.assert_frame_equal(then, iris)
    pd.testing.assert_frame_equal(back, iris)


def test_pandas_parquet_round_trip(fs: CairnFileSystem, digits: pd.DataFrame) -> None:
    url = "cairn://training@master/digits.parquet"
    digits.to_parquet(url, storage_options={"client": fs.client})
    pd.testing.assert_frame_equal(
        pd.read_parquet(url, storage_options={"client": fs.client}), digits
    )
    # A projection reads the footer and one column's pages, not the whole file.
    only = pd.read_parquet(url, columns=["target"], storage_options={"client": fs.client})
    pd.testing.assert_series_equal(only["target"], digits["target"])


def test_pyarrow_dataset_over_partitioned_folders(fs: CairnFileSystem, iris: pd.DataFrame) -> None:
    table = iris.assign(species=iris["target"].map({0: "setosa", 1: "versicolor", 2: "virginica"}))
    with fs.transaction:  # every partition's file in one commit
        for species, part in table.groupby("species"):
            with fs.open(f"training@master/iris/species={species}/part-0.parquet", "wb") as f:
                part.drop(columns="species").to_parquet(f, index=False)
    assert len(fs.client.commits.list("training@master")) == 1

    dataset = ds.dataset(
        "training@master/iris", filesystem=fs, format="parquet", partitioning="hive"
    )
    assert sorted(dataset.files) == [
        f"training@master/iris/species={s}/part-0.parquet"
        for s in ("setosa", "versicolor", "virginica")
    ]
    got = dataset.to_table(filter=ds.field("species") == "virginica").to_pandas()
    want = table[table["species"] == "virginica"].drop(columns="species")
    assert len(got) == len(want) == 50
    pd.testing.assert_frame_equal(
        got.drop(columns="species").reset_index(drop=True), want.reset_index(drop=True)
    )


def test_duckdb_reads_through_fsspec(fs: CairnFileSystem, iris: pd.DataFrame) -> None:
    duckdb = pytest.importorskip("duckdb")
    with fs.open("training@master/iris.csv", "wb") as f:
        iris.to_csv(f, index=False)
    with fs.open("training@master/iris.parquet", "wb") as f:
        iris.to_parquet(f, index=False)
    con = duckdb.connect()
    con.register_filesystem(fs)
    rows = con.execute(
        "SELECT target, count(*) FROM read_csv('cairn://training@master/iris.csv')"
        " GROUP BY target ORDER BY target"
    ).fetchall()
    assert rows == [(0, 50), (1, 50), (2, 50)]
    [(mean,)] = con.execute(
        "SELECT avg(\"petal length (cm)\") FROM 'cairn://training@master/iris.parquet'"
    ).fetchall()
    assert mean == pytest.approx(iris["petal length (cm)"].mean())
