"""Packs: the pack format, and a ChunkStore that buffers small chunks into packs.

Pins the format's round trip and its CorruptObject checks, the buffer's state machine
(buffered -> readable -> flushed into one pack, deduplicated against the index), the
location cache (prefetch, stale entries after garbage collection's repacking) and
``write_path`` agreeing with ``write``.
"""

from __future__ import annotations

import io
import json
import random
import struct
import threading
from collections.abc import Collection, Iterator
from pathlib import Path

import blake3
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from cairn.storage import (
    ChunkIndex,
    ChunkLocation,
    ChunkRef,
    ChunkStore,
    Content,
    CorruptObject,
    MemoryChunkIndex,
    MemoryObjectStore,
    ObjectNotFound,
    ObjectStore,
)
from cairn.storage.packs import PACK_MAGIC, encode_pack, pack_key, read_pack_footer

from .conftest import overwrite_object

AVG = 256  # FastCDC min 64, max 1024; chunks under 128 bytes are packed
_TRAILER = struct.Struct("<Q")


def make_store(objects: ObjectStore, *, pack_size: int = 1 << 20, index=None) -> ChunkStore:
    return ChunkStore(objects, avg_size=AVG, pack_size=pack_size, index=index)


def keys(objects: ObjectStore, prefix: str) -> list[str]:
    return sorted(objects.list(prefix))


def pack_bytes(objects: ObjectStore) -> int:
    return sum(len(objects.get(k)) for k in keys(objects, "packs/"))


def small(i: int, n: int = 60) -> bytes:
    """Distinct, incompressible small content (one packed chunk)."""
    return random.Random(i).randbytes(n)


def hex64(i: int) -> str:
    return blake3.blake3(str(i).encode()).hexdigest()


class CountingIndex(ChunkIndex):
    """A ChunkIndex that counts the queries made of it."""

    def __init__(self, inner: ChunkIndex) -> None:
        self.inner = inner
        self.finds = 0
        self.contains_calls = 0

    def find(self, hashes: Collection[str]) -> dict[str, ChunkLocation]:
        self.finds += 1
        return self.inner.find(hashes)

    def contains(self, hashes: Collection[str]) -> set[str]:
        self.contains_calls += 1
        return self.inner.contains(hashes)

    def add(self, locations: Collection[ChunkLocation]) -> None:
        self.inner.add(locations)

    def remove(self, hashes: Collection[str]) -> None:
        self.inner.remove(hashes)

    def relocate(self, locations: Collection[ChunkLocation]) -> None:
        self.inner.relocate(locations)

    def scan(self) -> Iterator[ChunkLocation]:
        return self.inner.scan()


# -- the pack format ------------------------------------------------------------------

frames = st.lists(
    st.tuples(
        st.binary(min_size=32, max_size=32).map(bytes.hex),
        st.binary(max_size=300),
        st.integers(0, 1 << 40),
    ),
    max_size=20,
)


@settings(max_examples=100, deadline=None)
@given(frames)
def test_encode_then_read_footer_round_trips(triples: list[tuple[str, bytes, int]]) -> None:
    key, body, locations = encode_pack(triples)

    assert key == pack_key(blake3.blake3(body).hexdigest())
    assert body.startswith(PACK_MAGIC) and body.endswith(PACK_MAGIC)
    assert read_pack_footer(key, body) == locations
    assert [
        (loc.hash, body[loc.offset : loc.offset + loc.length], loc.size) for loc in locations
    ] == [(h, f, s) for h, f, s in triples]
    assert all(loc.pack == key for loc in locations)


def _a_pack() -> tuple[str, bytes]:
    key, body, _ = encode_pack([(hex64(i), b"\x00" + small(i, 20), 20) for i in range(4)])
    return key, body


def _with_footer(rows: object, frames_part: bytes | None = None, raw: bytes | None = None) -> bytes:
    frames_part = frames_part if frames_part is not None else b"\x00" + b"x" * 20
    footer = raw if raw is not None else zstandard.compress(json.dumps(rows).encode(), 3)
    return PACK_MAGIC + frames_part + footer + _TRAILER.pack(len(footer)) + PACK_MAGIC


def test_every_truncation_of_a_pack_is_corrupt() -> None:
    key, body = _a_pack()
    for n in range(len(body)):
        with pytest.raises(CorruptObject):
            read_pack_footer(key, body[:n])


@pytest.mark.parametrize("where", ["head", "tail"])
def test_a_garbled_magic_is_corrupt(where: str) -> None:
    key, body = _a_pack()
    i = 0 if where == "head" else len(body) - 1
    garbled = body[:i] + bytes([body[i] ^ 0xFF]) + body[i + 1 :]
    with pytest.raises(CorruptObject):
        read_pack_footer(key, garbled)


