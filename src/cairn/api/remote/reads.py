"""An httpx transport whose connections read the socket 1 MiB at a time.

httpcore reads 64 KiB per call and parses each piece through h11 in Python, which holds a
big file's download to about 100 MiB/s on loopback; with reads of up to 1 MiB the same
parsing runs a sixteenth as often (a read returns what the socket holds, so small answers
are not delayed). Everything else is httpx's own ``HTTPTransport``: TLS (``verify``),
keep-alive, error mapping.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpcore
import httpx

__all__ = ["READ_SIZE", "large_read_transport"]

READ_SIZE = 1 << 20  # bytes asked of the socket per read


class _Stream(httpcore.NetworkStream):
    """A connection's stream that asks for at least ``READ_SIZE`` bytes per read."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max(max_bytes, READ_SIZE), timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _Stream(self._inner.start_tls(*args, **kwargs))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    """httpcore's own socket backend, its streams wrapped in ``_Stream``."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _Stream(self._inner.connect_tcp(*args, **kwargs))

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _Stream(self._inner.connect_unix_socket(*args, **kwargs))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def large_read_transport(verify: bool | ssl.SSLContext = True) -> httpx.HTTPTransport:
    """An ``httpx.HTTPTransport`` (no proxy) whose connections read up to ``READ_SIZE``
    bytes at a time; ``verify`` as httpx takes it (an SSL context, or False)."""
    transport = httpx.HTTPTransport(verify=verify)
    # httpx builds its pool without a way to pass a network backend: the same pool is
    # built again with one (httpx keeps it as ``_pool``; were that to change, the
    # transport would still work, with httpcore's 64 KiB reads).
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(verify=verify),
        max_connections=100,  # httpx's default limits
        max_keepalive_connections=20,
        keepalive_expiry=5.0,
        network_backend=_Backend(),
    )
    return transport
