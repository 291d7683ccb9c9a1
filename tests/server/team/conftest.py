"""Fixtures of the ``cairn server`` tests: a real server (tests/team_server.py) over a fresh
store, reached with httpx as any client would, and the remote client over it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.team_server import team_server

from cairn.api.remote.client import RemoteClient


@dataclass
class Server:
    url: str
    home: Path
    http: httpx.Client

    def call(self, sub: str, name: str, /, **kwargs: object) -> httpx.Response:
        return self.http.post(f"/api/v1/{sub}/{name}", json=kwargs)


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A server without its pipeline worker (nothing here runs a job)."""
    monkeypatch.setenv("CAIRN_SANDBOX", "none")
    home = tmp_path / "home"
    with team_server(home, worker=False) as url, httpx.Client(base_url=url, timeout=60) as http:
        yield Server(url, home, http)


@pytest.fixture
def remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[RemoteClient, Path]]:
    """The remote client over a server with its worker, and the server's store folder."""
    monkeypatch.setenv("CAIRN_SANDBOX", "none")
    home = tmp_path / "home"
    with team_server(home) as url, RemoteClient(url, auto_run=True) as client:
        yield client, home
