"""A bound on request bodies for ``cairn server`` (an ASGI middleware): a body beyond
``max_body`` bytes is answered 413 with the API's error shape, before the handler reads
more than that, whether the client sent a ``Content-Length`` or streamed it chunked.

Chunk uploads (``POST /api/v1/chunks``) and code bundles (``POST /api/v1/code``) stream
frames that their handlers bound one by one, so they get ``stream_body`` (default 1 GiB
per request; the client sends 8 MiB at a time)."""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException

__all__ = ["BodyLimit", "TooLarge"]

MAX_BODY = 64 << 20  # a JSON call: 1,000,000 files of a put's manifest fit in about 200 MiB
STREAM_BODY = 1 << 30
_STREAMED = ("/api/v1/chunks", "/api/v1/code", "/api/v1/store/restore")


class TooLarge(HTTPException):
    """Raised inside the app when the body read so far is over the limit: an
    HTTPException, so FastAPI's body parsing passes it on as it is (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes")


class BodyLimit:
    """Wraps an ASGI ``app``; see the module doc."""

    def __init__(self, app: Any, max_body: int = MAX_BODY, stream_body: int = STREAM_BODY) -> None:
        self.app, self.max_body, self.stream_body = app, max_body, stream_body

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = self.stream_body if path in _STREAMED else self.max_body
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(send, limit)
            return
        seen = 0
        started = False

        async def counted() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise TooLarge(limit)
            return message

        async def watched(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except TooLarge:  # raised where no handler turned it into an answer
            if not started:
                await _refuse(send, limit)


async def _refuse(send: Any, limit: int) -> None:
    body = json.dumps(
        {"error": {"type": "FieldError", "message": f"request body over {limit} bytes"}}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})
