"""For code running inside a transform: take datums one after another (datum batching).

With ``transform.datum_batching: true`` a pipeline starts its command once per worker and
the command asks cairn for datums::

    from cairn.sdk import datums, fail

    for datum_id in datums():      # inputs at $CAIRN_PFS/<input>/..., write $CAIRN_PFS/out
        try:
            work()
        except ValueError as exc:
            fail(str(exc))           # this datum fails (and is retried); the loop goes on

Each step of the loop tells cairn the previous datum is done; cairn then stores its
``out`` and lays out the next. An exception that ends the process fails the datum in
progress; leaving the loop early and exiting 0 finishes it, and the datums left go to a
fresh process. The wire protocol, for other languages, is in ``cairn.pipelines.batch``.

This module is an adapter on top of the layers but imports only the standard library:
it runs inside transforms, where start-up time counts.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

__all__ = ["CHANNEL_ENV", "END", "datums", "exchange", "fail"]

CHANNEL_ENV = "CAIRN_DATUM_CHANNEL"
END = "end"

_failure: str | None = None


def exchange(request: str) -> str:
    """Send one request line (``next`` or ``fail <reason>``) and return cairn's reply line:
    the next datum's id, or ``END``. Flushes ``sys.stdout``/``sys.stderr`` first, so that
    what the datum printed lands in its own log.

    Raises RuntimeError outside a batching transform (no ``$CAIRN_DATUM_CHANNEL``) or when
    cairn closes the channel.
    """
    folder = os.environ.get(CHANNEL_ENV)
    if not folder:
        raise RuntimeError(
            f"${CHANNEL_ENV} is not set: datums() works inside a pipeline whose transform "
            "sets datum_batching: true"
        )
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    line = " ".join(request.split()) + "\n"  # one line, whatever the reason held
    with open(os.path.join(folder, "request"), "wb", buffering=0) as f:
        f.write(line.encode())
    reply = b""
    fd = os.open(os.path.join(folder, "reply"), os.O_RDONLY)
    try:
        while not reply.endswith(b"\n"):
            chunk = os.read(fd, 256)
            if not chunk:
                raise RuntimeError("cairn closed the datum channel")
            reply += chunk
    finally:
        os.close(fd)
    return reply.decode().strip()


def fail(reason: str) -> None:
    """Mark the datum in progress failed with ``reason``; the next step of ``datums()``
    reports it instead of ``next``."""
    global _failure
    _failure = " ".join(reason.split()) or "failed"


def datums() -> Iterator[str]:
    """Yield the id of each datum cairn hands this process, until there are none left.

    Before each id is yielded the datum's inputs are at ``$CAIRN_PFS/<input name>/<path>``
    and ``$CAIRN_PFS/out`` is empty; the next step (or the end of the loop) hands the datum
    back. Raises RuntimeError as ``exchange``.
    """
    global _failure
    while True:
        request = "next" if _failure is None else f"fail {_failure}"
        _failure = None
        reply = exchange(request)
        if reply == END:
            return
        yield reply
