"""Helpers shared by the DataStore tests: reading commits back, and streams for puts."""

from __future__ import annotations

import io
import random

from cairn.data import CommitInfo, DataStore, parse_ref


def read(store: DataStore, ref: str) -> bytes:
    return b"".join(store.read_file(parse_ref(ref)))


def files(store: DataStore, ref: str) -> dict[str, bytes]:
    """Every file of a commit as {path: bytes}."""
    return {
        path: store.chunks.read_bytes(entry.content)
        for path, entry in store.walk_files(parse_ref(ref))
    }


def put_bytes(
    store: DataStore, repo: str, target: str | None, path: str, data: bytes
) -> CommitInfo:
    """Put one file held in memory: ``repo@target:path`` (target None: master), committed."""
    return store.put_files(repo, target, [(path, io.BytesIO(data))])


def history(store: DataStore, repo: str, branch: str = "master") -> list[str]:
    return [c.id for c in store.list_commits(repo, branch)]


class PatternReader:
    """A large pseudo-random stream made on the fly: memory holds one block, not the file."""

    def __init__(self, size: int, seed: int = 0, block: int = 64 * 1024) -> None:
        self.remaining = size
        self._rng = random.Random(seed)
        self._block = block
        self._buffer = b""
        self.largest_read = 0

    def read(self, n: int = -1) -> bytes:
        if not self._buffer and self.remaining:
            self._buffer = self._rng.randbytes(min(self._block, self.remaining))
            self.remaining -= len(self._buffer)
        take = len(self._buffer) if n < 0 else n
        piece, self._buffer = self._buffer[:take], self._buffer[take:]
        self.largest_read = max(self.largest_read, len(piece))
        return piece


class FailingReader:
    """A stream that breaks after ``good`` bytes, like a dropped upload."""

    def __init__(self, good: int) -> None:
        self._left = good

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            raise OSError("connection reset")
        piece = b"z" * min(n if n >= 0 else self._left, self._left)
        self._left -= len(piece)
        return piece
