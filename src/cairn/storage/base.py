"""The object store interface every backend implements, and the key rules they share.

Backends (``objects.py``, ``s3.py``) import this module and nothing of each other;
``backends.py`` picks one by URL scheme.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator

from cairn.storage.errors import StorageError

__all__ = ["ObjectStore", "check_key", "check_range"]

_KEY = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")


def check_key(key: str) -> str:
    """Return ``key`` if it is a valid object key, else raise StorageError.

    Keys are ``/``-separated names; ``.``/``..`` parts and the ``.tmp-`` prefix (which
    the local store uses for writes in flight) are reserved."""
    if not _KEY.fullmatch(key) or any(
        part in (".", "..") or part.startswith(".tmp-") for part in key.split("/")
    ):
        raise StorageError(f"invalid object key {key!r}")
    return key


def check_range(offset: int, length: int) -> None:
    """Raise StorageError for a negative byte ``offset`` or ``length``."""
    if offset < 0 or length < 0:
        raise StorageError(f"invalid byte range: offset {offset}, length {length}")


class ObjectStore(ABC):
    """A write-once map from keys to bytes. Every backend passes tests/storage/test_objects.py."""

    url: str

    @abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` atomically: readers see all of it or nothing."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """Return the bytes under ``key``. Raises ObjectNotFound."""

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        """``length`` bytes of the object under ``key`` from byte ``offset`` (fewer only at
        its end). Packs are read this way, one chunk at a time. Raises ObjectNotFound,
        StorageError for a negative offset or length. Backends override this with a
        ranged read; the default reads the whole object."""
        check_range(offset, length)
        return self.get(key)[offset : offset + length]

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether ``key`` holds an object."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key`` if present (garbage collection only; never for live data)."""

    def delete_many(self, keys: Iterable[str]) -> None:
        """Remove every key of ``keys`` that is present (garbage collection only). Backends
        with a batch request override this; the default deletes one key at a time."""
        for key in keys:
            self.delete(key)

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Yield every key that starts with ``prefix``, in no set order."""
