"""A real S3 gateway for tests: uvicorn on a free loopback port in a thread of the test
process, over a cairn client (embedded, or remote over a real ``cairn server`` from
tests/team_server.py), with repo ``training``; and boto3 clients pointed at it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from tests.team_server import face_clients, free_port

from cairn.api.protocol import ClientProtocol
from cairn.catalog.auth import AuthStore
from cairn.gateway import create_app

CLIENTS = face_clients(pipelines=False)
embedded = CLIENTS["embedded"]


@contextmanager
def gateway(
    client: ClientProtocol, tls: tuple[Path, Path] | None = None, keys: AuthStore | None = None
) -> Iterator[str]:
    """Serve the gateway over ``client`` (HTTPS with ``tls`` = (cert, key); S3 keys of
    ``keys`` checked once auth is active there); yields its URL."""
    import uvicorn

    port = free_port()
    extra: dict[str, Any] = {}
    if tls is not None:
        extra = {"ssl_certfile": str(tls[0]), "ssl_keyfile": str(tls[1])}
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(client, keys=keys),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
            **extra,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test gateway did not start")
            time.sleep(0.02)
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def s3_client(url: str, verify: str | bool | None = None) -> Any:
    """A boto3 S3 client for the gateway at ``url``, with any key (auth is off)."""
    return boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id="any",
        aws_secret_access_key="any",
        region_name="us-east-1",
        verify=verify,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


@pytest.fixture(params=sorted(CLIENTS))
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ClientProtocol]:
    with CLIENTS[request.param](tmp_path / "home") as c:
        c.repos.create("training")
        yield c


@pytest.fixture
def local(tmp_path: Path) -> Iterator[ClientProtocol]:
    """An embedded client alone, for tests of the gateway's own logic."""
    with embedded(tmp_path / "home") as c:
        c.repos.create("training")
        yield c


@pytest.fixture
def s3(local: ClientProtocol) -> Iterator[Any]:
    """boto3 against a gateway over the embedded ``local`` client."""
    with gateway(local) as url:
        s3 = s3_client(url)
        yield s3
        s3.close()


@pytest.fixture
def both(client: ClientProtocol) -> Iterator[Any]:
    """boto3 against a gateway over ``client``, embedded and remote."""
    with gateway(client) as url:
        s3 = s3_client(url)
        yield s3
        s3.close()
