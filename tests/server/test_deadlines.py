"""The header and body deadlines (cairn.server.deadlines) over both of uvicorn's HTTP/1.1
protocol classes, with raw sockets against uvicorn in a thread and a small ASGI app: slow
clients are cut off at the deadline, with a 408 when part of a request came; a request
that arrived in time is answered however long the app takes; keep-alive requests each get
their own deadlines."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from tests.server.conftest import free_port
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cairn.server.deadlines import Deadlines

TIMEOUT = 1.0  # seconds, both deadlines
SLACK = 1.0  # seconds the close may come after the deadline on a loaded machine


async def app(scope, receive, send) -> None:
    """Reads the whole body, waits ``?sleep`` seconds, answers the body's length."""
    if scope["type"] != "http":
        return
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    query = scope["query_string"].decode()
    if query.startswith("sleep="):
        await asyncio.sleep(float(query[6:]))
    body = str(size).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(params=[H11Protocol, HttpToolsProtocol], ids=["h11", "httptools"])
def port(request: pytest.FixtureRequest) -> Iterator[int]:
    protocol = type(
        "Timed",
        (Deadlines, request.param),
        {"header_timeout": TIMEOUT, "body_timeout": TIMEOUT},
    )
    number = free_port()
    config = uvicorn.Config(
        app, port=number, http=protocol, ws="none", lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    yield number
    server.should_exit = True
    thread.join(30)


def _request(body: bytes = b"", path: str = "/") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


def _open(port: int, first: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT + SLACK + 5)
    sock.sendall(first)
    return sock


def _until_closed(sock: socket.socket, drip: bytes = b"") -> tuple[bytes, float]:
    """Send ``drip`` a byte every 0.2 s while reading; returns (what came, seconds taken
    until the server closed)."""
    started = time.monotonic()
    sock.settimeout(0.2)
    received = b""
    while time.monotonic() - started < TIMEOUT + SLACK + 5:
        if drip:
            try:
                sock.send(drip[:1])
                drip = drip[1:]
            except OSError:
                pass
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            data = b""
        if not data:
            sock.close()
            return received, time.monotonic() - started
        received += data
    sock.close()
    raise AssertionError(f"still open after {TIMEOUT + SLACK + 5} s; got {received[:80]!r}")


def test_a_connection_sending_nothing_is_closed_without_an_answer(port: int) -> None:
    received, took = _until_closed(_open(port))
    assert received == b"" and TIMEOUT - 0.2 < took < TIMEOUT + SLACK


def test_dribbled_headers_get_408_at_the_header_deadline(port: int) -> None:
    received, took = _until_closed(_open(port), _request(b"{}"))
    assert received.startswith(b"HTTP/1.1 408") and took < TIMEOUT + SLACK


def test_a_dribbled_body_gets_408_at_the_body_deadline(port: int) -> None:
    head = _request(b"x" * 100)[:-100]
    received, took = _until_closed(_open(port, head), b"x" * 100)
    assert received.startswith(b"HTTP/1.1 408") and took < TIMEOUT + SLACK


def test_each_keep_alive_request_gets_its_own_deadline(port: int) -> None:
    sock = _open(port)
    for _ in range(3):  # each within its deadlines, the three together beyond them
        sock.sendall(_request(b"abc"))
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        time.sleep(TIMEOUT * 0.6)
    received, took = _until_closed(sock, _request(b"{}"))  # the fourth dribbles
    assert received.startswith(b"HTTP/1.1 408") and took < TIMEOUT + SLACK


def test_a_slow_answer_is_not_cut_off(port: int) -> None:
    sock = _open(port, _request(b"abc", f"/?sleep={TIMEOUT * 2.5}"))
    sock.settimeout(TIMEOUT * 2.5 + 10)
    answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"\r\n\r\n3")
    sock.close()
