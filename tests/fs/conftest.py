"""``cairn://`` over each client: ``fs`` runs once embedded and once over a real
``cairn server`` (tests/team_server.py), each on a fresh store with repo ``training``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import fsspec
import pytest

from cairn.api.protocol import ClientProtocol
from cairn.client import Client
from cairn.fs import CairnFileSystem


@contextmanager
def embedded(home: Path) -> Iterator[ClientProtocol]:
    client = Client(home, auto_run=False)
    try:
        yield client
    finally:
        client.data.catalog.dispose()


@contextmanager
def remote(home: Path) -> Iterator[ClientProtocol]:
    from tests.team_server import team_server

    from cairn.api.remote.client import RemoteClient

    with team_server(home, worker=False) as url, RemoteClient(url, auto_run=False) as client:
        yield client


# An installed cairn registers cairn:// by its entry point (test_entry_point checks that
# the declaration works); a checkout run from PYTHONPATH without installing it has none.
if "cairn" not in fsspec.available_protocols():
    fsspec.register_implementation("cairn", CairnFileSystem)

CLIENTS: dict[str, Callable[[Path], AbstractContextManager[ClientProtocol]]] = {
    "embedded": embedded,
    "remote": remote,
}


def filesystem(client: ClientProtocol, **kwargs: object) -> CairnFileSystem:
    # A fresh instance per test: fsspec would otherwise hand back a cached one.
    return CairnFileSystem(client=client, skip_instance_cache=True, **kwargs)


@pytest.fixture(params=sorted(CLIENTS))
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ClientProtocol]:
    with CLIENTS[request.param](tmp_path / "home") as c:
        c.repos.create("training")
        yield c


@pytest.fixture
def fs(client: ClientProtocol) -> CairnFileSystem:
    return filesystem(client)
