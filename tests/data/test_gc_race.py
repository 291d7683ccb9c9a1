"""Garbage collection beside writers that reuse garbage (issue 20, section 2).

A put that finds a chunk, a packed chunk or a tree node stored already does not write
it; when no commit reaches that object, a collection running meanwhile must not
delete it. The writer and the collector are two DataStores over one catalog and one
object store, as two processes would be; the collections run at fixed points of the
put (no sleeps), with ``grace`` 0.
"""

from __future__ import annotations

import io
import random
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from cairn.catalog import CatalogChunkIndex
from cairn.catalog.schema import leases, pins
from cairn.data import DataStore
from cairn.data.fsck import check_store
from cairn.data.gc import _Collector, collect_garbage
from cairn.storage import ChunkStore

from .helpers import files

AVG = 256  # chunks of 64..1024 bytes; those under 128 bytes are packed


def blob(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


# Loose chunks (the large file), a packed chunk (the small file and the large one's
# tail, maybe) and tree nodes (the root and folder ``d``), all as a deleted repo left them.
FILES = {"big.bin": blob(1, 4000), "d/small.bin": blob(2, 90), "d/other.bin": blob(3, 60)}


@pytest.fixture
def make_pair(make_store: Callable[..., DataStore]) -> Callable[[], tuple[DataStore, DataStore]]:
    """(writer, collector): two DataStores over one catalog and one object store, each
    with its own chunk store (pack buffer, caches) and its own pins, like two processes."""

    def make() -> tuple[DataStore, DataStore]:
        writer = make_store(avg_size=AVG)
        catalog, objects = writer.catalog, writer.chunks.objects
        chunks = ChunkStore(objects, avg_size=AVG, index=CatalogChunkIndex(catalog))
        return writer, DataStore(catalog, chunks)

    return make


def make_garbage(store: DataStore) -> set[str]:
    """Put FILES in a repo and delete it; return the keys of what it left behind."""
    store.create_repo("old")
    store.put_files("old", None, [(p, io.BytesIO(b)) for p, b in FILES.items()])
    store.delete_repo("old")
    objects = store.chunks.objects
    garbage = {k for prefix in ("chunks/", "packs/", "trees/") for k in objects.list(prefix)}
    assert {k.split("/")[0] for k in garbage} == {"chunks", "packs", "trees"}
    return garbage


def fresh_reader(store: DataStore) -> DataStore:
    """A DataStore without the writer's caches, so reads go to the stores."""
    chunks = ChunkStore(store.chunks.objects, avg_size=AVG, index=CatalogChunkIndex(store.catalog))
    return DataStore(store.catalog, chunks)


def test_a_collection_between_dedup_and_commit_keeps_what_the_put_reuses(make_pair):
    writer, collector = make_pair()
    garbage = make_garbage(writer)
    writer.create_repo("new")
    reports = []
    flush = writer.chunks.flush

    def flush_then_collect() -> None:
        # CommitLog.update_tree flushes once the tree is written and just before its commit:
        # every "already stored" decision of this put has been made, none is committed yet.
        flush()
        if not reports:
            reports.append(collect_garbage(collector, grace=0))

    writer.chunks.flush = flush_then_collect  # type: ignore[method-assign]
    writer.put_files("new", None, [(p, io.BytesIO(b)) for p, b in FILES.items()])
    writer.chunks.flush = flush  # type: ignore[method-assign]

    [report] = reports
    assert report.kept_pinned > 0
    objects = writer.chunks.objects
    left = {k for prefix in ("chunks/", "packs/", "trees/") for k in objects.list(prefix)}
    assert left == garbage  # reused whole: nothing written again, nothing deleted
    assert files(fresh_reader(writer), "new@master") == FILES
    assert check_store(collector).ok


def test_a_collection_paused_after_its_mark_keeps_what_a_put_reuses(make_pair, monkeypatch):
    writer, collector = make_pair()
    make_garbage(writer)
    writer.create_repo("new")
    marked, resume = threading.Event(), threading.Event()
    sweep = _Collector._sweep

    def sweep_after_pause(self: _Collector, *args: Any, **kwargs: Any) -> None:
        if not marked.is_set():  # the first sweep: the mark and its re-reads are done
            marked.set()
            assert resume.wait(60)
        sweep(self, *args, **kwargs)

    monkeypatch.setattr(_Collector, "_sweep", sweep_after_pause)
    outcome: list[Any] = []
    thread = threading.Thread(target=lambda: outcome.append(collect_garbage(collector, grace=0)))
    thread.start()
    try:
        assert marked.wait(60)
        # The whole put, dedup decisions and commit, lands after the collection marked.
        writer.put_files("new", None, [(p, io.BytesIO(b)) for p, b in FILES.items()])
    finally:
        resume.set()
        thread.join(60)
    assert outcome and outcome[0].kept_pinned > 0
    assert files(fresh_reader(writer), "new@master") == FILES
    assert check_store(collector).ok


def test_a_collection_after_the_put_removes_what_no_commit_reaches(make_pair):
    writer, collector = make_pair()
    garbage = make_garbage(writer)
    report = collect_garbage(collector, grace=0)
    assert report.kept_pinned == 0
    assert report.objects_removed == len(garbage)
    # Closed leases leave no pins behind, so nothing is spared for them.
    assert leases_and_pins(writer) == (0, 0)


def leases_and_pins(store: DataStore) -> tuple[int, int]:
    with store.catalog.read() as conn:
        return (
            conn.execute(select(func.count()).select_from(leases)).scalar_one(),
            conn.execute(select(func.count()).select_from(pins)).scalar_one(),
        )
