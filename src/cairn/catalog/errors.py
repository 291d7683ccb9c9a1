"""Catalog exceptions (see cairn.storage.errors for the whole tree)."""

from __future__ import annotations

from cairn.storage.errors import CairnError

__all__ = ["CatalogError"]


class CatalogError(CairnError):
    """The metadata database could not be opened or written."""
