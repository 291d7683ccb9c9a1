"""Ingest of many local files in several processes: every core hashes and compresses.

Threads share one interpreter, and for small files most of the cost is the
interpreter's (opening, hashing and framing 20,000 files of 10 KiB is
~100 µs of Python each), so a put of a folder of small files uses one core
however many threads it has. ``ProcessIngest`` starts one worker per core;
each opens its own catalog connection and chunk store over the same object
folder, stores the files it is sent (its small chunks go into its own packs,
indexed in the shared catalog; it pins what it stores or reuses, under the lease
of the put that started it), and returns each file's Content and stat.
Before the put commits, every worker flushes its pack buffer, so the commit
never refers to a chunk that is not stored and indexed.

It lives beside the facade, not in ``cairn.data``: nothing below the pipelines
layer starts a process (DESIGN.md); ``DataStore.put_files`` takes it as its
``bulk`` argument. Used only where that is safe and pays: a local object
folder (boto3 clients cannot be handed to another process), a catalog
reachable by URL (not an in-memory SQLite), two or more cores, and thousands
of files. Each worker is a fresh
interpreter (``python -m cairn.data.ingest``, about 0.3 s to import what it needs,
in parallel) talking over two pipes; neither fork (it copies locks that other
threads of the caller hold) nor multiprocessing's spawn (it re-runs the
caller's script) is safe for a library to use.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from cairn.catalog import CatalogChunkIndex, CatalogPins, open_catalog
from cairn.storage import ChunkStore, Content, LocalObjectStore, StorageError

__all__ = ["MIN_FILES", "ProcessIngest", "usable"]

MIN_FILES = 5_000  # below this, starting workers costs more than they save
_TASK = 64  # files per message
_AHEAD = 2  # tasks in flight per worker
Named = tuple[str, tuple[int, int] | None]  # a file's name, and its (device, inode) or None


def usable(chunks: ChunkStore, catalog_url: str, files: int) -> bool:
    """Whether a put of ``files`` local files should use ProcessIngest."""
    return (
        files >= MIN_FILES
        and (os.cpu_count() or 1) > 1
        and isinstance(chunks.objects, LocalObjectStore)
        and not (catalog_url.startswith("sqlite") and ":memory:" in catalog_url)
        and catalog_url not in ("sqlite://", "sqlite:///")
    )


def _work(tx: Connection, rx: Connection) -> None:
    """A worker's loop: its settings, then lists of file names, then None (flush, stop)."""
    root, fsync, avg_size, pack_size, catalog_url = rx.recv()
    catalog = open_catalog(catalog_url)
    store = ChunkStore(
        LocalObjectStore(root, fsync=fsync),
        avg_size=avg_size,
        index=CatalogChunkIndex(catalog),
        pack_size=pack_size,
        # Pins under the caller's lease, so a collection spares what the workers reuse.
        pins=CatalogPins(catalog),
    )
    try:
        while True:
            task = rx.recv()
            if task is None:
                store.flush()
                tx.send("flushed")
                return
            out: list[tuple[str, Any, Any]] = []
            for name, expect in task:
                try:
                    content, st = store.write_path(name, follow=expect is None, expect=expect)
                    out.append((name, content, st))
                except (OSError, StorageError) as exc:
                    out.append((name, exc, None))
            tx.send(out)
    finally:
        catalog.dispose()


@dataclass
class _Worker:
    proc: subprocess.Popen[bytes]
    tx: Connection  # to the worker
    rx: Connection  # from the worker


class ProcessIngest:
    """A pool of worker processes that store local files. Use as a context manager, or
    call it (``BulkStore``)."""

    def __init__(self, chunks: ChunkStore, catalog_url: str, workers: int | None = None) -> None:
        self.chunks = chunks
        self.catalog_url = catalog_url
        self.workers = workers or min(os.cpu_count() or 1, 8)
        self._pool: list[_Worker] = []

    def __enter__(self) -> ProcessIngest:
        # A fresh interpreter per worker (python -m cairn.data.ingest), not multiprocessing: a
        # fork copies locks other threads of the caller hold, and spawn re-runs the
        # caller's script, which a user's script without a __main__ guard cannot bear.
        objects = self.chunks.objects
        assert isinstance(objects, LocalObjectStore)
        settings = (
            str(objects.root),
            objects.fsync,
            self.chunks.avg_size,
            self.chunks.pack_size,
            self.catalog_url,  # sent over the pipe, never on a command line
        )
        try:
            for _ in range(self.workers):
                to_child, from_parent = os.pipe()
                to_parent, from_child = os.pipe()
                proc = subprocess.Popen(
                    [sys.executable, "-m", "cairn.data.ingest", str(to_child), str(from_child)],
                    pass_fds=(to_child, from_child),
                    stdin=subprocess.DEVNULL,
                )
                os.close(to_child)
                os.close(from_child)
                worker = _Worker(
                    proc,
                    Connection(from_parent, readable=False),
                    Connection(to_parent, writable=False),
                )
                self._pool.append(worker)
                self._send(worker, settings)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for worker in self._pool:
            worker.tx.close()
            worker.rx.close()
            try:
                worker.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()
        self._pool = []

    def __call__(self, names: list[Named]) -> Iterator[tuple[str, Content, os.stat_result]]:
        """Start the workers, store ``names`` (see ``store``), stop the workers."""
        with self:
            yield from self.store(names)

    def store(self, names: list[Named]) -> Iterator[tuple[str, Content, os.stat_result]]:
        """Store these local files, each (name, (device, inode) it must be, or None to
        follow links: see ``ChunkStore.write_path``); yield (name, Content, stat) as workers
        finish them, in no set order, and return once every worker's packs are stored and
        indexed. Raises OSError for an unreadable file, NotRegularFile, StorageError if a
        worker dies."""
        tasks = [names[i : i + _TASK] for i in range(0, len(names), _TASK)]
        busy = {id(w.rx): 0 for w in self._pool}
        by_rx = {id(w.rx): w for w in self._pool}
        for worker in self._pool:
            for _ in range(_AHEAD):
                if tasks:
                    self._send(worker, tasks.pop())
                    busy[id(worker.rx)] += 1
        while any(busy.values()):
            for ready in wait([by_rx[k].rx for k, n in busy.items() if n]):
                worker = by_rx[id(ready)]
                results = self._recv(worker)
                busy[id(ready)] -= 1
                if tasks:
                    self._send(worker, tasks.pop())
                    busy[id(ready)] += 1
                for name, content, st in results:
                    if isinstance(content, OSError | StorageError):
                        raise content
                    yield name, content, st
        for worker in self._pool:
            self._send(worker, None)
        for worker in self._pool:
            if self._recv(worker) != "flushed":
                raise StorageError("an ingest worker did not flush its packs")

    @staticmethod
    def _send(worker: _Worker, message: object) -> None:
        try:
            worker.tx.send(message)
        except OSError as exc:
            raise StorageError(f"an ingest worker died: {exc!r}") from exc

    @staticmethod
    def _recv(worker: _Worker) -> Any:
        try:
            return worker.rx.recv()
        except (EOFError, OSError) as exc:
            raise StorageError(f"an ingest worker died: {exc!r}") from exc


if __name__ == "__main__":
    _work(
        Connection(int(sys.argv[2]), readable=False), Connection(int(sys.argv[1]), writable=False)
    )
