"""A real ``cairn server`` for tests: uvicorn on a free loopback port in a thread of the
test process, over a fresh store, with the pipeline worker as the real subprocess
(``python -m cairn.server.team.worker``) that ``cairn server`` runs."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cairn.api.protocol import ClientProtocol
from cairn.client import Client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def team_server(home: Path, *, worker: bool = True) -> Iterator[str]:
    """Serve the store at ``home``; yields the server's URL."""
    import uvicorn

    from cairn.server.team.app import create_api
    from cairn.server.team.rounds import Rounds
    from cairn.server.team.runner import PipelineWorker

    client = Client(home, auto_run=False)
    pipelines = PipelineWorker(client.home) if worker else None
    rounds = Rounds(client.home, pipelines.wake) if pipelines is not None else None
    app = create_api(client, rounds=rounds)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    if pipelines is not None:
        pipelines.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        # the worker stops while uvicorn winds down (it checks should_exit every 0.1 s)
        server.should_exit = True
        if pipelines is not None:
            pipelines.stop()
        thread.join(30)
        client.data.catalog.dispose()


def face_clients(*, pipelines: bool) -> dict[str, Callable[[Path], Any]]:
    """Per kind of client of the face (cairn.api.protocol), a context manager that opens
    one over the store at ``home``: ``embedded`` (cairn.Client) and ``remote`` (a
    RemoteClient over a ``team_server``). ``pipelines``: writes trigger pipelines (and the
    remote server runs its worker)."""

    @contextmanager
    def embedded(home: Path) -> Iterator[ClientProtocol]:
        client = Client(home, auto_run=pipelines)
        try:
            yield client
        finally:
            client.data.catalog.dispose()

    @contextmanager
    def remote(home: Path) -> Iterator[ClientProtocol]:
        from cairn.api.remote.client import RemoteClient

        with (
            team_server(home, worker=pipelines) as url,
            RemoteClient(url, auto_run=pipelines) as client,
        ):
            yield client

    return {"embedded": embedded, "remote": remote}
