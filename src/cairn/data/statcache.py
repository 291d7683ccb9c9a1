"""The stat cache: which local files were stored already, so a put again reads nothing.

Like git's index and DVC's state database, a put of local files remembers,
per absolute path, the file's size, mtime, ctime, inode and device and the
Content it was stored as. When a later put finds all five unchanged, it takes
the Content from here without opening the file. A file changed within
``RACY_SECONDS`` of being recorded is not recorded (its mtime may not move on
the next edit: git's "racily clean" problem); the window is 0.1 s where the
file system keeps sub-second mtimes, 2 s where it keeps whole seconds.

The cache is a hint, never the truth: before a commit uses a cached Content,
the put checks that its chunks are still stored (garbage collection may have
removed them), and stores the file again when they are not. It lives in the
store's home folder as an SQLite file of its own (``statcache.db``), private to
this machine, since the paths are.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path

from cairn.storage import ChunkRef, Content

__all__ = ["StatCache"]

RACY_SECONDS = 2.0
FINE_RACY_SECONDS = 0.1


def _racy_window(st: os.stat_result) -> float:
    """How recent an mtime is too recent to trust: 0.1 s on file systems that keep
    sub-second times (ext4, XFS, btrfs, APFS tick in milliseconds or finer), 2 s where
    the mtime is whole seconds (FAT keeps 2 s, some network file systems 1 s)."""
    return FINE_RACY_SECONDS if st.st_mtime_ns % 1_000_000_000 else RACY_SECONDS


_FLUSH_EVERY = 10_000


def _key(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


class StatCache:
    """Local path + stat -> Content, in ``path`` (an SQLite file). Thread-safe."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER,"
            " mtime_ns INTEGER, ctime_ns INTEGER, ino INTEGER, dev INTEGER, content TEXT)"
        )
        self._lock = threading.Lock()
        self._loaded: dict[str, tuple[tuple[int, int, int, int, int], str]] = {}
        self._new: list[tuple[object, ...]] = []

    def preload(self, folder: str | os.PathLike[str]) -> None:
        """Read the entries below ``folder`` (an absolute path) in one query. Lookups see
        only what was preloaded, so a put of many files asks the file once."""
        prefix = os.path.join(os.fspath(folder), "")
        rows = self._db.execute(
            "SELECT path, size, mtime_ns, ctime_ns, ino, dev, content FROM files"
            " WHERE path >= ? AND path < ?",
            (prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)),
        ).fetchall()
        with self._lock:
            for path, *stat, content in rows:
                self._loaded[path] = (tuple(stat), content)  # type: ignore[assignment]

    def lookup(self, path: str, st: os.stat_result) -> Content | None:
        """The Content recorded for ``path`` if its stat is unchanged, else None."""
        hit = self._loaded.get(path)
        if hit is None:
            return None
        stat, content = hit
        if stat != _key(st):
            return None
        h, size, chunks = json.loads(content)
        return Content(h, size, tuple(ChunkRef(c, n) for c, n in chunks))

    def record(self, path: str, st: os.stat_result, content: Content) -> None:
        """Remember ``content`` for ``path``; written out by ``save`` (or every 10,000)."""
        if time.time() - st.st_mtime_ns / 1e9 < _racy_window(st):
            return
        body = json.dumps([content.hash, content.size, [[c.hash, c.size] for c in content.chunks]])
        with self._lock:
            self._new.append((path, *_key(st), body))
            full = len(self._new) >= _FLUSH_EVERY
        if full:
            self.save()

    def forget(self, path: str) -> None:
        with self._lock:
            self._loaded.pop(path, None)
            self._db.execute("DELETE FROM files WHERE path = ?", (path,))

    def save(self) -> None:
        """Write recorded entries to the file."""
        with self._lock:
            rows, self._new = self._new, []
        if rows:
            with self._lock:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT OR REPLACE INTO files"
                    " (path, size, mtime_ns, ctime_ns, ino, dev, content)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                self._db.execute("COMMIT")

    def close(self) -> None:
        self.save()
        self._db.close()
