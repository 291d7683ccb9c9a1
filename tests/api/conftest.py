"""One conformance suite for every client of the face (cairn.api.protocol): each test
takes ``client`` and runs once per implementation in IMPLEMENTATIONS. A remote client
(over ``cairn server``) joins by adding one entry there."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from cairn.api.protocol import ClientProtocol
from cairn.client import Client
from cairn.pipelines.sandbox import sandbox_available


@contextmanager
def embedded(home: Path) -> Iterator[ClientProtocol]:
    client = Client(home, auto_run=True)
    try:
        yield client
    finally:
        client.data.catalog.dispose()


@contextmanager
def remote(home: Path) -> Iterator[ClientProtocol]:
    from tests.team_server import team_server

    from cairn.api.remote.client import RemoteClient

    with team_server(home) as url, RemoteClient(url, auto_run=True) as client:
        yield client


IMPLEMENTATIONS: dict[str, Callable[[Path], AbstractContextManager[ClientProtocol]]] = {
    "embedded": embedded,
    "remote": remote,
}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def client(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ClientProtocol]:
    monkeypatch.setenv("CAIRN_SANDBOX", "none")
    for name in ("CAIRN_PFS", "PACH_DATUM_ID", "CAIRN_DATUM_CHANNEL", "CAIRN_HOME"):
        monkeypatch.delenv(name, raising=False)
    sandbox_available.cache_clear()
    with IMPLEMENTATIONS[request.param](tmp_path / "home") as c:
        yield c
