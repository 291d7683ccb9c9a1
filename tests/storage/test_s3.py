"""What the S3 backend adds to the conformance suite: URLs, configuration, errors, paging.

Runs against the session's moto server (tests/conftest.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from urllib.parse import urlparse

import pytest

from cairn.storage import ObjectNotFound, StorageError, open_object_store
from cairn.storage.s3 import S3ObjectStore


def _secret() -> str:
    return os.environ["AWS_SECRET_ACCESS_KEY"]  # the dummy one tests/conftest.py's s3_env sets


def _bucket(url: str) -> str:
    return urlparse(url).netloc


def test_an_s3_url_opens_an_s3_store(make_s3_url: Callable[[], str]) -> None:
    url = make_s3_url()

    store = open_object_store(url)

    assert isinstance(store, S3ObjectStore)
    assert store.bucket == _bucket(url)
    assert store.prefix == "store"


def test_an_s3_store_reopens_from_its_own_url(make_s3_url: Callable[[], str]) -> None:
    store = open_object_store(make_s3_url())
    store.put("k/v", b"kept")

    assert open_object_store(store.url).get("k/v") == b"kept"


def test_objects_live_below_the_prefix(make_s3_url: Callable[[], str], s3_server) -> None:
    store = open_object_store(make_s3_url())
    store.put("chunks/ab/abc", b"x")

    listed = s3_server.client.list_objects_v2(Bucket=store.bucket)["Contents"]
    assert [o["Key"] for o in listed] == ["store/chunks/ab/abc"]


def test_stores_under_two_prefixes_of_one_bucket_are_apart(
    make_s3_url: Callable[[], str],
) -> None:
    url = make_s3_url()
    first = open_object_store(url)
    second = open_object_store(url.replace("/store?", "/other/deeper?"))
    first.put("k", b"first")

    assert not second.exists("k")
    assert list(second.list()) == []
    assert list(first.list()) == ["k"]


def test_list_streams_page_by_page(make_s3_url: Callable[[], str]) -> None:
    store = open_object_store(make_s3_url())
    keys = {f"chunks/{i:02x}/{i:06d}" for i in range(7)}
    for key in keys:
        store.put(key, b"")
    requests: list[dict] = []

    def small_pages(params: dict, **_: object) -> None:  # S3 pages hold 1000 keys; use 3
        params["MaxKeys"] = 3
        requests.append(params)

    store._s3.meta.events.register("before-parameter-build.s3.ListObjectsV2", small_pages)
    listing = store.list("chunks/")

    first = next(listing)
    assert len(requests) == 1  # one page asked for, not the whole listing
    assert {first, *listing} == keys
    assert len(requests) == 3


def test_the_endpoint_may_come_from_aws_endpoint_url_s3(
    make_s3_url: Callable[[], str], s3_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = _bucket(make_s3_url())
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.endpoint)

    store = open_object_store(f"s3://{bucket}")
    store.put("k", b"v")

    assert store.prefix == ""
    assert store.get("k") == b"v"


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix", "s3://bad bucket/p", "s3://b/a/../c"])
def test_a_malformed_s3_url_raises_storage_error(url: str, s3_env: None) -> None:
    with pytest.raises(StorageError):
        open_object_store(url)


def test_an_unknown_s3_url_parameter_raises_storage_error(s3_env: None) -> None:
    with pytest.raises(StorageError):
        open_object_store("s3://bucket/p?endpoint=http://127.0.0.1:1")


def test_credentials_in_an_s3_url_are_refused_and_not_repeated(s3_env: None) -> None:
    with pytest.raises(StorageError) as info:
        open_object_store("s3://AKIAEXAMPLE:pa55-w0rd-secret@bucket/p")

    assert "pa55-w0rd-secret" not in str(info.value)


def test_a_missing_bucket_raises_storage_error(s3_server, s3_env: None) -> None:
    with pytest.raises(StorageError) as info:
        open_object_store(f"s3://no-such-bucket-here/p?endpoint_url={s3_server.endpoint}")

    assert not isinstance(info.value, ObjectNotFound)


def test_an_unreachable_endpoint_raises_storage_error_without_the_secret(s3_env: None) -> None:
    url = "s3://bucket/p?endpoint_url=http://127.0.0.1:9"  # the discard port: refused
    started = time.monotonic()

    with pytest.raises(StorageError) as info:
        open_object_store(url)

    assert _secret() not in str(info.value)
    assert "\n" not in str(info.value)
    assert time.monotonic() - started < 30


def test_errors_of_a_running_store_do_not_show_the_secret(
    make_s3_url: Callable[[], str], s3_server
) -> None:
    store = open_object_store(make_s3_url())
    s3_server.client.delete_bucket(Bucket=store.bucket)

    for call in (lambda: store.put("k", b"v"), lambda: list(store.list())):
        with pytest.raises(StorageError) as info:
            call()
        assert _secret() not in str(info.value)
        assert store.bucket in str(info.value)


def test_get_of_a_deleted_key_raises_object_not_found(make_s3_url: Callable[[], str]) -> None:
    store = open_object_store(make_s3_url())
    store.put("k", b"v")
    store.delete("k")

    with pytest.raises(ObjectNotFound):
        store.get("k")
    with pytest.raises(ObjectNotFound):
        store.get_range("k", 0, 0)
