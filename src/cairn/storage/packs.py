"""Packs: many small chunks stored as one object, and the index that finds them.

Small files and the small chunks at the ends of large files would otherwise
each be an object of their own, so a folder of 20,000 images would cost
20,000 object writes (20,000 fsyncs on disk, 20,000 PUT requests on S3).
The chunk store buffers such chunks and writes them in packs of tens of MiB.

Format of a pack object ``packs/<h[:2]>/<h>``, where ``h`` is the BLAKE3 hash
of the whole object::

    b"CAIRNPK1"                         magic, 8 bytes
    frame, frame, ...                   each frame is a chunk object exactly as stored
                                        loose (codec byte + payload, see chunks.py)
    footer                              zstd frame of canonical JSON:
                                        [[chunk hash, offset, length, size], ...]
    footer length                       8 bytes, unsigned little-endian
    b"CAIRNPK1"                         magic again

``offset`` and ``length`` locate the frame in the pack (bytes), ``size`` is the
chunk's raw length. The footer makes every pack self-describing, so ``fsck``
can check a pack and rebuild index entries from the object store alone.

The **chunk index** maps a chunk hash to its pack location. Reads look a chunk
up there first and fall back to the loose key ``chunks/<h[:2]>/<h>``; writes
ask it which buffered chunks are stored already (that is the deduplication of
small chunks). The embedded and PostgreSQL catalogs hold it in a table
(cairn.catalog.chunk_index); ``MemoryChunkIndex`` serves tests.
"""

from __future__ import annotations

import json
import struct
import threading
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass

import blake3
import zstandard

from cairn.storage.errors import CorruptObject

__all__ = [
    "PACK_MAGIC",
    "ChunkIndex",
    "ChunkLocation",
    "MemoryChunkIndex",
    "encode_pack",
    "pack_key",
    "read_pack_footer",
]

PACK_MAGIC = b"CAIRNPK1"
_TRAILER = struct.Struct("<Q")


@dataclass(frozen=True, slots=True)
class ChunkLocation:
    """Where a packed chunk lives: ``pack`` object key, byte ``offset`` and ``length`` of its
    frame there, and the chunk's raw ``size`` in bytes."""

    hash: str
    pack: str
    offset: int
    length: int
    size: int


def pack_key(digest: str) -> str:
    return f"packs/{digest[:2]}/{digest}"


def encode_pack(frames: Iterable[tuple[str, bytes, int]]) -> tuple[str, bytes, list[ChunkLocation]]:
    """Lay out ``(chunk hash, frame, raw size)`` triples as one pack.

    Returns the pack's key, its bytes and the location of every chunk in it.
    """
    parts = [PACK_MAGIC]
    offset = len(PACK_MAGIC)
    rows: list[tuple[str, int, int, int]] = []
    for digest, frame, size in frames:
        parts.append(frame)
        rows.append((digest, offset, len(frame), size))
        offset += len(frame)
    footer = zstandard.compress(json.dumps(rows, separators=(",", ":")).encode(), 3)
    parts += [footer, _TRAILER.pack(len(footer)), PACK_MAGIC]
    body = b"".join(parts)
    key = pack_key(blake3.blake3(body, max_threads=blake3.blake3.AUTO).hexdigest())
    return key, body, [ChunkLocation(h, key, o, n, s) for h, o, n, s in rows]


def read_pack_footer(key: str, body: bytes) -> list[ChunkLocation]:
    """The locations a whole pack object lists in its footer. Raises CorruptObject."""
    tail = len(PACK_MAGIC) + _TRAILER.size
    if len(body) < len(PACK_MAGIC) + tail or not (
        body.startswith(PACK_MAGIC) and body.endswith(PACK_MAGIC)
    ):
        raise CorruptObject(f"pack {key} has no pack header or trailer")
    (length,) = _TRAILER.unpack_from(body, len(body) - tail)
    start = len(body) - tail - length
    if start < len(PACK_MAGIC):
        raise CorruptObject(f"pack {key} has a footer length past its start")
    try:
        rows = json.loads(zstandard.ZstdDecompressor().decompress(body[start : len(body) - tail]))
        locations = [ChunkLocation(str(h), key, int(o), int(n), int(s)) for h, o, n, s in rows]
    except (zstandard.ZstdError, ValueError, TypeError) as exc:
        raise CorruptObject(f"pack {key} has an unreadable footer: {exc}") from exc
    for loc in locations:
        if (
            loc.offset < len(PACK_MAGIC)
            or loc.length < 0
            or loc.size < 0
            or loc.offset + loc.length > start
        ):
            raise CorruptObject(f"pack {key} lists chunk {loc.hash} outside its frames")
    return locations


class ChunkIndex(ABC):
    """Chunk hash -> pack location. Every backend passes tests/storage/test_packs.py."""

    @abstractmethod
    def find(self, hashes: Collection[str]) -> dict[str, ChunkLocation]:
        """The locations of those ``hashes`` that are packed; absent ones are left out."""

    def contains(self, hashes: Collection[str]) -> set[str]:
        """Those ``hashes`` that are packed. Backends may answer faster than ``find``."""
        return set(self.find(hashes))

    @abstractmethod
    def add(self, locations: Collection[ChunkLocation]) -> None:
        """Record locations of chunks just packed. A hash already present keeps its first
        location (two writers may pack one chunk; either copy is good)."""

    @abstractmethod
    def remove(self, hashes: Collection[str]) -> None:
        """Forget these chunks (garbage collection only)."""

    @abstractmethod
    def relocate(self, locations: Collection[ChunkLocation]) -> None:
        """Point existing chunks at new locations (garbage collection's repacking)."""

    @abstractmethod
    def scan(self) -> Iterator[ChunkLocation]:
        """Every location, in no set order, without holding them all in memory."""


class MemoryChunkIndex(ChunkIndex):
    """A chunk index in a dict: the default of a ChunkStore built without a catalog."""

    def __init__(self) -> None:
        self._rows: dict[str, ChunkLocation] = {}
        self._lock = threading.Lock()

    def find(self, hashes: Collection[str]) -> dict[str, ChunkLocation]:
        rows = self._rows
        return {h: rows[h] for h in hashes if h in rows}

    def add(self, locations: Collection[ChunkLocation]) -> None:
        with self._lock:
            for loc in locations:
                self._rows.setdefault(loc.hash, loc)

    def remove(self, hashes: Collection[str]) -> None:
        with self._lock:
            for h in hashes:
                self._rows.pop(h, None)

    def relocate(self, locations: Collection[ChunkLocation]) -> None:
        with self._lock:
            for loc in locations:
                if loc.hash in self._rows:
                    self._rows[loc.hash] = loc

    def scan(self) -> Iterator[ChunkLocation]:
        return iter(list(self._rows.values()))
