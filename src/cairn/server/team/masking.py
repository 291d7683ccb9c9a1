"""Secret values never leave ``cairn server`` for a caller who is not a clusterAdmin (an
ASGI middleware): every JSON answer of the API (``/api/v1/...``: specs, logs, job errors,
events, error messages) has each stored secret value replaced by ``***`` (the Masker of
cairn.pipelines.secret_store, the one jobs mask their logs with when they store them), in
every string and key, before it is sent. Logs are masked when a job stores them; this
catches what that cannot: a secret created after the job ran, a value pasted into a spec's
``env`` or description, an error quoting one.

Who sees values as stored: callers the guard says may (``Guard.reveals_secrets``: while
auth is off, everyone; then clusterAdmins, who may create and mask secrets anyway). The
principal is the one ``call`` identified (kept in the request's state); a request that
never got that far (a 401, a body refused before its handler) is masked.

Not masked: file contents (``/api/v1/files/content``, ``/archive``: data, streamed as
stored; a transform that writes a secret into its output repo publishes it to the repo's
readers) and the API's own documents (``/openapi.json``). Masking is by value, so a
caller can confirm a guess of a whole value by sending it and reading it back as ``***``;
it never reveals one.

If the secrets file cannot be read, a masked answer is replaced by that error (SecretError,
500): nothing is sent unmasked.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool

from cairn.api.wire import API_PREFIX, error_body, status_of
from cairn.pipelines.errors import SecretError
from cairn.pipelines.secret_store import Masker, SecretStore

__all__ = ["PRINCIPAL", "SecretMask", "Secrets"]

PRINCIPAL = "cairn_principal"
"""The request state's key of the principal ``call`` identified."""


class Secrets:
    """The Masker of the secrets file at ``path``, read again only when the file changes
    (its inode, size or modification time), and a quick test of whether a JSON body may
    hold a value at all."""

    def __init__(self, path: Path) -> None:
        self.store = SecretStore(path)
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._masker = Masker(())
        self._probe: re.Pattern[bytes] | None = None

    def current(self) -> tuple[Masker, re.Pattern[bytes] | None]:
        """The Masker, and a pattern that finds any value in a JSON body as encoded
        (None: no value to mask). Raises SecretError."""
        try:
            st = os.stat(self.store.path)
            seen = (st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            seen = None
        with self._lock:
            if seen != self._seen:
                stored = self.store.masker().needles if seen is not None else ()
                # and as an error message quotes one (``{value!r}``: backslashes doubled)
                masker = Masker([*stored, *(repr(n)[1:-1] for n in stored)])
                needles = masker.needles
                # A value as a JSON text carries it: raw, or with its quotes, backslashes
                # and control characters escaped (as json.dumps and Starlette write them).
                forms = {n.encode() for n in needles}
                forms |= {json.dumps(n)[1:-1].encode() for n in needles}
                forms |= {json.dumps(n, ensure_ascii=False)[1:-1].encode() for n in needles}
                probe = re.compile(b"|".join(map(re.escape, sorted(forms)))) if forms else None
                self._seen, self._masker, self._probe = seen, masker, probe
            return self._masker, self._probe


class SecretMask:
    """Wraps the ASGI ``app`` of cairn.server.team.app; see the module doc. ``secrets``
    gives the current values; ``reveals(principal)`` whether a caller sees them."""

    def __init__(self, app: Any, secrets: Secrets, reveals: Callable[[Any], bool]) -> None:
        self.app, self.secrets, self.reveals = app, secrets, reveals

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(API_PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        start: dict[str, Any] | None = None
        body: list[bytes] = []
        passing = False
        current: tuple[Masker, re.Pattern[bytes] | None] | SecretError | None = None

        async def revealed() -> bool:
            """Whether this answer goes out as it is: no secret stored (no question to
            ask the catalog), or a caller who may see them."""
            nonlocal current
            try:
                current = self.secrets.current()
            except SecretError as exc:
                current = exc
            else:
                if current[1] is None:
                    return True
            return bool(await run_in_threadpool(self.reveals, state.get(PRINCIPAL)))

        async def masked(message: Any) -> None:
            nonlocal start, passing
            if passing:
                await send(message)
            elif message["type"] == "http.response.start":
                headers = dict(message.get("headers") or [])
                json_body = headers.get(b"content-type", b"").startswith(b"application/json")
                if not json_body or await revealed():
                    passing = True
                    await send(message)
                else:
                    start = message
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))
                if not message.get("more_body", False):
                    assert start is not None
                    assert current is not None
                    await _send_masked(start, b"".join(body), current, send)
            else:
                await send(message)

        await self.app(scope, receive, masked)


async def _send_masked(
    start: dict[str, Any],
    body: bytes,
    current: tuple[Masker, re.Pattern[bytes] | None] | SecretError,
    send: Any,
) -> None:
    status = start["status"]
    if isinstance(current, SecretError):  # nothing leaves unmasked: the error instead
        status = status_of(current)
        body = json.dumps({"error": error_body(current)}).encode()
    else:
        masker, probe = current
        if probe is not None and probe.search(body):
            body = _mask_json(body, masker)
    headers = [(k, v) for k, v in start.get("headers") or [] if k.lower() != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({**start, "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _mask_json(body: bytes, masker: Masker) -> bytes:
    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return masker.text(value)
        if isinstance(value, dict):
            return {masker.text(k): walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    try:
        decoded = json.loads(body)
    except ValueError:  # not JSON after all: mask the text as it is
        return masker.bytes(body)
    shown = json.dumps(walk(decoded), ensure_ascii=False, allow_nan=True, separators=(",", ":"))
    return shown.encode("utf-8")
