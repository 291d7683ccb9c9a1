"""Fixtures of the data layer: DataStores over each (object store, catalog) pair.

``local`` and ``memory`` pair those object stores with a SQLite file catalog;
``s3+postgresql`` is the at-scale pair, on the session's moto and PostgreSQL servers
(tests/conftest.py), with a fresh bucket and database per store.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cairn.catalog import Catalog, CatalogChunkIndex, open_catalog
from cairn.data import DataStore
from cairn.storage import (
    ChunkStore,
    LocalObjectStore,
    MemoryObjectStore,
    ObjectStore,
    open_object_store,
)


@pytest.fixture(params=["local", "memory", "s3+postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_store(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> Iterator[Callable[..., DataStore]]:
    """A factory of empty DataStores, each with its own catalog and object store.

    A SQLite catalog is a file, not ``sqlite://``: an in-memory SQLite database is
    private to one connection, and the store's threads use several.
    """
    catalogs: list[Catalog] = []
    counter = itertools.count()
    at_scale = backend == "s3+postgresql"
    make_s3_url = request.getfixturevalue("make_s3_url") if at_scale else None
    make_postgres_url = request.getfixturevalue("make_postgres_url") if at_scale else None

    def make(*, avg_size: int = 256) -> DataStore:
        root = tmp_path / f"store-{next(counter)}"
        root.mkdir()
        objects: ObjectStore
        if make_s3_url is not None and make_postgres_url is not None:
            catalog = open_catalog(make_postgres_url())
            objects = open_object_store(make_s3_url())
        else:
            catalog = open_catalog(f"sqlite:///{root}/catalog.db")
            objects = (
                LocalObjectStore(root / "objects", fsync=False)
                if backend == "local"
                else MemoryObjectStore()
            )
        catalogs.append(catalog)
        # The catalog's chunk index, as Client.open builds it, so every pair runs it.
        chunks = ChunkStore(objects, avg_size=avg_size, index=CatalogChunkIndex(catalog))
        return DataStore(catalog, chunks)

    yield make
    for catalog in catalogs:
        catalog.dispose()


@pytest.fixture
def store(make_store: Callable[..., DataStore]) -> DataStore:
    return make_store()


@pytest.fixture
def make_repo(store: DataStore) -> Callable[..., str]:
    """A factory of fresh repos in ``store``; returns the repo's name."""
    counter = itertools.count()

    def make(name: str | None = None, **kwargs: object) -> str:
        name = name or f"repo-{next(counter)}"
        store.create_repo(name, **kwargs)
        return name

    return make


@pytest.fixture
def repo(make_repo: Callable[..., str]) -> str:
    return make_repo("images")
