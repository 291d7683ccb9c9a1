"""Range reads of a large file fetch only the chunks the range needs, and the blocks they
fill are reused by content hash. The store runs in this process (embedded, or behind the
in-process test server), so counting ``ChunkStore.read_chunk`` counts the chunks read
from the object store for each call."""

from __future__ import annotations

import bisect
from collections.abc import Iterator

import blake3
import pyfastcdc
import pytest
from tests.fs.conftest import filesystem

from cairn.api.protocol import ClientProtocol
from cairn.storage.chunks import DEFAULT_AVG_CHUNK, ChunkStore

SIZE = 256 << 20  # bytes; the file is made with BLAKE3's output stream (fast, incompressible)
BLOCK = 2 << 20  # the filesystem's default block size


@pytest.fixture
def fetched(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Each chunk read from the store from now on, by its size."""
    read = ChunkStore.read_chunk
    sizes: list[int] = []

    def counting(self: ChunkStore, ref: object, location: object = None) -> bytes:
        data = read(self, ref, location)  # type: ignore[arg-type]
        sizes.append(len(data))
        return data

    monkeypatch.setattr(ChunkStore, "read_chunk", counting)
    yield sizes


def overlapping(offsets: list[int], start: int, end: int) -> int:
    """How many chunks (starting at ``offsets``) hold a byte of ``[start, end)``."""
    return bisect.bisect_left(offsets, end) - bisect.bisect_right(offsets, start) + 1


def test_range_reads_of_a_256_mib_file_fetch_only_the_chunks_they_need(
    client: ClientProtocol, fetched: list[int]
) -> None:
    body = blake3.blake3(b"cairn range test").digest(length=SIZE)
    client.files.put("training@master:/big.bin", body)
    # The chunk boundaries, cut as the store cuts (FastCDC at its average size).
    offsets = [c.offset for c in pyfastcdc.FastCDC(DEFAULT_AVG_CHUNK).cut_buf(body)]
    fs = filesystem(client)
    assert fs.info("training@master/big.bin")["chunks"] == len(offsets) > 200
    fetched.clear()

    # 100 bytes in the middle: the chunks under the one 2 MiB block that holds them.
    at = 200 << 20
    assert fs.cat_file("training@master/big.bin", at, at + 100) == body[at : at + 100]
    block = at // BLOCK * BLOCK
    assert len(fetched) == overlapping(offsets, block, block + BLOCK) <= 4

    # The same bytes again, at another ref of the same content: from the cache.
    fetched.clear()
    head = client.commits.get("training@master").id
    assert fs.cat_file(f"training@{head}/big.bin", at + 10, at + 50) == body[at + 10 : at + 50]
    assert fetched == []
    client.files.copy("training@master:/big.bin", "training@master:/copy.bin")  # no bytes
    assert fs.cat_file("training@master/copy.bin", at, at + 100) == body[at : at + 100]
    assert fetched == []  # the same content hash at another path

    # A reader seeks and reads as pyarrow does: the footer, then 3 MiB in the middle.
    fetched.clear()
    with fs.open("training@master/big.bin", "rb") as f:
        f.seek(-8, 2)
        assert f.read() == body[-8:]
        f.seek(128 << 20)
        assert f.read(3 << 20) == body[128 << 20 : 131 << 20]
    tail = (SIZE - 8) // BLOCK * BLOCK
    middle = overlapping(offsets, 128 << 20, 132 << 20)  # the 2 blocks of 2 MiB it spans
    assert len(fetched) == overlapping(offsets, tail, SIZE) + middle
    assert sum(fetched) < 10 << 20  # of 256 MiB


def test_without_a_cache_a_range_reads_only_its_own_chunks(
    client: ClientProtocol, fetched: list[int]
) -> None:
    body = blake3.blake3(b"small").digest(length=32 << 20)
    client.files.put("training@master:/mid.bin", body)
    offsets = [c.offset for c in pyfastcdc.FastCDC(DEFAULT_AVG_CHUNK).cut_buf(body)]
    fs = filesystem(client, cache_size=0)
    fetched.clear()
    at = 17 << 20
    assert fs.cat_file("training@master/mid.bin", at, at + 10) == body[at : at + 10]
    assert len(fetched) == overlapping(offsets, at, at + 10) == 1
    fetched.clear()
    assert fs.cat_file("training@master/mid.bin", at, at + 10) == body[at : at + 10]
    assert len(fetched) == 1  # no cache: read again
    assert fs.cat_file("training@master/mid.bin", -5) == body[-5:]
    assert fs.cat_file("training@master/mid.bin", 0, -(31 << 20)) == body[: 1 << 20]
