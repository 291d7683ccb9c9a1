"""``cairn://`` over each client: ``fs`` runs once embedded and once over a real
``cairn server`` (tests/team_server.py), each on a fresh store with repo ``training``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
from tests.team_server import face_clients

from cairn.api.protocol import ClientProtocol
from cairn.fs import CairnFileSystem

# An installed cairn registers cairn:// by its entry point (test_entry_point checks that
# the declaration works); a checkout run from PYTHONPATH without installing it has none.
if "cairn" not in fsspec.available_protocols():
    fsspec.register_implementation("cairn", CairnFileSystem)

CLIENTS = face_clients(pipelines=False)
embedded = CLIENTS["embedded"]


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
