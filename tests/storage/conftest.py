"""Fixtures of the storage layer: every object store backend, and chunk stores over them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cairn.storage import (
    ChunkStore,
    LocalObjectStore,
    MemoryObjectStore,
    ObjectStore,
    open_object_store,
)
from cairn.storage.s3 import S3ObjectStore

BACKENDS = ["local", "memory", "s3"]


def overwrite_object(store: ObjectStore, key: str, data: bytes) -> None:
    """Replace an object's bytes behind the store's back, as disk rot or a bad copy would."""
    if isinstance(store, MemoryObjectStore):
        store._objects[key] = data
    elif isinstance(store, LocalObjectStore):
        (store.root / key).write_bytes(data)
    elif isinstance(store, S3ObjectStore):
        store._s3.put_object(Bucket=store.bucket, Key=store._base + key, Body=data)
    else:
        raise TypeError(f"cannot tamper with {type(store).__name__}")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_object_store(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> Callable[[], ObjectStore]:
    """A factory of empty object stores of the parametrized backend (s3: a fresh bucket
    on the session's moto server, see tests/conftest.py)."""
    made = 0
    make_s3_url = request.getfixturevalue("make_s3_url") if backend == "s3" else None

    def make() -> ObjectStore:
        nonlocal made
        made += 1
        if backend == "local":
            return LocalObjectStore(tmp_path / f"objects-{made}", fsync=False)
        if make_s3_url is not None:
            return open_object_store(make_s3_url())
        return MemoryObjectStore()

    return make


@pytest.fixture
def object_store(make_object_store: Callable[[], ObjectStore]) -> ObjectStore:
    return make_object_store()


@pytest.fixture
def make_chunk_store(make_object_store: Callable[[], ObjectStore]) -> Callable[..., ChunkStore]:
    """A factory of chunk stores, each over a fresh object store of the parametrized backend."""

    def make(*, avg_size: int = 256) -> ChunkStore:
        return ChunkStore(make_object_store(), avg_size=avg_size)

    return make


@pytest.fixture
def chunk_store(make_chunk_store: Callable[..., ChunkStore]) -> ChunkStore:
    return make_chunk_store()
