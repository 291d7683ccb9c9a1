"""Pins: a writer says which objects it is about to rely on, before it relies on them.

A chunk or tree node is named by its content, so a writer that finds one stored
already does not write it again. If no commit reaches that object, garbage
collection may be deleting it at that very moment. So before a writer checks
whether an object exists (to reuse it) or writes it, it *pins* the object's key;
the collector deletes nothing pinned by a writer that is still at work, and
pinning and deleting are ordered by one lock, so either the pin comes first and
the object stays, or the deletion does and the writer's check finds the object
gone and writes it again. cairn.catalog.pins keeps the pins and that lock in the
catalog, with the leases that say which writers are at work.

Keys are object keys: ``chunks/<h[:2]>/<h>`` for a chunk whether it is stored
loose or packed, ``trees/…`` for a tree node, ``packs/…`` for a pack being written.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection

__all__ = ["Pins"]


class Pins(ABC):
    """Where writers pin object keys (cairn.catalog.CatalogPins in a real store)."""

    @abstractmethod
    def pin(self, keys: Collection[str]) -> None:
        """Record that these object keys are about to be reused or written; returns once
        the record is durable and ordered before any collection's later deletions.
        Raises the backend's error (CatalogError) when it cannot record them."""
