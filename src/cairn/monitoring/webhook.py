"""Alert webhooks, sent off the tick path.

``Webhooks.post`` queues a monitor event for its rule's webhook and returns at once: a
small thread pool POSTs it with httpx (JSON ``{"monitor", "kind", "model", "info"}``,
waiting at most the rule's ``alert.timeout`` seconds), so a slow or dead endpoint never
holds a ``tick()``. A failure (no connection, a timeout, a status >= 400, a full queue)
is recorded as a ``monitor.webhook_failed`` event naming the webhook, the event and the
error; it is never raised. At most ``max_pending`` posts wait at once; beyond that a post
is recorded as failed instead of queued. The pool's threads are joined at interpreter
exit (``concurrent.futures``), so posts queued by a last tick are still sent;
``flush`` waits for them explicitly.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from typing import TYPE_CHECKING, Any

import httpx

from cairn.ml.events import record_event

if TYPE_CHECKING:
    from cairn.catalog.engine import Catalog

__all__ = ["Webhooks"]

FAILED = "monitor.webhook_failed"


class Webhooks:
    """The webhook sender of one store's monitors (see the module doc). Thread-safe."""

    def __init__(self, catalog: Catalog, *, workers: int = 2, max_pending: int = 1000) -> None:
        self.catalog = catalog
        self.workers = workers
        self.max_pending = max_pending
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pending: set[Future[None]] = set()

    def post(
        self, url: str, timeout: float, monitor: str, kind: str, model: str, info: dict[str, Any]
    ) -> None:
        """Queue the event ``kind`` of ``monitor`` for ``url``; returns without waiting."""
        body = json.dumps(
            {"monitor": monitor, "kind": kind, "model": model, "info": info},
            default=str,
            sort_keys=True,
        ).encode()
        with self._lock:
            full = len(self._pending) >= self.max_pending
            if not full:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.workers, "cairn-webhook")
                future = self._pool.submit(self._send, url, timeout, monitor, kind, body)
                self._pending.add(future)
                future.add_done_callback(self._done)
        if full:
            self._failed(url, monitor, kind, f"{self.max_pending} webhook posts already waiting")

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every post queued so far was sent or recorded as failed; False if
        some are still waiting after ``timeout`` seconds."""
        with self._lock:
            pending = list(self._pending)
        return not wait_futures(pending, timeout).not_done

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _send(self, url: str, timeout: float, monitor: str, kind: str, body: bytes) -> None:
        try:
            response = httpx.post(
                url,
                content=body,
                headers={"Content-Type": "application/json", "User-Agent": "cairn-monitor"},
                timeout=timeout,
            )
            response.raise_for_status()
        except Exception as exc:  # noqa: BLE001 - any network failure is recorded
            self._failed(url, monitor, kind, f"{type(exc).__name__}: {exc}")

    def _failed(self, url: str, monitor: str, kind: str, error: str) -> None:
        with self.catalog.write() as conn:
            record_event(conn, FAILED, monitor, {"webhook": url, "event": kind, "error": error})
