"""File content cached in fixed-size blocks keyed by (content hash, block index).

A file's content hash (BLAKE3 of its bytes) names immutable bytes, so a block cached
once serves every later read of those bytes at any path, branch or commit, and is never
stale. Blocks are evicted least recently used first once the cache holds more than its
capacity in bytes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

__all__ = ["BlockCache"]


class BlockCache:
    """At most ``capacity`` bytes of blocks (0: cache nothing); safe across threads."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._blocks: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int]) -> bytes | None:
        """The block ``(content hash, index)``, or None if it is not held."""
        with self._lock:
            block = self._blocks.get(key)
            if block is not None:
                self._blocks.move_to_end(key)
            return block

    def put(self, key: tuple[str, int], block: bytes) -> None:
        """Hold ``block``, evicting the least recently used ones over capacity."""
        if len(block) > self.capacity:
            return
        with self._lock:
            old = self._blocks.pop(key, None)
            if old is not None:
                self._size -= len(old)
            self._blocks[key] = block
            self._size += len(block)
            while self._size > self.capacity:
                _, evicted = self._blocks.popitem(last=False)
                self._size -= len(evicted)

    @property
    def size(self) -> int:
        """Bytes held now."""
        return self._size
