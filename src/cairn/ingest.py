"""Ingest of many local files in several processes: every core hashes and compresses.

Threads share one interpreter, and for small files most of the cost is the
interpreter's (opening, hashing and framing 20,000 files of 10 KiB is
~100 µs of Python each), so a put of a folder of small files uses one core
however many threads it has. ``ProcessIngest`` forks one worker per core;
each opens its own catalog connection and chunk store over the same object
folder, stores the files it is sent (its small chunks go into its own packs,
indexed in the shared catalog), and returns each file's Content and stat.
Before the put commits, every worker flushes its pack buffer, so the commit
never refers to a chunk that is not stored and indexed.

It lives beside the facade, not in ``cairn.data``: nothing below the pipelines
layer starts a process (DESIGN.md); ``DataStore.put_files`` takes it as its
``bulk`` argument. Used only where that is safe and pays: a local object folder (a forked boto3
client is not safe to share), a catalog reachable by URL (not an in-memory
SQLite), Linux's ``fork``, two or more cores, and thousands of files. Workers
are forked before the put starts any thread of its own.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from multiprocessing.connection import Connection, wait
from typing import Any

from cairn.catalog import CatalogChunkIndex, open_catalog
from cairn.storage import ChunkStore, Content, LocalObjectStore, StorageError

__all__ = ["MIN_FILES", "ProcessIngest", "usable"]

MIN_FILES = 2_000  # below this, forking costs more than it saves (files.BULK_MIN)
_TASK = 64  # files per message
_AHEAD = 2  # tasks in flight per worker


def usable(chunks: ChunkStore, catalog_url: str, files: int) -> bool:
    """Whether a put of ``files`` local files should use ProcessIngest."""
    return (
        files >= MIN_FILES
        and (os.cpu_count() or 1) > 1
        and isinstance(chunks.objects, LocalObjectStore)
        and "fork" in multiprocessing.get_all_start_methods()
        and not (catalog_url.startswith("sqlite") and ":memory:" in catalog_url)
        and catalog_url not in ("sqlite://", "sqlite:///")
    )


def _work(conn: Connection, chunks: ChunkStore, catalog_url: str) -> None:
    # A fresh catalog connection: the parent's engine must not be used across fork.
    catalog = open_catalog(catalog_url)
    store = ChunkStore(
        chunks.objects,
        avg_size=chunks.avg_size,
        index=CatalogChunkIndex(catalog),
        pack_size=chunks.pack_size,
    )
    try:
        while True:
            task = conn.recv()
            if task is None:
                store.flush()
                conn.send("flushed")
                return
            out: list[tuple[str, Any, Any]] = []
            for name in task:
                try:
                    content, st = store.write_path(name)
                    out.append((name, content, st))
                except OSError as exc:
                    out.append((name, exc, None))
            conn.send(out)
    finally:
        catalog.dispose()


class ProcessIngest:
    """A pool of forked workers that store local files. Use as a context manager."""

    def __init__(self, chunks: ChunkStore, catalog_url: str, workers: int | None = None) -> None:
        self.chunks = chunks
        self.catalog_url = catalog_url
        self.workers = workers or min(os.cpu_count() or 1, 8)
        self._procs: list[tuple[Any, Connection]] = []

    def __enter__(self) -> ProcessIngest:
        ctx = multiprocessing.get_context("fork")
        for _ in range(self.workers):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_work, args=(child, self.chunks, self.catalog_url))
            proc.daemon = True
            proc.start()
            child.close()
            self._procs.append((proc, parent))
        return self

    def __exit__(self, *exc: object) -> None:
        for proc, conn in self._procs:
            conn.close()
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
        self._procs = []

    def __call__(self, names: list[str]) -> Iterator[tuple[str, Content, os.stat_result]]:
        """Fork the workers, store ``names`` (see ``store``), stop the workers."""
        with self:
            yield from self.store(names)

    def store(self, names: list[str]) -> Iterator[tuple[str, Content, os.stat_result]]:
        """Store these local files; yield (name, Content, stat) as workers finish them, in
        no set order, and return once every worker's packs are stored and indexed.
        Raises OSError for an unreadable file, StorageError if a worker dies."""
        tasks = [names[i : i + _TASK] for i in range(0, len(names), _TASK)]
        busy: dict[Connection, int] = {}
        for _, conn in self._procs:
            busy[conn] = 0
            for _ in range(_AHEAD):
                if tasks:
                    self._send(conn, tasks.pop())
                    busy[conn] += 1
        while any(busy.values()):
            for ready in wait([c for c, n in busy.items() if n]):
                assert isinstance(ready, Connection)
                conn = ready
                results = self._recv(conn)
                busy[conn] -= 1
                if tasks:
                    self._send(conn, tasks.pop())
                    busy[conn] += 1
                for name, content, st in results:
                    if isinstance(content, OSError):
                        raise content
                    yield name, content, st
        for _, conn in self._procs:
            self._send(conn, None)
        for _, conn in self._procs:
            if self._recv(conn) != "flushed":
                raise StorageError("an ingest worker did not flush its packs")

    @staticmethod
    def _send(conn: Connection, message: object) -> None:
        try:
            conn.send(message)
        except OSError as exc:
            raise StorageError(f"an ingest worker died: {exc!r}") from exc

    @staticmethod
    def _recv(conn: Connection) -> Any:
        try:
            return conn.recv()
        except (EOFError, OSError) as exc:
            raise StorageError(f"an ingest worker died: {exc!r}") from exc
