"""The chunk store: round trips, chunk boundaries, deduplication, codecs and corruption."""

from __future__ import annotations

import io
import os
import random
import threading
from collections.abc import Iterable, Iterator

import blake3
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from cairn.storage import (
    ChunkRef,
    ChunkStore,
    Content,
    CorruptObject,
    MemoryObjectStore,
    ObjectNotFound,
    StorageError,
)
from cairn.storage.errors import FieldError

from .conftest import overwrite_object

AVG = 256


def key_of(digest: str) -> str:
    """The documented layout of a chunk object (cairn.storage docstring)."""
    return f"chunks/{digest[:2]}/{digest}"


def chunk_keys(store: ChunkStore) -> set[str]:
    """The hashes of every chunk stored, loose or packed (after a flush)."""
    store.flush()
    loose = {key.rpartition("/")[2] for key in store.objects.list("chunks/")}
    return loose | {loc.hash for loc in store.index.scan()}


def frame_of(store: ChunkStore, digest: str) -> bytes:
    """A chunk as stored (codec byte + payload), wherever it lives."""
    store.flush()
    loc = store.index.find([digest]).get(digest)
    if loc is not None:
        return store.objects.get_range(loc.pack, loc.offset, loc.length)
    return store.objects.get(key_of(digest))


def loose_store(store: ChunkStore) -> ChunkStore:
    """A chunk store over the same objects that stores every chunk as its own object."""
    return ChunkStore(store.objects, avg_size=store.avg_size, pack_below=0)


class TrickleReader:
    """A stream with only ``read(n)`` that never returns more than ``step`` bytes at a time."""

    def __init__(self, data: bytes, step: int = 7) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._step = step
        self.calls = 0

    def read(self, n: int = -1) -> bytes:
        self.calls += 1
        size = self._step if n < 0 else min(n, self._step)
        piece = self._data[self._pos : self._pos + size]
        self._pos += len(piece)
        return bytes(piece)


repeated_blocks = st.builds(
    lambda blocks, times: b"".join(block * n for block, n in zip(blocks, times, strict=False)),
    st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=6),
    st.lists(st.integers(min_value=1, max_value=40), min_size=6, max_size=6),
)
# Hypothesis keeps drawn binaries short; seeded random bytes cover the whole size range.
random_bytes = st.builds(
    lambda seed, size: random.Random(seed).randbytes(size),
    st.integers(min_value=0, max_value=2**32),
    st.integers(min_value=0, max_value=20_000),
)
payloads = st.one_of(st.binary(max_size=20_000), random_bytes, repeated_blocks)


# -- round trip -----------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(data=payloads)
def test_write_then_read_returns_the_bytes(data: bytes) -> None:
    store = ChunkStore(MemoryObjectStore(), avg_size=AVG)

    content = store.write(io.BytesIO(data))

    assert store.read_bytes(content) == data
    assert b"".join(store.read(content)) == data
    assert content.size == len(data)
    assert content.hash == blake3.blake3(data).hexdigest()
    assert sum(ref.size for ref in content.chunks) == content.size
    store.verify(content)


@settings(max_examples=100, deadline=None)
@given(data=payloads, a=st.integers(0, 25_000), b=st.integers(0, 25_000))
def test_a_range_read_is_the_slice_from_only_the_chunks_under_it(
    data: bytes, a: int, b: int
) -> None:
    store = ChunkStore(MemoryObjectStore(), avg_size=AVG)
    content = store.write(io.BytesIO(data))
    start, end = min(a, b), max(a, b)
    read: list[ChunkRef] = []

    def reading(refs: Iterable[ChunkRef]) -> Iterator[bytes]:
        for ref in refs:
            read.append(ref)
            yield store.read_chunk(ref)

    store.iter_chunks = reading  # type: ignore[method-assign]

    assert b"".join(store.read_range(content, start, end)) == data[start:end]
    offsets = [sum(r.size for r in content.chunks[:i]) for i in range(len(content.chunks))]
    under = [
        r for r, at in zip(content.chunks, offsets, strict=True) if at < end and at + r.size > start
    ]
    assert read == under


def test_a_negative_range_is_refused() -> None:
    store = ChunkStore(MemoryObjectStore(), avg_size=AVG)
    content = store.write(io.BytesIO(b"abc"))
    with pytest.raises(FieldError):
        list(store.read_range(content, -1, 2))


