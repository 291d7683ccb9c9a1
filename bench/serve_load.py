#!/usr/bin/env python3
"""A closed-loop HTTP/1.1 load generator: C keep-alive connections, each sending the same
request again as soon as the previous response is complete, for a warm-up and then a
measured window; every latency of the window is recorded.

Usage: ``python bench/serve_load.py --port P --body FILE [--path /invocations]
[--connections C] [--warmup S] [--duration S]``; prints one JSON object on stdout:
``requests`` and ``errors`` completed in the window, ``rps`` (requests per second of
window), latency percentiles in milliseconds (nearest rank over every request of the
window), the status codes seen, and the generator's own CPU seconds (user + system).

Why its own code and not a client library: on a 2-core machine the generator takes CPU
from the server it measures, so it must cost as little per request as possible and the
same for every server. The request bytes are built once; each connection is an asyncio
``Protocol`` (uvloop's loop when installed) that parses only the status line and the
``Content-Length`` / chunked framing of the response (RFC 9112, sections 6 and 7.1), with
no per-request coroutine, future or header dictionary, which a general client (aiohttp,
httpx) builds for every request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from pathlib import Path


class _Stats:
    """Latencies (ns) and outcomes of the measured window, shared by every connection."""

    def __init__(self) -> None:
        self.recording = False
        self.stopping = False
        self.latencies_ns: list[int] = []
        self.errors = 0
        self.statuses: dict[int, int] = {}
        self.reconnects = 0
        self.warmup_requests = 0


class _Conn(asyncio.Protocol):
    """One keep-alive connection sending ``request`` in a closed loop."""

    def __init__(self, request: bytes, stats: _Stats, closed: asyncio.Future) -> None:
        self.request = request
        self.stats = stats
        self.closed = closed
        self.buf = bytearray()
        self.sent_ns = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.sent_ns = time.perf_counter_ns()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = _response_end(self.buf)
            if end is None:
                return
            status = int(self.buf[9:12])
            del self.buf[:end]
            self._done(status, time.perf_counter_ns() - self.sent_ns)
            if self.stats.stopping:
                assert self.transport is not None
                self.transport.close()
                return
            self._send()

    def _done(self, status: int, latency_ns: int) -> None:
        s = self.stats
        if not s.recording:
            s.warmup_requests += 1
            return
        s.latencies_ns.append(latency_ns)
        s.statuses[status] = s.statuses.get(status, 0) + 1
        if status != 200:
            s.errors += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.stats.stopping and self.stats.recording:
            self.stats.errors += 1
        if not self.closed.done():
            self.closed.set_result(self.stats.stopping)


def _response_end(buf: bytearray) -> int | None:
    """Index just past the first complete HTTP/1.1 response in ``buf``, or None."""
    head = buf.find(b"\r\n\r\n")
    if head < 0:
        return None
    body = head + 4
    headers = bytes(buf[:head]).lower()
    i = headers.find(b"\r\ncontent-length:")
    if i >= 0:
        j = headers.find(b"\r\n", i + 2)
        length = int(headers[i + 17 : j if j >= 0 else len(headers)])
        return body + length if len(buf) >= body + length else None
    if b"\r\ntransfer-encoding:" in headers and b"chunked" in headers:
        pos = body
        while True:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                return None
            size = int(bytes(buf[pos:line_end]).split(b";")[0], 16)
            pos = line_end + 2
            if size == 0:
                trailer_end = buf.find(b"\r\n\r\n", pos - 2)
                return trailer_end + 4 if trailer_end >= 0 else None
            pos += size + 2
            if pos > len(buf):
                return None
    return body  # no body (e.g. 204)


def percentile(sorted_ns: list[int], q: float) -> float:
    """Nearest-rank percentile ``q`` (0-100) of sorted nanoseconds, in milliseconds."""
    if not sorted_ns:
        return float("nan")
    rank = max(1, -(-len(sorted_ns) * q // 100))
    return sorted_ns[int(rank) - 1] / 1e6


async def _run(args: argparse.Namespace) -> dict:
    body = Path(args.body).read_bytes()
    request = (
        f"POST {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
        f"Content-Type: {args.content_type}\r\nContent-Length: {len(body)}\r\n"
        "Connection: keep-alive\r\n\r\n"
    ).encode() + body
    loop = asyncio.get_running_loop()
    stats = _Stats()
    closed: list[asyncio.Future] = []

    async def connect() -> None:
        done = loop.create_future()
        closed.append(done)
        await loop.create_connection(lambda: _Conn(request, stats, done), args.host, args.port)

    await asyncio.gather(*(connect() for _ in range(args.connections)))
    await asyncio.sleep(args.warmup)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    stats.recording = True
    t0 = time.perf_counter()
    deadline = t0 + args.duration
    # A connection the server dropped is opened again, so C stay in flight; each drop
    # counts as an error of the window.
    while (now := time.perf_counter()) < deadline:
        await asyncio.sleep(min(0.05, deadline - now))
        for i, fut in enumerate(closed):
            if fut.done() and not stats.stopping:
                closed.pop(i)
                stats.reconnects += 1
                await connect()
                break
    stats.recording = False
    window = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    stats.stopping = True
    await asyncio.wait_for(asyncio.gather(*closed, return_exceptions=True), timeout=30)
    lat = sorted(stats.latencies_ns)
    n = len(lat)
    return {
        "connections": args.connections,
        "warmup_s": args.warmup,
        "window_s": window,
        "requests": n,
        "errors": stats.errors,
        "statuses": {str(k): v for k, v in sorted(stats.statuses.items())},
        "reconnects": stats.reconnects,
        "warmup_requests": stats.warmup_requests,
        "rps": n / window if window > 0 else 0.0,
        "latency_ms": {
            "mean": (sum(lat) / n / 1e6) if n else float("nan"),
            "p50": percentile(lat, 50),
            "p90": percentile(lat, 90),
            "p99": percentile(lat, 99),
            "p99_9": percentile(lat, 99.9),
            "max": lat[-1] / 1e6 if n else float("nan"),
        },
        "request_bytes": len(request),
        "generator_cpu_s": (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime),
        "event_loop": type(loop).__module__.split(".")[0],
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/invocations")
    ap.add_argument("--body", type=Path, required=True, help="file with the request body")
    ap.add_argument("--content-type", default="application/json")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds, not recorded")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds recorded")
    args = ap.parse_args(argv)
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    res = runner(_run(args))
    json.dump(res, sys.stdout)
    sys.stdout.write("\n")
    return res


if __name__ == "__main__":
    main()