@pytest.mark.parametrize("delta", [-1, 1, 1 << 40, -(1 << 20)])
def test_a_wrong_footer_length_is_corrupt(delta: int) -> None:
    key, body = _a_pack()
    at = len(body) - len(PACK_MAGIC) - _TRAILER.size
    (length,) = _TRAILER.unpack_from(body, at)
    garbled = body[:at] + _TRAILER.pack(max(0, length + delta)) + body[at + _TRAILER.size :]
    with pytest.raises(CorruptObject):
        read_pack_footer(key, garbled)


@pytest.mark.parametrize(
    "footer",
    [
        b"not a zstd frame",
        zstandard.compress(b"not json", 3),
        zstandard.compress(b'{"a": 1}', 3),
        zstandard.compress(b"[[1, 2, 3]]", 3),
        zstandard.compress(b'[["h", "eight", 1, 1]]', 3),
        zstandard.compress(b"[null]", 3),
        zstandard.compress(b"7", 3),
        zstandard.compress(b"\xff\xfe", 3),
    ],
)
def test_an_unreadable_footer_is_corrupt(footer: bytes) -> None:
    with pytest.raises(CorruptObject):
        read_pack_footer("packs/xx/k", _with_footer(None, raw=footer))


@pytest.mark.parametrize(
    "row",
    [
        [hex64(0), 0, 5, 5],  # starts in the magic
        [hex64(0), 7, 5, 5],
        [hex64(0), 8, 22, 22],  # runs into the footer
        [hex64(0), 1000, 1, 1],  # past the end
        [hex64(0), 29, 1, 1],
    ],
)
def test_a_footer_row_outside_the_frames_is_corrupt(row: list[object]) -> None:
    with pytest.raises(CorruptObject):
        read_pack_footer("packs/xx/k", _with_footer([row]))


def test_a_footer_row_at_the_very_end_of_the_frames_is_fine() -> None:
    body = _with_footer([[hex64(0), 8, 21, 20]])
    assert read_pack_footer("packs/xx/k", body) == [
        ChunkLocation(hex64(0), "packs/xx/k", 8, 21, 20)
    ]


def test_a_footer_row_with_a_negative_length_is_corrupt() -> None:
    with pytest.raises(CorruptObject):
        read_pack_footer("packs/xx/k", _with_footer([[hex64(0), 8, -5, 3]]))


# -- buffering and flushing ------------------------------------------------------------


def test_small_chunks_wait_in_the_buffer_and_read_before_flush(make_object_store) -> None:
    objects = make_object_store()
    store = make_store(objects)
    data = [small(i) for i in range(30)]
    contents = [store.write(io.BytesIO(d)) for d in data]

    assert keys(objects, "") == []
    assert [store.read_bytes(c) for c in contents] == data
    assert store.missing(ref for c in contents for ref in c.chunks) == set()

    store.flush()

    assert len(keys(objects, "packs/")) == 1
    assert keys(objects, "chunks/") == []
    assert {loc.hash for loc in store.index.scan()} == {c.hash for c in contents}
    assert [store.read_bytes(c) for c in contents] == data
    fresh = make_store(objects, index=store.index)
    assert [fresh.read_bytes(c) for c in contents] == data
    for c in contents:
        fresh.verify(c)


def test_flush_of_an_empty_buffer_writes_nothing(object_store: ObjectStore) -> None:
    store = make_store(object_store)
    store.flush()
    store.write(io.BytesIO(b""))
    store.flush()
    assert keys(object_store, "") == []


def test_large_chunks_are_stored_loose_at_once(object_store: ObjectStore) -> None:
    store = make_store(object_store)
    content = store.write(io.BytesIO(small(1, 5000)))
    loose = keys(object_store, "chunks/")
    assert len(loose) >= 2
    store.flush()
    assert store.read_bytes(content) == small(1, 5000)


def test_the_same_small_content_in_two_flushes_is_stored_once(make_object_store) -> None:
    objects = make_object_store()
    store = make_store(objects)
    first = store.write(io.BytesIO(small(7)))
    store.flush()
    before = pack_bytes(objects)

    again = store.write(io.BytesIO(small(7)))
    store.write(io.BytesIO(small(7)))
    store.flush()

    assert again == first
    assert pack_bytes(objects) == before
    assert len(keys(objects, "packs/")) == 1
    assert [loc.hash for loc in store.index.scan()] == [first.hash]
    assert store.read_bytes(again) == small(7)


