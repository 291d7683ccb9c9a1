"""Who is acting: the subject of the request's token, for the events it causes.

A server sets ``current_actor`` for the length of each request (``acting_as``); every
row inserted into the ``events`` table without an explicit ``actor`` takes its value
(a column default in ``schema.py``), so every event writer records it without being
told. Unset (None) in embedded use and in work the server starts by itself. A
ContextVar, so concurrent requests on threads or tasks never see each other's actor.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["acting_as", "current_actor"]

current_actor: ContextVar[str | None] = ContextVar("cairn_actor", default=None)


@contextmanager
def acting_as(subject: str | None) -> Iterator[None]:
    """Record ``subject`` as the actor of the events written inside the block (in this
    context: this thread or task, and the contexts copied from it); the earlier actor
    is restored after."""
    token = current_actor.set(subject)
    try:
        yield
    finally:
        current_actor.reset(token)
