"""What garbage collection and fsck need to know about the stored objects.

Shared by ``gc.py`` and ``fsck.py``: the roots (every commit's tree), the age and
size of an object, and the decoding of a chunk frame without knowing the chunk's
size. The object store's API says none of the latter two, so they are worked out
here per backend; an ``ObjectStore.stat(key)`` primitive in cairn.storage would
replace ``object_stat`` (asked for in issue 3).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import zstandard
from sqlalchemy import or_, select, tuple_

from cairn.catalog import Catalog
from cairn.catalog.schema import commits
from cairn.storage import CorruptObject, LocalObjectStore, MemoryObjectStore, ObjectStore

__all__ = [
    "CHUNK_PREFIX",
    "PACK_PREFIX",
    "TREE_PREFIX",
    "ObjectStat",
    "Root",
    "decode_frame",
    "digest_of",
    "object_stat",
    "roots",
]

CHUNK_PREFIX = "chunks/"
PACK_PREFIX = "packs/"
TREE_PREFIX = "trees/"


@dataclass(frozen=True, slots=True)
class ObjectStat:
    """An object's ``size`` in bytes and last ``modified`` time (UTC seconds since the
    epoch); either is None where the backend cannot tell."""

    size: int | None
    modified: float | None


@dataclass(frozen=True, slots=True)
class Root:
    """One commit's tree root: ``repo``, commit ``id`` and root node hash ``tree``."""

    repo: str
    id: str
    tree: str


def digest_of(key: str) -> str:
    """The hash an object key ends with (``chunks/ab/abcd…`` -> ``abcd…``)."""
    return key.rpartition("/")[2]


def object_stat(objects: ObjectStore, key: str) -> ObjectStat | None:
    """Size and modification time of ``key``, or None when there is no such object.

    Local folders: the file's size and mtime (a put renames a fresh temporary file into
    place, so mtime is the write time). S3: one HEAD request (LastModified, ContentLength).
    In memory: the size only, as the store keeps no times. Other backends: a ``stat``
    method if they have one, else an ``exists`` check and nothing more.
    """
    if isinstance(objects, LocalObjectStore):
        try:
            st = os.stat(objects.root / key)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return ObjectStat(st.st_size, st.st_mtime)
    if isinstance(objects, MemoryObjectStore):
        try:
            return ObjectStat(len(objects.get(key)), None)
        except KeyError:
            return None
    stat = getattr(objects, "stat", None)
    if callable(stat):
        result: ObjectStat | None = stat(key)
        return result
    if type(objects).__name__ == "S3ObjectStore":
        return _s3_stat(objects, key)
    return ObjectStat(None, None) if objects.exists(key) else None


def _s3_stat(objects: Any, key: str) -> ObjectStat | None:
    # Until the store has a stat of its own: the client and key prefix it holds.
    from botocore.exceptions import ClientError

    try:
        head = objects._s3.head_object(Bucket=objects.bucket, Key=objects._base + key)
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code", "")) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return ObjectStat(int(head["ContentLength"]), head["LastModified"].timestamp())


def decode_frame(blob: bytes, name: str) -> bytes:
    """The raw bytes of a chunk frame (codec byte ``0x00`` raw or ``0x01`` zstd, then the
    payload; cairn.storage.chunks). Raises CorruptObject naming ``name``."""
    codec, payload = blob[:1], blob[1:]
    if codec == b"\x00":
        return payload
    if codec == b"\x01":
        try:
            return zstandard.ZstdDecompressor().decompressobj().decompress(payload)
        except zstandard.ZstdError as exc:
            raise CorruptObject(f"{name} is not a valid zstd frame: {exc}") from exc
    raise CorruptObject(f"{name} has unknown codec byte {codec!r}")


def roots(catalog: Catalog, *, since: float | None = None, page: int = 2000) -> Iterator[Root]:
    """Every commit with a non-empty tree, open and finished, from the catalog.

    With ``since`` (UTC seconds), only commits created at or after it and every open
    commit (whose tree may move at any time): what garbage collection re-reads before
    it deletes. Read ``page`` rows per short transaction, in key order, so neither
    memory nor a transaction (which on SQLite holds the database's lock) lasts as
    long as the walk. Raises CatalogError.
    """
    query = select(commits.c.repo, commits.c.id, commits.c.tree).where(commits.c.tree.is_not(None))
    if since is not None:
        query = query.where(or_(commits.c.created >= since, commits.c.state == "open"))
    query = query.order_by(commits.c.repo, commits.c.id).limit(page)
    after: tuple[str, str] | None = None
    while True:
        step = query if after is None else query.where(tuple_(commits.c.repo, commits.c.id) > after)
        with catalog.read() as conn:
            rows = conn.execute(step).all()
        for row in rows:
            yield Root(row.repo, row.id, row.tree)
        if len(rows) < page:
            return
        after = (rows[-1].repo, rows[-1].id)