def test_a_second_writer_sharing_the_index_deduplicates_at_flush() -> None:
    objects, index = MemoryObjectStore(), MemoryChunkIndex()
    a, b = make_store(objects, index=index), make_store(objects, index=index)
    a.write(io.BytesIO(small(1)))
    a.flush()
    before = pack_bytes(objects)
    b.write(io.BytesIO(small(1)))
    b.write(io.BytesIO(small(2)))
    b.flush()

    assert len(keys(objects, "packs/")) == 2
    assert pack_bytes(objects) - before < 2 * len(small(1)) + 200
    assert len(list(index.scan())) == 2


def test_a_full_buffer_is_flushed_while_writing() -> None:
    objects = MemoryObjectStore()
    store = make_store(objects, pack_size=1024)
    data = [small(i, 100) for i in range(100)]  # ~10 KiB of raw frames
    contents = [store.write(io.BytesIO(d)) for d in data]

    packs_before_flush = keys(objects, "packs/")
    assert len(packs_before_flush) >= 5
    for key in packs_before_flush:
        framed = sum(loc.length for loc in read_pack_footer(key, objects.get(key)))
        assert framed < 1024 + 101  # the buffer goes out once it holds pack_size bytes
    store.flush()
    chunk_hashes = {ref.hash for c in contents for ref in c.chunks}
    assert sorted(loc.hash for loc in store.index.scan()) == sorted(chunk_hashes)
    assert [store.read_bytes(c) for c in contents] == data


