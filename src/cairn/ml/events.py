"""The lifecycle's event log: alias moves, policy changes, drift, retraining.

One catalog row per event (``events`` table), newest last: ``kind`` is a dotted name
(``alias.set``, ``alias.rollback``, ``deployment.policy``, ...), ``subject`` the model
or deployment it is about, ``info`` a JSON object with the reasons, ``actor`` who caused
it (the user of the server request, cairn.catalog.actor; None in embedded use and for
what the server does by itself). Events are written
in the same transaction as the change they describe, so one never exists without the
other.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, insert, select

from cairn.catalog import Catalog
from cairn.catalog.schema import events

__all__ = ["Event", "list_events", "record_event"]


@dataclass(frozen=True)
class Event:
    """One lifecycle event; ``time`` is UTC seconds since the epoch; ``actor`` the user
    whose request caused it (None: embedded use, or the server by itself)."""

    id: int
    time: float
    kind: str
    subject: str
    info: dict[str, Any]
    actor: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def record_event(conn: Connection, kind: str, subject: str, info: dict[str, Any]) -> None:
    """Add an event inside the caller's write transaction ``conn``, its actor the current
    one (cairn.catalog.actor.current_actor)."""
    conn.execute(
        insert(events).values(
            time=time.time(), kind=kind, subject=subject, info=json.dumps(info, sort_keys=True)
        )
    )


def list_events(
    catalog: Catalog,
    *,
    subject: str | None = None,
    kind: str | None = None,
    since: int = 0,
    limit: int | None = None,
) -> list[Event]:
    """Events oldest first, optionally of one subject, of one kind (or kind prefix ending
    in ``.``), with id greater than ``since``, at most the newest ``limit``."""
    q = select(events).where(events.c.id > since)
    if subject is not None:
        q = q.where(events.c.subject == subject)
    if kind is not None:
        q = q.where(events.c.kind.startswith(kind) if kind.endswith(".") else events.c.kind == kind)
    q = q.order_by(events.c.id.desc())
    if limit is not None:
        q = q.limit(limit)
    with catalog.read() as conn:
        rows = conn.execute(q).all()
    return [
        Event(r.id, r.time, r.kind, r.subject, json.loads(r.info), r.actor) for r in reversed(rows)
    ]
