"""s3fs (fsspec's S3 filesystem, on aiobotocore) and pandas' ``s3://`` through it, pointed
at the gateway: reads at a branch and at an old commit, listings, and writes that commit
(one small put, one multipart upload)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
import s3fs
from tests.gateway.conftest import gateway

from cairn.api.protocol import ClientProtocol

MIB = 1 << 20


@pytest.fixture
def endpoint(client: ClientProtocol) -> Iterator[str]:
    """The URL of a gateway over ``client`` (embedded and remote)."""
    with gateway(client) as url:
        yield url


def _options(url: str) -> dict[str, Any]:
    return {"key": "any", "secret": "any", "client_kwargs": {"endpoint_url": url}}


def _fs(url: str) -> s3fs.S3FileSystem:
    # A fresh instance per gateway: fsspec caches filesystems by their arguments.
    return s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False, **_options(url))


def test_pandas_reads_a_csv_at_a_branch_and_at_an_old_commit(
    endpoint: str, client: ClientProtocol
) -> None:
    old = client.files.put("training@master:/x.csv", b"a,b\n1,2\n")
    client.files.put("training@master:/x.csv", b"a,b\n1,2\n3,4\n")
    options = _options(endpoint)
    now = pd.read_csv("s3://training/master/x.csv", storage_options=options)
    before = pd.read_csv(f"s3://training/{old.id}/x.csv", storage_options=options)
    assert now.to_dict("list") == {"a": [1, 3], "b": [2, 4]}
    assert before.to_dict("list") == {"a": [1], "b": [2]}


def test_pandas_writes_a_csv_as_one_commit(endpoint: str, client: ClientProtocol) -> None:
    client.files.put("training@master:/seed.txt", b"s")
    frame = pd.DataFrame({"x": [1, 2, 3], "y": ["p", "q", "r"]})
    frame.to_csv("s3://training/master/out.csv", index=False, storage_options=_options(endpoint))
    assert client.files.read("training@master:/out.csv") == b"x,y\n1,p\n2,q\n3,r\n"
    assert len(client.commits.list("training@master")) == 2


def test_s3fs_lists_reads_ranges_and_misses(endpoint: str, client: ClientProtocol) -> None:
    client.files.put("training@master:/data/a.txt", b"0123456789")
    client.files.put("training@master:/data/b.txt", b"bb")
    fs = _fs(endpoint)
    assert fs.ls("training", detail=False) == ["training/master"]
    assert sorted(fs.ls("training/master/data", detail=False)) == [
        "training/master/data/a.txt",
        "training/master/data/b.txt",
    ]
    assert fs.find("training/master") == [
        "training/master/data/a.txt",
        "training/master/data/b.txt",
    ]
    assert fs.info("training/master/data/a.txt")["size"] == 10
    assert fs.cat_file("training/master/data/a.txt", start=2, end=5) == b"234"
    with fs.open("training/master/data/a.txt", "rb") as f:
        f.seek(7)
        assert f.read() == b"789"
    with pytest.raises(FileNotFoundError):
        fs.cat_file("training/master/data/missing.txt")


def test_s3fs_writes_small_and_multipart_files_one_commit_each(
    endpoint: str, client: ClientProtocol
) -> None:
    fs = _fs(endpoint)
    fs.pipe_file("training/master/small.bin", b"tiny")
    data = bytes(range(256)) * (11 * MIB // 256)
    # s3fs sends a file larger than its block size as a multipart upload of blocks
    with fs.open("training/master/big.bin", "wb", block_size=5 * MIB) as f:
        f.write(data)
    assert client.files.read("training@master:/small.bin") == b"tiny"
    assert client.files.read("training@master:/big.bin") == data
    assert len(client.commits.list("training@master")) == 2
    assert fs.cat_file("training/master/big.bin", start=MIB, end=MIB + 4) == data[MIB : MIB + 4]
