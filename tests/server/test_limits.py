"""Request bodies beyond ``cairn serve --max-body`` are refused with 413 before they are
read into memory, by their Content-Length or, chunked, by what has arrived; clients whose
headers or body dribble in are cut off at ``--header-timeout`` / ``--body-timeout``."""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Callable, Iterator

import orjson
import pytest
from tests.server.conftest import Models, Server

LIMIT = 4096
TIMEOUT = 2.0  # seconds, both deadlines


@pytest.fixture(scope="module")
def limited(start_server: Callable[..., Server]) -> Server:
    return start_server(
        "digits@champion",
        "--deployment",
        "digits-limited",
        "--no-log",
        "--max-body",
        str(LIMIT),
        "--header-timeout",
        str(TIMEOUT),
        "--body-timeout",
        str(TIMEOUT),
    )


def _chunks(total: int) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * 1024
        sent += 1024


@pytest.mark.parametrize(
    ("path", "error_key"),
    [("/invocations", "message"), ("/v2/models/digits-limited/infer", "error")],
)
def test_bodies_over_the_limit_are_413(
    limited: Server, models: Models, path: str, error_key: str
) -> None:
    row = models.digits_x[0].tolist()
    if path == "/invocations":
        small = orjson.dumps({"inputs": [row]})
    else:
        small = orjson.dumps(
            {"inputs": [{"name": "x", "shape": [1, 64], "datatype": "FP64", "data": row}]}
        )
    headers = {"content-type": "application/json"}
    assert limited.http.post(path, content=small, headers=headers).status_code == 200
    big = small + b" " * LIMIT  # valid JSON, too long
    r = limited.http.post(path, content=big, headers=headers)
    assert r.status_code == 413 and str(LIMIT) in r.json()[error_key]
    # chunked: no Content-Length, refused once the limit passes
    r = limited.http.post(path, content=_chunks(4 * LIMIT), headers=headers)
    assert r.status_code == 413


def test_a_2gb_content_length_is_refused_without_waiting_for_the_body(limited: Server) -> None:
    with socket.create_connection(("127.0.0.1", limited.port), timeout=30) as sock:
        sock.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2147483648\r\n\r\n{}"
        )
        answer = sock.recv(4096)  # before the fix: no answer until 2 GB arrive (timeout)
    assert answer.startswith(b"HTTP/1.1 413")


HEAD = (
    b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: 1000\r\n\r\n"
)


class Slow:
    """A raw connection that sends ``first`` at once, then ``drip`` a byte at a time."""

    def __init__(self, port: int, kind: str, first: bytes, drip: bytes) -> None:
        self.kind = kind
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(first)
        self.sock.setblocking(False)
        self.opened = time.monotonic()
        self.drip = drip
        self.received = b""
        self.closed_after: float | None = None

    def send_one(self) -> None:
        if self.closed_after is None and self.drip:
            try:
                self.sock.send(self.drip[:1])
                self.drip = self.drip[1:]
            except OSError:  # reset by the server: noticed by read()
                pass

    def read(self) -> None:
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        self.received += data
        if not data:
            self.closed_after = time.monotonic() - self.opened
            self.sock.close()


def test_slow_clients_are_cut_off_while_others_are_answered(
    limited: Server, models: Models
) -> None:
    answered = HEAD.replace(b"1000", b"2") + b"{}"  # a whole request (400), then dribbling
    kinds = {
        "idle": (b"", b""),  # connects, sends nothing
        "head": (b"", HEAD),  # its headers a byte at a time
        "body": (HEAD, b"{" + b" " * 998 + b"}"),  # its body a byte at a time
        "second": (answered, HEAD),  # a first request answered, the next one dribbling
    }
    slow = [
        Slow(limited.port, kind, first, drip)
        for _ in range(25)
        for kind, (first, drip) in kinds.items()
    ]
    selector = selectors.DefaultSelector()
    for s in slow:
        selector.register(s.sock, selectors.EVENT_READ, s)
    body = {"instances": models.digits_x[:2].tolist()}
    normal: list[float] = []
    until = time.monotonic() + TIMEOUT + 6
    tick = 0.0
    while time.monotonic() < until and any(s.closed_after is None for s in slow):
        if time.monotonic() >= tick:  # a byte a second-ish from every slow client
            for s in slow:
                s.send_one()
            tick = time.monotonic() + 0.5
            started = time.monotonic()
            r = limited.http.post("/invocations", json=body)  # a normal client meanwhile
            assert r.status_code == 200, r.text
            normal.append(time.monotonic() - started)
        for key, _ in selector.select(timeout=0.1):
            key.data.read()
            if key.data.closed_after is not None:
                selector.unregister(key.fileobj)
    selector.close()
    still_open = [s.kind for s in slow if s.closed_after is None]
    for s in slow:
        if s.closed_after is None:
            s.sock.close()
    # before: every slow connection stayed open
    assert still_open == []
    assert max(s.closed_after for s in slow) < TIMEOUT + 2.5  # type: ignore[type-var]
    assert min(s.closed_after for s in slow) > TIMEOUT - 0.5  # type: ignore[type-var]
    for s in slow:
        # a 408 once part of a request had arrived (the idle ones get no answer)
        expected = {"idle": b"", "head": b"HTTP/1.1 408", "body": b"HTTP/1.1 408"}
        if s.kind in expected:
            assert s.received.startswith(expected[s.kind]), (s.kind, s.received[:80])
        else:
            assert s.received.startswith(b"HTTP/1.1 400"), s.received[:80]
            assert b"HTTP/1.1 408" in s.received
    assert len(normal) >= 3 and max(normal) < 2.0
