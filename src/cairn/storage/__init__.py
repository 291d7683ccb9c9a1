"""storage: bytes, not repos. The lowest layer of cairn.

Owns
    * object stores: write-once key -> bytes maps (the interface in ``base.py``),
      chosen by URL scheme in ``backends.py``, which imports a backend's module only
      when a URL of it is opened: ``file://`` and ``memory://`` (``objects.py``),
      ``s3://`` (``s3.py``, with the ``s3`` extra); no backend imports another.
      Puts are atomic (temporary name then rename; on S3 a conditional PutObject);
    * the chunk store (``chunks.py``): FastCDC content-defined chunks named by
      BLAKE3, zstd-compressed when that saves space.

Invariants
    * An object, once visible under a key, never changes. Keys are content
      hashes or fresh ids, so a second put of a key is a no-op.
    * A crash mid-write leaves at worst a ``.tmp-*`` file or an unreferenced
      chunk: garbage, never a torn object.
    * Nothing here knows what a repo, commit or path is, and nothing here
      starts a process.

Layout of the embedded store's object folder::

    chunks/<h[:2]>/<h>    one chunk: codec byte (0 raw, 1 zstd) + payload
    packs/<h[:2]>/<h>     many small chunks, same framing, footer index (packs.py)
    trees/<h[:2]>/<h>     tree nodes (written by cairn.data)
    logs/…                datum logs (written by cairn.pipelines)

    * packs (``packs.py``): small chunks stored many to an object, found
      through a ChunkIndex (the catalog's in a real store);
    * pins (``pins.py``): the keys a writer is about to reuse or write, recorded
      before it looks for them or writes them, so that garbage collection (which
      lives in cairn.data) spares them; the catalog keeps them (cairn.catalog.pins).
"""

from cairn.storage.backends import open_object_store
from cairn.storage.base import ObjectStore
from cairn.storage.chunks import (
    DEFAULT_AVG_CHUNK,
    DEFAULT_PACK_SIZE,
    ChunkRef,
    ChunkStore,
    Content,
)
from cairn.storage.errors import (
    CairnError,
    CorruptObject,
    NotRegularFile,
    ObjectNotFound,
    StorageError,
    UnsupportedBackend,
)
from cairn.storage.objects import LocalObjectStore, MemoryObjectStore
from cairn.storage.packs import ChunkIndex, ChunkLocation, MemoryChunkIndex
from cairn.storage.pins import Pins

__all__ = [
    "DEFAULT_AVG_CHUNK",
    "DEFAULT_PACK_SIZE",
    "CairnError",
    "ChunkIndex",
    "ChunkLocation",
    "ChunkRef",
    "ChunkStore",
    "Content",
    "CorruptObject",
    "LocalObjectStore",
    "MemoryChunkIndex",
    "MemoryObjectStore",
    "NotRegularFile",
    "ObjectNotFound",
    "ObjectStore",
    "Pins",
    "StorageError",
    "UnsupportedBackend",
    "open_object_store",
]
