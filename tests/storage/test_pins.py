"""Pins (cairn.storage.pins): the chunk and tree stores pin every key before they look
for it or write it, which is what lets garbage collection run beside them."""

from __future__ import annotations

import io
import random
from collections.abc import Collection

import blake3

from cairn.data.tree import FileEntry, TreeStore
from cairn.storage import ChunkRef, ChunkStore, Content, MemoryChunkIndex, MemoryObjectStore, Pins
from cairn.storage.chunks import chunk_key

Log = list[tuple[str, str]]  # (event, key), in order


class RecordingPins(Pins):
    def __init__(self, log: Log) -> None:
        self.log = log

    def pin(self, keys: Collection[str]) -> None:
        self.log.extend(("pin", key) for key in keys)


class RecordingObjects(MemoryObjectStore):
    def __init__(self, log: Log) -> None:
        super().__init__()
        self.log = log

    def exists(self, key: str) -> bool:
        self.log.append(("exists", key))
        return super().exists(key)

    def put(self, key: str, data: bytes) -> None:
        self.log.append(("put", key))
        super().put(key, data)


class RecordingIndex(MemoryChunkIndex):
    def __init__(self, log: Log) -> None:
        super().__init__()
        self.log = log

    def find(self, hashes: Collection[str]):  # type: ignore[no-untyped-def]
        self.log.extend(("find", chunk_key(h)) for h in hashes)
        return super().find(hashes)


def unpinned(log: Log) -> list[tuple[str, str]]:
    """Looks and writes of chunks, packs and tree nodes with no pin of their key before."""
    pinned: set[str] = set()
    out = []
    for event, key in log:
        if event == "pin":
            pinned.add(key)
        elif key.split("/")[0] in ("chunks", "packs", "trees") and key not in pinned:
            out.append((event, key))
    return out


def blob(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def test_every_chunk_and_pack_is_pinned_before_it_is_looked_for_or_written():
    log: Log = []
    store = ChunkStore(
        RecordingObjects(log),
        avg_size=256,
        index=RecordingIndex(log),
        pack_size=300,
        pins=RecordingPins(log),
    )
    bodies = [blob(i, size) for i, size in enumerate((40, 100, 900, 3000, 60, 5000))]
    contents = [store.write(io.BytesIO(b)) for b in bodies]
    store.flush()
    again = [store.write(io.BytesIO(b)) for b in bodies]  # every chunk found stored
    store.flush()
    assert again == contents
    assert store.missing(ref for c in contents for ref in c.chunks) == set()
    kinds = {key.split("/")[0] for event, key in log if event == "put"}
    assert kinds == {"chunks", "packs"}
    assert unpinned(log) == []


def test_a_chunk_found_in_the_buffer_during_its_flush_is_pinned_after_that():
    """A writer that finds a chunk in the pack buffer while a flush that took it is under
    way may have begun after that flush's pins: the flush pins it once more."""
    log: Log = []
    small = blob(7, 50)
    store: ChunkStore

    class Index(RecordingIndex):
        def find(self, hashes: Collection[str]):  # type: ignore[no-untyped-def]
            if not any(event == "second writer" for event, _ in log):
                log.append(("second writer", ""))
                store.write(io.BytesIO(small))  # found in the buffer: not buffered again
            return super().find(hashes)

    store = ChunkStore(
        RecordingObjects(log), avg_size=256, index=Index(log), pins=RecordingPins(log)
    )
    content = store.write(io.BytesIO(small))
    store.flush()
    key = chunk_key(content.hash)
    hit = log.index(("second writer", ""))
    assert ("pin", key) in log[hit:]


def test_every_tree_node_is_pinned_before_it_is_written():
    log: Log = []
    trees = TreeStore(RecordingObjects(log), pins=RecordingPins(log))
    entry = FileEntry(Content.empty())
    root = trees.apply(None, {f"d{i}/e/f{j}": entry for i in range(3) for j in range(3)})
    trees.apply(root, {"d0/e/f0": None, "g": entry})
    assert sum(event == "put" for event, _ in log) >= 6
    assert unpinned(log) == []


def test_a_chunk_store_without_pins_pins_nothing():
    store = ChunkStore(MemoryObjectStore(), avg_size=256)
    content = store.write(io.BytesIO(blob(1, 4000)))
    store.flush()
    assert store.read_bytes(content) == blob(1, 4000)


class CountingPins(RecordingPins):
    def __init__(self, log: Log) -> None:
        super().__init__(log)
        self.calls = 0

    def pin(self, keys: Collection[str]) -> None:
        self.calls += 1
        super().pin(keys)


def test_chunks_a_client_sent_are_pinned_first_and_loose_ones_in_one_transaction():
    log: Log = []
    pins = CountingPins(log)
    store = ChunkStore(RecordingObjects(log), avg_size=256, index=RecordingIndex(log), pins=pins)
    chunks = [blob(i, size) for i, size in enumerate((600, 40, 700, 900, 60, 1000))]
    sent = [(blake3.blake3(c).hexdigest(), c) for c in chunks]
    store.put_chunks(sent)
    assert pins.calls == 1  # the four loose ones; the small ones wait for the flush
    store.flush()
    assert unpinned(log) == []
    assert [store.read_chunk(ChunkRef(h, len(c))) for h, c in sent] == chunks
