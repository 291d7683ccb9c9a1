"""Object stores: flat key -> bytes maps, chosen by URL.

Keys are ``/``-separated ASCII names made by cairn itself (``chunks/ab/abcd…``),
never user paths. Objects are written once: ``put`` of an existing key is a
no-op, because every key cairn writes is a content hash or a fresh id, so the
same key always carries the same bytes.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from cairn.storage.errors import ObjectNotFound, StorageError, UnsupportedBackend

__all__ = ["LocalObjectStore", "MemoryObjectStore", "ObjectStore", "open_object_store"]

_KEY = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")


def _check_key(key: str) -> str:
    """Keys are ``/``-separated names; ``.``/``..`` parts and the ``.tmp-`` prefix (which
    the local store uses for writes in flight) are reserved."""
    if not _KEY.fullmatch(key) or any(
        part in (".", "..") or part.startswith(".tmp-") for part in key.split("/")
    ):
        raise StorageError(f"invalid object key {key!r}")
    return key


def _check_range(offset: int, length: int) -> None:
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
        _check_range(offset, length)
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

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

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
        _check_range(offset, length)
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

    def put(self, key: str, data: bytes) -> None:
        with self._lock:
            self._objects.setdefault(_check_key(key), bytes(data))

    def get(self, key: str) -> bytes:
        try:
            return self._objects[_check_key(key)]
        except KeyError:
            raise ObjectNotFound(f"no object {key!r} in memory://") from None

    def exists(self, key: str) -> bool:
        return _check_key(key) in self._objects

    def delete(self, key: str) -> None:
        with self._lock:
            self._objects.pop(_check_key(key), None)

    def list(self, prefix: str = "") -> Iterator[str]:
        return iter([k for k in list(self._objects) if k.startswith(prefix)])


def open_object_store(url: str) -> ObjectStore:
    """Open the object store a URL names.

    ``file:///abs/path`` (or a plain path) and ``memory://`` are built in;
    ``file:///abs/path?fsync=false`` skips the fsync of each object (as DVC and
    ``cp`` do): a killed process still loses nothing, but a power cut may tear
    objects of the last commits;
    ``s3://bucket/prefix`` needs the ``s3`` extra (see cairn.storage.s3). Raises
    UnsupportedBackend for any other scheme, naming the ones there are, or when the
    backend's extra is not installed; StorageError for a malformed URL or a store that
    cannot be reached.
    """
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        if not parsed.scheme:
            return LocalObjectStore(url)
        options = parse_qs(parsed.query)
        unknown = set(options) - {"fsync"}
        if unknown:
            raise StorageError(f"unknown option(s) {sorted(unknown)} in {url}; known: fsync")
        fsync = options.get("fsync", ["true"])[-1].lower()
        if fsync not in ("true", "false", "1", "0"):
            raise StorageError(f"fsync must be true or false in {url}")
        return LocalObjectStore(unquote(parsed.path), fsync=fsync in ("true", "1"))
    if parsed.scheme == "memory":
        return MemoryObjectStore()
    if parsed.scheme == "s3":
        # Imported here so that storage loads boto3 only for an s3:// store.
        from cairn.storage.s3 import S3ObjectStore

        return S3ObjectStore.from_url(url)
    raise UnsupportedBackend(
        f"no object store for {parsed.scheme}:// URLs; supported: file://, memory://, s3://"
    )