def test_concurrent_writers_then_flush_read_back_byte_identical() -> None:
    objects = MemoryObjectStore()
    store = make_store(objects, pack_size=2048)
    results: dict[int, tuple[bytes, Content]] = {}
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            rng = random.Random(t)
            for i in range(40):
                # Shared small contents (dedup across threads), private ones and large ones.
                n = rng.choice([0, 1, 30, 64, 65, 100, 127, 128, 900, 3000])
                data = small(i % 7, n) if i % 3 == 0 else rng.randbytes(n)
                results[t * 1000 + i] = (data, store.write(io.BytesIO(data)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    store.flush()

    fresh = make_store(objects, index=store.index)
    for data, content in results.values():
        assert fresh.read_bytes(content) == data
        assert content.hash == blake3.blake3(data).hexdigest()
    hashes = [loc.hash for loc in store.index.scan()]
    assert len(hashes) == len(set(hashes))
    every = {ref.hash for _, c in results.values() for ref in c.chunks}
    assert fresh.missing(ref for _, c in results.values() for ref in c.chunks) == set()
    assert set(hashes) <= every


# -- damage ---------------------------------------------------------------------------


@pytest.mark.parametrize("at", ["codec", "payload"])
def test_a_flipped_byte_in_a_pack_frame_fails_verify(make_object_store, at: str) -> None:
    objects = make_object_store()
    store = make_store(objects)
    content = store.write(io.BytesIO(small(3)))
    store.write(io.BytesIO(small(4)))
    store.flush()
    loc = store.index.find([content.hash])[content.hash]
    body = bytearray(objects.get(loc.pack))
    i = loc.offset + (0 if at == "codec" else loc.length // 2)
    body[i] ^= 0x5A
    overwrite_object(objects, loc.pack, bytes(body))

    fresh = make_store(objects, index=store.index)
    with pytest.raises(CorruptObject):
        fresh.verify(content)


def test_a_deleted_pack_is_not_found_on_read(make_object_store) -> None:
    objects = make_object_store()
    store = make_store(objects)
    content = store.write(io.BytesIO(small(5)))
    store.flush()
    assert store.read_bytes(content) == small(5)  # its location is cached now
    (key,) = keys(objects, "packs/")
    objects.delete(key)

    with pytest.raises(ObjectNotFound):
        store.read_bytes(content)
    with pytest.raises(ObjectNotFound):
        store.read_chunk(content.chunks[0])
    with pytest.raises(ObjectNotFound):
        make_store(objects, index=store.index).read_bytes(content)
    with pytest.raises(CorruptObject):
        store.verify(content)
    assert store.missing(content.chunks) == set()  # the index still lists it: fsck's job


def _repack(store: ChunkStore, content: Content) -> None:
    """What gc's rewrite does: the chunk's frame into a new pack, the row relocated, the
    old pack deleted."""
    objects = store.objects
    old = store.index.find([content.hash])[content.hash]
    frame = objects.get_range(old.pack, old.offset, old.length)
    key, body, locations = encode_pack(
        [(hex64(-1), b"\x00pad", 3), (content.hash, frame, content.size)]
    )
    objects.put(key, body)
    store.index.relocate([locations[1]])
    objects.delete(old.pack)


def test_a_stale_cached_location_is_retried_by_read_chunk(make_object_store) -> None:
    objects = make_object_store()
    store = make_store(objects)
    content = store.write(io.BytesIO(small(9)))
    store.flush()
    assert store.read_bytes(content) == small(9)
    _repack(store, content)

    assert store.read_chunk(content.chunks[0]) == small(9)
    assert store.read_bytes(content) == small(9)


def test_a_stale_cached_location_is_retried_by_read() -> None:
    store = make_store(MemoryObjectStore())
    content = store.write(io.BytesIO(small(9)))
    store.flush()
    assert store.read_bytes(content) == small(9)
    _repack(store, content)

    assert store.read_bytes(content) == small(9)
    store.verify(content)


def test_a_cached_miss_is_retried_once_the_chunk_is_packed_elsewhere() -> None:
    objects, index = MemoryObjectStore(), MemoryChunkIndex()
    reader, writer = make_store(objects, index=index), make_store(objects, index=index)
    data = small(11)
    digest = blake3.blake3(data).hexdigest()
    content = Content(digest, len(data), (ChunkRef(digest, len(data)),))
    reader.prefetch(content.chunks)  # caches "not packed"
    writer.write(io.BytesIO(data))
    writer.flush()

    assert reader.read_chunk(content.chunks[0]) == data
    assert reader.read_bytes(content) == data


# -- write_path ---------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 127, 128, 129, 1024, 20 * AVG + 17])
def test_write_path_gives_what_write_gives(tmp_path: Path, size: int) -> None:
    objects = MemoryObjectStore()
    store = make_store(objects)
    assert store._min_size == 64
    data = small(size, size)
    path = tmp_path / "f.bin"
    path.write_bytes(data)

    content, st_result = store.write_path(path)

    assert st_result.st_size == size
    assert content == make_store(MemoryObjectStore()).write(io.BytesIO(data))
    assert content.hash == blake3.blake3(data).hexdigest()
    assert content.size == size
    store.flush()
    assert make_store(objects, index=store.index).read_bytes(content) == data


def test_write_path_reports_progress_of_every_byte(tmp_path: Path) -> None:
    store = make_store(MemoryObjectStore())
    for size in (0, 10, 5000):
        seen: list[int] = []
        (tmp_path / "f").write_bytes(small(size, size))
        store.write_path(tmp_path / "f", progress=seen.append)
        assert sum(seen) == size


def test_write_path_of_a_missing_file_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        make_store(MemoryObjectStore()).write_path(tmp_path / "absent")


# -- missing and prefetch -----------------------------------------------------------


def test_missing_reports_removed_chunks(make_object_store) -> None:
    objects = make_object_store()
    store = make_store(objects)
    packed = store.write(io.BytesIO(small(1)))
    big = store.write(io.BytesIO(small(2, 3000)))
    store.flush()
    buffered = store.write(io.BytesIO(small(3)))
    refs = [*packed.chunks, *big.chunks, *buffered.chunks]
    assert store.missing(refs) == set()

    store.index.remove([packed.hash])
    loose = next(r for r in big.chunks if r.size >= 128)
    objects.delete(f"chunks/{loose.hash[:2]}/{loose.hash}")

    assert store.missing(refs) == {packed.hash, loose.hash}
    assert store.missing([]) == set()


def test_prefetch_then_read_asks_the_index_no_more() -> None:
    objects = MemoryObjectStore()
    writer = make_store(objects)
    data = [small(i, i % 120) for i in range(300)] + [small(-1, 4000)]
    contents = [writer.write(io.BytesIO(d)) for d in data]
    writer.flush()

    index = CountingIndex(writer.index)
    reader = make_store(objects, index=index)
    reader.prefetch(ref for c in contents for ref in c.chunks)
    assert index.finds == 1

    assert [reader.read_bytes(c) for c in contents] == data
    for c in contents:
        reader.verify(c)
    assert index.finds == 1


def test_without_prefetch_reads_still_ask_once_per_chunk_at_most() -> None:
    objects = MemoryObjectStore()
    writer = make_store(objects)
    contents = [writer.write(io.BytesIO(small(i))) for i in range(20)]
    writer.flush()
    index = CountingIndex(writer.index)
    reader = make_store(objects, index=index)
    for c in contents:
        reader.read_bytes(c)
        reader.read_bytes(c)
    assert index.finds == 20
