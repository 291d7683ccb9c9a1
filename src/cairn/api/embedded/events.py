"""``client.events`` in this process."""

from __future__ import annotations

import builtins

from cairn.catalog import Catalog
from cairn.ml.events import Event, list_events

__all__ = ["EmbeddedEvents"]


class EmbeddedEvents:
    """EventsProtocol over the catalog's ``events`` table."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    def list(
        self,
        *,
        subject: str | None = None,
        kind: str | None = None,
        since: int = 0,
        limit: int | None = None,
    ) -> builtins.list[Event]:
        """Events oldest first, filtered as EventsProtocol.list says."""
        return list_events(self._catalog, subject=subject, kind=kind, since=since, limit=limit)
