"""storage: bytes, not repos. The lowest layer of cairn.

Owns
    * object stores (``objects.py``): write-once key -> bytes maps chosen by URL
      (``file://``, ``memory://``), atomic puts (temporary name, then rename);
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
    trees/<h[:2]>/<h>     tree nodes (written by cairn.data)
    logs/…                datum logs (written by cairn.pipelines)

Packing small chunks into packs (DESIGN.md) is not built yet; the chunk key
is the only thing a pack index has to map, so packs slot in under
``ChunkStore.read_chunk`` / ``_put_chunk`` without touching the layers above.
"""

from cairn.storage.chunks import DEFAULT_AVG_CHUNK, ChunkRef, ChunkStore, Content
from cairn.storage.errors import (
    CairnError,
    CorruptObject,
    ObjectNotFound,
    StorageError,
    UnsupportedBackend,
)
from cairn.storage.objects import (
    LocalObjectStore,
    MemoryObjectStore,
    ObjectStore,
    open_object_store,
)

__all__ = [
    "DEFAULT_AVG_CHUNK",
    "CairnError",
    "ChunkRef",
    "ChunkStore",
    "Content",
    "CorruptObject",
    "LocalObjectStore",
    "MemoryObjectStore",
    "ObjectNotFound",
    "ObjectStore",
    "StorageError",
    "UnsupportedBackend",
    "open_object_store",
]
