"""The built-in object stores: files under a folder (``file://``) and a dict (``memory://``).

Keys are ``/``-separated ASCII names made by cairn itself (``chunks/ab/abcd…``),
never user paths. Objects are written once: ``put`` of an existing key is a
no-op, because every key cairn writes is a content hash or a fresh id, so the
same key always carries the same bytes.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from cairn.storage.base import ObjectStore, check_key, check_range
from cairn.storage.errors import ObjectNotFound, StorageError

__all__ = ["LocalObjectStore", "MemoryObjectStore"]


class LocalObjectStore(ObjectStore):
    """Objects as files under a folder (``file:///path``).

    A put writes a temporary file beside the target, fsyncs it and renames it
    into place, so a crash leaves either the whole object or a stray ``.tmp-``
    file that no reader ever looks at.
    """

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.url = self.root.resolve().as_uri()
        self.fsync = fsync

    @classmethod
    def from_url(cls, url: str) -> LocalObjectStore:
        """Open the store ``file:///abs/path`` (or a plain path) names, creating the folder.

        ``?fsync=false`` skips the fsync of each object (as DVC and ``cp`` do): a killed
        process still loses nothing, but a power cut may tear objects of the last commits.
        Raises StorageError for an unknown option or an fsync that is not true or false.
        """
        parsed = urlparse(url)
        if not parsed.scheme:
            return cls(url)
        options = parse_qs(parsed.query)
        unknown = set(options) - {"fsync"}
        if unknown:
            raise StorageError(f"unknown option(s) {sorted(unknown)} in {url}; known: fsync")
        fsync = options.get("fsync", ["true"])[-1].lower()
        if fsync not in ("true", "false", "1", "0"):
            raise StorageError(f"fsync must be true or false in {url}")
        return cls(unquote(parsed.path), fsync=fsync in ("true", "1"))

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                if self.fsync:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(f"no object {key!r} in {self.url}") from None

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        check_range(offset, length)
        try:
            with open(self._path(key), "rb") as f:
                return os.pread(f.fileno(), length, offset)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(f"no object {key!r} in {self.url}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list(self, prefix: str = "") -> Iterator[str]:
        for dirpath, _dirs, files in os.walk(self.root):
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in files:
                if name.startswith(".tmp-"):
                    continue
                key = name if rel == "." else f"{rel}/{name}"
                if key.startswith(prefix):
                    yield key


class MemoryObjectStore(ObjectStore):
    """Objects in a dict (``memory://``): the default backend of tests."""

    def __init__(self) -> None:
        self.url = "memory://"
        self._objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> MemoryObjectStore:
        """A new, empty store for ``memory://``: stores opened apart share nothing."""
        return cls()

    def put(self, key: str, data: bytes) -> None:
        with self._lock:
            self._objects.setdefault(check_key(key), bytes(data))

    def get(self, key: str) -> bytes:
        try:
            return self._objects[check_key(key)]
        except KeyError:
            raise ObjectNotFound(f"no object {key!r} in memory://") from None

    def exists(self, key: str) -> bool:
        return check_key(key) in self._objects

    def delete(self, key: str) -> None:
        with self._lock:
            self._objects.pop(check_key(key), None)

    def list(self, prefix: str = "") -> Iterator[str]:
        return iter([k for k in list(self._objects) if k.startswith(prefix)])
