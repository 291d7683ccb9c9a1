"""The HTTP protocol ``cairn serve`` runs uvicorn with: uvicorn's own (httptools when it
is installed, else h11) plus two deadlines against slow clients.

- header deadline: a request's line and headers must have arrived ``header_timeout``
  seconds after the connection opened or the previous response ended;
- body deadline: its body must have arrived ``body_timeout`` seconds after its headers.

Why a protocol class: uvicorn has no timeout over the receipt of a request (checked in
uvicorn 0.55's h11 and httptools protocols). ``timeout_keep_alive`` covers only the idle
time after a response, and the first byte received cancels it, so a client sending one
header byte a second holds its connection for ever; ``h11_max_incomplete_event_size``
bounds the size of the headers, not their time; and an ASGI middleware only runs once
the headers are complete. The deadlines are absolute, not reset by each byte: that is
what stops a dribbling client. They do not cover the time the app takes to answer.

When a deadline passes the connection is closed, after a ``408 Request Timeout`` if part
of the request had arrived and no answer had started. A request whose body timed out
sees ``http.disconnect`` in the app, and whatever the app answers goes nowhere.

``Deadlines`` is the mechanism, a mixin over either of uvicorn's protocol classes: it reads
their per-connection state (``cycle``, its ``more_body``, ``response_started``,
``response_complete``, ``disconnected``, ``message_event``) and extends
``connection_made``, ``data_received``, ``on_response_complete`` and ``connection_lost``;
tests/server/test_deadlines.py holds both classes to that contract. ``DeadlineProtocol``
is what ``cairn serve`` names, with the timeouts of ``ServerSettings``.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

__all__ = ["DeadlineProtocol", "Deadlines"]

_MESSAGE = b"the request did not arrive in time"
_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: " + str(len(_MESSAGE)).encode() + b"\r\n"
    b"connection: close\r\n\r\n" + _MESSAGE
)
_HEADERS, _BODY = "headers", "body"


class Deadlines:
    """The header and body deadlines of the module doc, mixed into a uvicorn HTTP protocol
    class (``class P(Deadlines, H11Protocol)``); ``header_timeout`` and ``body_timeout``
    are in seconds."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    # uvicorn's protocol state, as the mixin reads it
    cycle: Any
    transport: Any
    loop: asyncio.AbstractEventLoop

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        # (the request cycle, the phase) the deadline runs for; a phase is _HEADERS (the
        # next request's head), _BODY (this request's body) or None (the app answers)
        self._watching: tuple[Any, str | None] | None = None
        self._received = False  # whether part of the next request's head arrived

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._watch()

    def data_received(self, data: bytes) -> None:
        if self._watching is not None and self._watching[1] == _HEADERS:
            self._received = True
        super().data_received(data)  # type: ignore[misc]
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)  # type: ignore[misc]

    def _phase(self) -> tuple[Any, str | None]:
        cycle = self.cycle
        if cycle is None:
            return None, _HEADERS
        if cycle.more_body:  # also after an early answer (413): the rest must arrive
            return cycle, _BODY
        return cycle, _HEADERS if cycle.response_complete else None

    def _watch(self) -> None:
        """Start the deadline of the phase the connection is in, once per phase: bytes
        arriving within a phase never extend it."""
        phase = self._phase()
        if self._watching is not None and (
            phase[0] is self._watching[0] and phase[1] == self._watching[1]
        ):
            return
        self._watching = phase
        self._cancel()
        if phase[1] is None or self.transport is None or self.transport.is_closing():
            return
        self._received = False
        timeout = self.header_timeout if phase[1] == _HEADERS else self.body_timeout
        self._deadline = self.loop.call_later(timeout, self._expired)

    def _cancel(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self._watching is None:
            return
        cycle, phase = self._watching
        if phase == _BODY:
            answer = not cycle.response_started
            if not cycle.response_complete:
                # the app's receive() returns http.disconnect from now on, and its send()
                # writes nothing after the 408
                cycle.disconnected = True
                cycle.message_event.set()
        else:
            answer = self._received
        if answer:
            self.transport.write(_TIMEOUT)
        self.transport.close()


@functools.cache
def _timeouts() -> tuple[float, float]:
    from cairn.server.settings import ServerSettings

    settings = ServerSettings.from_env()
    return settings.header_timeout, settings.body_timeout


class DeadlineProtocol(Deadlines, AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    """uvicorn's protocol (httptools when installed, else h11) with the deadlines, their
    timeouts from ``ServerSettings`` in the environment (``cairn serve`` sets them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout, self.body_timeout = _timeouts()