@settings(max_examples=50, deadline=None)
@given(data=payloads)
def test_chunk_sizes_stay_within_fastcdc_bounds(data: bytes) -> None:
    store = ChunkStore(MemoryObjectStore(), avg_size=AVG)

    sizes = [ref.size for ref in store.write(io.BytesIO(data)).chunks]

    assert all(size <= AVG * 4 for size in sizes)
    assert all(size >= AVG // 4 for size in sizes[:-1])
    assert all(size > 0 for size in sizes)


@settings(max_examples=50, deadline=None)
@given(data=payloads)
def test_chunks_are_named_by_their_blake3(data: bytes) -> None:
    store = ChunkStore(MemoryObjectStore(), avg_size=AVG)

    content = store.write(io.BytesIO(data))

    for ref in content.chunks:
        assert ref.hash == blake3.blake3(store.read_chunk(ref)).hexdigest()
        assert ref.hash in chunk_keys(store)


def test_round_trip_on_every_backend(chunk_store: ChunkStore) -> None:
    data = random.Random(7).randbytes(30_000) + b"z" * 30_000

    content = chunk_store.write(io.BytesIO(data))

    assert chunk_store.read_bytes(content) == data
    assert len(chunk_keys(chunk_store)) == len({ref.hash for ref in content.chunks})


def test_empty_input_is_the_empty_content(chunk_store: ChunkStore) -> None:
    content = chunk_store.write(io.BytesIO(b""))

    assert content == Content.empty()
    assert content.chunks == ()
    assert chunk_store.read_bytes(content) == b""
    assert chunk_keys(chunk_store) == set()


def test_writing_the_same_bytes_twice_adds_no_objects(chunk_store: ChunkStore) -> None:
    data = random.Random(1).randbytes(20_000)
    first = chunk_store.write(io.BytesIO(data))
    keys = chunk_keys(chunk_store)

    second = chunk_store.write(io.BytesIO(data))

    assert second == first
    assert chunk_keys(chunk_store) == keys


def test_repeated_blocks_are_stored_once(chunk_store: ChunkStore) -> None:
    block = random.Random(2).randbytes(2 * AVG * 4)

    content = chunk_store.write(io.BytesIO(block * 50))

    assert len(content.chunks) > len(chunk_keys(chunk_store)) * 5


# -- streaming ------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(data=payloads, step=st.integers(min_value=1, max_value=500))
def test_a_trickling_reader_gives_the_same_content(data: bytes, step: int) -> None:
    store = ChunkStore(MemoryObjectStore(), avg_size=AVG)

    streamed = store.write(TrickleReader(data, step))

    assert streamed == store.write(io.BytesIO(data))


def test_progress_reports_every_chunk(chunk_store: ChunkStore) -> None:
    data = random.Random(3).randbytes(10_000)
    seen: list[int] = []

    content = chunk_store.write(TrickleReader(data, 33), progress=seen.append)

    assert seen == [ref.size for ref in content.chunks]
    assert sum(seen) == len(data)


def test_concurrent_writers_each_get_their_own_content(chunk_store: ChunkStore) -> None:
    inputs = [random.Random(i).randbytes(20_000) for i in range(6)]
    results: dict[int, Content] = {}

    def write(i: int) -> None:
        results[i] = chunk_store.write(TrickleReader(inputs[i], 101))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert [chunk_store.read_bytes(results[i]) for i in range(len(inputs))] == inputs


# -- deduplication ----------------------------------------------------------------


def test_an_insert_in_the_middle_adds_few_chunks(make_chunk_store) -> None:
    store = make_chunk_store(avg_size=1024)
    data = random.Random(4).randbytes(200_000)
    store.write(io.BytesIO(data))
    before = chunk_keys(store)

    middle = len(data) // 2
    edited = store.write(io.BytesIO(data[:middle] + b"a few new bytes" + data[middle:]))
    new = chunk_keys(store) - before

    assert 0 < len(new) < 0.1 * len(edited.chunks)


# -- codecs -----------------------------------------------------------------------


def test_compressible_chunks_are_stored_with_zstd(chunk_store: ChunkStore) -> None:
    data = b"the same line, over and over\n" * 2_000

    content = chunk_store.write(io.BytesIO(data))

    for ref in content.chunks:
        blob = frame_of(chunk_store, ref.hash)
        assert blob[:1] == b"\x01"
        assert len(blob) < ref.size
        assert zstandard.ZstdDecompressor().decompress(blob[1:]) == chunk_store.read_chunk(ref)


def test_incompressible_chunks_are_stored_raw(chunk_store: ChunkStore) -> None:
    data = os.urandom(20_000)

    content = chunk_store.write(io.BytesIO(data))

    for ref in content.chunks:
        blob = frame_of(chunk_store, ref.hash)
        assert blob[:1] == b"\x00"
        assert blob[1:] == chunk_store.read_chunk(ref)


# -- corruption -----------------------------------------------------------------


def _one_chunk(store: ChunkStore, data: bytes) -> tuple[Content, ChunkRef, bytes]:
    """Write ``data`` with every chunk loose (packed chunks: tests/storage/test_packs.py)."""
    store = loose_store(store)
    content = store.write(io.BytesIO(data))
    ref = content.chunks[0]
    return content, ref, store.objects.get(key_of(ref.hash))


def test_a_flipped_byte_in_a_raw_chunk_fails_verify(chunk_store: ChunkStore) -> None:
    content, ref, blob = _one_chunk(chunk_store, os.urandom(5_000))
    tampered = bytearray(blob)
    tampered[-1] ^= 0xFF
    overwrite_object(chunk_store.objects, key_of(ref.hash), bytes(tampered))

    with pytest.raises(CorruptObject):
        chunk_store.verify(content)


def test_a_chunk_of_the_wrong_length_fails_read(chunk_store: ChunkStore) -> None:
    content, ref, blob = _one_chunk(chunk_store, os.urandom(5_000))
    overwrite_object(chunk_store.objects, key_of(ref.hash), blob[:-10])

    with pytest.raises(CorruptObject):
        chunk_store.read_bytes(content)
    with pytest.raises(CorruptObject):
        chunk_store.verify(content)


@pytest.mark.parametrize("blob", [b"", b"\x07payload"])
def test_an_unknown_codec_byte_fails_read(chunk_store: ChunkStore, blob: bytes) -> None:
    content, ref, _ = _one_chunk(chunk_store, os.urandom(5_000))
    overwrite_object(chunk_store.objects, key_of(ref.hash), blob)

    with pytest.raises(CorruptObject):
        chunk_store.read_chunk(ref)


def test_a_valid_zstd_frame_of_other_bytes_fails_verify(chunk_store: ChunkStore) -> None:
    content, ref, _ = _one_chunk(chunk_store, b"abc" * 2_000)
    other = b"xyz" * (ref.size // 3) + b"q" * (ref.size % 3)
    overwrite_object(chunk_store.objects, key_of(ref.hash), b"\x01" + zstandard.compress(other))

    with pytest.raises(CorruptObject):
        chunk_store.verify(content)


def test_a_damaged_zstd_payload_fails_verify_with_corrupt_object(chunk_store: ChunkStore) -> None:
    content, ref, blob = _one_chunk(chunk_store, b"abc" * 2_000)
    assert blob[:1] == b"\x01"
    tampered = bytearray(blob)
    tampered[8] ^= 0xFF
    overwrite_object(chunk_store.objects, key_of(ref.hash), bytes(tampered))

    with pytest.raises(CorruptObject):
        chunk_store.verify(content)


def test_a_missing_chunk_is_not_found_on_read_and_corrupt_on_verify(
    chunk_store: ChunkStore,
) -> None:
    content, ref, _ = _one_chunk(chunk_store, os.urandom(5_000))
    chunk_store.objects.delete(key_of(ref.hash))

    with pytest.raises(ObjectNotFound):
        chunk_store.read_bytes(content)
    with pytest.raises(CorruptObject):
        chunk_store.verify(content)


def test_a_content_whose_whole_hash_is_wrong_fails_verify(chunk_store: ChunkStore) -> None:
    content = chunk_store.write(io.BytesIO(os.urandom(3_000)))
    wrong = Content(blake3.blake3(b"other").hexdigest(), content.size, content.chunks)

    with pytest.raises(CorruptObject) as info:
        chunk_store.verify(wrong)

    assert isinstance(info.value, StorageError)


# -- concat -------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(parts=st.lists(payloads, max_size=4))
def test_concat_is_the_bytes_end_to_end(parts: list[bytes]) -> None:
    store = ChunkStore(MemoryObjectStore(), avg_size=AVG)
    contents = [store.write(io.BytesIO(p)) for p in parts]

    joined = store.concat(contents)

    whole = b"".join(parts)
    assert store.read_bytes(joined) == whole
    assert joined.size == len(whole)
    assert joined.hash == blake3.blake3(whole).hexdigest()
    assert joined.chunks == tuple(ref for c in contents for ref in c.chunks)
    store.verify(joined)


def test_concat_of_nothing_is_empty(chunk_store: ChunkStore) -> None:
    assert chunk_store.concat([]) == Content.empty()
