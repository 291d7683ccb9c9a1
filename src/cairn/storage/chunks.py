"""The chunk store: files cut into content-defined chunks, named by BLAKE3.

Write path (``ChunkStore.write``): a byte stream is cut with FastCDC 2020
(pyfastcdc; Xia et al., "The Design of Fast Content-Defined Chunking for Data
Deduplication Based Storage Systems", IEEE TPDS 2020). Each chunk is named by
the BLAKE3 hash of its raw bytes and stored once under ``chunks/<2 hex>/<hash>``.
Chunks already present are not written again, which is the whole of the
deduplication: an edit in the middle of a large file produces a few new chunks
and reuses the rest.

On-disk framing of a chunk object: one byte of codec, then the payload.
``0x00`` = raw bytes, ``0x01`` = a zstd frame. zstd is used only when it saves
at least 1/16 of the chunk, so photographs and video (already compressed)
are stored raw and read without a decompression pass; for chunks over
128 KiB a 64 KiB sample decides first, so incompressible data is not
compressed in full just to be stored raw.

Memory: a write holds at most one chunk (``max_size``, 4 MiB by default) plus
the reader's buffer; a read holds one chunk. Neither grows with file size.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import blake3
import pyfastcdc
import zstandard

from cairn.storage.errors import CorruptObject, ObjectNotFound
from cairn.storage.objects import ObjectStore

__all__ = ["DEFAULT_AVG_CHUNK", "ChunkRef", "ChunkStore", "Content"]

DEFAULT_AVG_CHUNK = 1 << 20
ProgressFn = Callable[[int], None]
_SAMPLE = 64 << 10
_RAW = b"\x00"
_ZSTD = b"\x01"


@dataclass(frozen=True, slots=True)
class ChunkRef:
    """One chunk of a file: its BLAKE3 hex digest and its length in bytes."""

    hash: str
    size: int


@dataclass(frozen=True, slots=True)
class Content:
    """The bytes of one file as the chunk store knows them.

    ``hash`` is the BLAKE3 hex digest of the whole content (independent of how
    it was chunked), ``size`` its length in bytes, ``chunks`` the pieces in order.
    """

    hash: str
    size: int
    chunks: tuple[ChunkRef, ...]

    @classmethod
    def empty(cls) -> Content:
        return cls(blake3.blake3(b"").hexdigest(), 0, ())


def chunk_key(digest: str) -> str:
    return f"chunks/{digest[:2]}/{digest}"


class ChunkStore:
    """Content-defined chunks over an object store.

    ``avg_size`` is FastCDC's average chunk size in bytes (min = avg/4,
    max = avg*4, as the paper suggests); tests use small sizes so that small
    inputs cross many chunk boundaries.
    """

    def __init__(
        self, objects: ObjectStore, *, avg_size: int = DEFAULT_AVG_CHUNK, level: int = 3
    ) -> None:
        self.objects = objects
        self.avg_size = avg_size
        self._level = level
        self._local = threading.local()

    def _cdc(self) -> pyfastcdc.FastCDC:
        # FastCDC instances are not safe to share between threads.
        cdc = getattr(self._local, "cdc", None)
        if cdc is None:
            cdc = self._local.cdc = pyfastcdc.FastCDC(self.avg_size)
        return cdc

    def _put_chunk(self, digest: str, data: memoryview | bytes) -> None:
        key = chunk_key(digest)
        if self.objects.exists(key):
            return
        compressor = zstandard.ZstdCompressor(level=self._level)
        if len(data) > 2 * _SAMPLE:
            # Photographs, video and audio are compressed already: when the first 64 KiB do
            # not shrink, store the chunk raw without compressing all of it to find out.
            if len(compressor.compress(data[:_SAMPLE])) > _SAMPLE - _SAMPLE // 16:
                self.objects.put(key, _RAW + bytes(data))
                return
        packed = compressor.compress(data)
        if len(packed) <= len(data) - len(data) // 16:
            self.objects.put(key, _ZSTD + packed)
        else:
            self.objects.put(key, _RAW + bytes(data))

    def write(self, stream: BinaryIO, *, progress: ProgressFn | None = None) -> Content:
        """Chunk and store everything ``stream`` yields; return its Content.

        ``progress(n)`` is called with the byte count of each chunk as it lands.
        """
        whole = blake3.blake3()
        refs: list[ChunkRef] = []
        size = 0
        for chunk in self._cdc().cut_stream(stream):
            data = chunk.data
            digest = blake3.blake3(data).hexdigest()
            whole.update(data)
            self._put_chunk(digest, data)
            refs.append(ChunkRef(digest, chunk.length))
            size += chunk.length
            if progress:
                progress(chunk.length)
        return Content(whole.hexdigest(), size, tuple(refs))

    def write_bytes(self, data: bytes) -> Content:
        """Chunk and store ``data`` held in memory."""
        import io

        return self.write(io.BytesIO(data))

    def concat(self, parts: Iterable[Content]) -> Content:
        """The Content of ``parts`` laid end to end (for appends), hashing the bytes again."""
        refs = tuple(ref for part in parts for ref in part.chunks)
        whole = blake3.blake3()
        for piece in self.iter_chunks(refs):
            whole.update(piece)
        return Content(whole.hexdigest(), sum(r.size for r in refs), refs)

    def read_chunk(self, ref: ChunkRef) -> bytes:
        """The raw bytes of one chunk. Raises ObjectNotFound or CorruptObject."""
        blob = self.objects.get(chunk_key(ref.hash))
        codec, payload = blob[:1], blob[1:]
        if codec == _RAW:
            data = payload
        elif codec == _ZSTD:
            try:
                data = zstandard.ZstdDecompressor().decompress(payload, max_output_size=ref.size)
            except zstandard.ZstdError as exc:
                raise CorruptObject(f"chunk {ref.hash} is not a valid zstd frame: {exc}") from exc
        else:
            raise CorruptObject(f"chunk {ref.hash} has unknown codec byte {codec!r}")
        if len(data) != ref.size:
            raise CorruptObject(f"chunk {ref.hash} is {len(data)} bytes, expected {ref.size}")
        return data

    def iter_chunks(self, refs: Iterable[ChunkRef]) -> Iterator[bytes]:
        """Yield the raw bytes of each chunk in order; memory is one chunk."""
        for ref in refs:
            yield self.read_chunk(ref)

    def read(self, content: Content) -> Iterator[bytes]:
        """Yield a file's bytes piece by piece."""
        return self.iter_chunks(content.chunks)

    def read_bytes(self, content: Content) -> bytes:
        """A whole file in memory; for small files and tests."""
        return b"".join(self.read(content))

    def verify(self, content: Content) -> None:
        """Re-hash every chunk and the whole; raise CorruptObject on any mismatch."""
        whole = blake3.blake3()
        for ref in content.chunks:
            try:
                data = self.read_chunk(ref)
            except ObjectNotFound as exc:
                raise CorruptObject(f"chunk {ref.hash} is missing") from exc
            if blake3.blake3(data).hexdigest() != ref.hash:
                raise CorruptObject(f"chunk {ref.hash} does not match its hash")
            whole.update(data)
        if whole.hexdigest() != content.hash:
            raise CorruptObject(f"content {content.hash} does not match its chunks")
