"""One conformance suite for every client of the face (cairn.api.protocol): each test
takes ``client`` and runs once per implementation in IMPLEMENTATIONS. A remote client
(over ``cairn server``) joins by adding one entry there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.team_server import face_clients

from cairn.api.protocol import ClientProtocol
from cairn.pipelines.sandbox import sandbox_available

IMPLEMENTATIONS = face_clients(pipelines=True)


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
