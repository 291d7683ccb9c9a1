"""Fixtures of the data layer: DataStores over a SQLite file catalog and each object store."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cairn.catalog import Catalog, open_catalog
from cairn.data import DataStore
from cairn.storage import ChunkStore, LocalObjectStore, MemoryObjectStore


@pytest.fixture(params=["local", "memory"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_store(tmp_path: Path, backend: str) -> Iterator[Callable[..., DataStore]]:
    """A factory of empty DataStores, each with its own catalog file and object store.

    The catalog is a file, not ``sqlite://``: an in-memory SQLite database is private to
    one connection, and the store's threads use several.
    """
    catalogs: list[Catalog] = []
    counter = itertools.count()

    def make(*, avg_size: int = 256) -> DataStore:
        root = tmp_path / f"store-{next(counter)}"
        root.mkdir()
        catalog = open_catalog(f"sqlite:///{root}/catalog.db")
        catalogs.append(catalog)
        objects = (
            LocalObjectStore(root / "objects", fsync=False)
            if backend == "local"
            else MemoryObjectStore()
        )
        return DataStore(catalog, ChunkStore(objects, avg_size=avg_size))

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
