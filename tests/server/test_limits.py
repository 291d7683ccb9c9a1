"""Request bodies beyond ``cairn serve --max-body`` are refused with 413 before they are
read into memory, by their Content-Length or, chunked, by what has arrived."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import orjson
import pytest
from tests.server.conftest import Models, Server

LIMIT = 4096


@pytest.fixture(scope="module")
def limited(start_server: Callable[..., Server]) -> Server:
    return start_server(
        "digits@champion", "--deployment", "digits-limited", "--no-log", "--max-body", str(LIMIT)
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
