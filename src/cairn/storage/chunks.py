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

Small chunks (under half the average chunk size: every file under 512 KiB,
and the tails of larger ones) are not stored one object each. They wait in a
buffer and go out in packs of about 32 MiB (cairn.storage.packs); ``flush``
writes the buffer, and the layer above calls it before it commits anything
that refers to those chunks. Deduplication of small chunks happens at flush:
one index query for the whole buffer drops the chunks stored already. Chunks
in the buffer are readable at once.

Pins (cairn.storage.pins): with ``pins`` set, every chunk's key is pinned before the
store checks whether the chunk is stored and before it writes it, and a pack's key
before the pack is written: loose chunks up to 8 MiB at a time (a ``put_chunks`` call's
all at once), buffered ones in one batch per flush (before the index query that drops
the chunks stored already). A chunk that a writer finds in the buffer is pinned by the
flush that writes it out, again after that flush if the writer found it while the flush
was under way.

Memory: a write holds at most one chunk (``max_size``, 4 MiB by default) plus
the reader's buffer, and with pins up to 8 MiB of loose chunks more (pinned in one
transaction, then stored); the pack buffer holds at most ``pack_size`` bytes; a
read holds one chunk. Neither grows with file size or file count.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

import blake3
import pyfastcdc
import zstandard

from cairn.storage.base import ObjectStore
from cairn.storage.errors import CorruptObject, FieldError, NotRegularFile, ObjectNotFound
from cairn.storage.packs import ChunkIndex, ChunkLocation, MemoryChunkIndex, encode_pack
from cairn.storage.pins import Pins

__all__ = ["DEFAULT_AVG_CHUNK", "DEFAULT_PACK_SIZE", "ChunkRef", "ChunkStore", "Content"]

DEFAULT_AVG_CHUNK = 1 << 20
DEFAULT_PACK_SIZE = 32 << 20
_PACK_CHUNKS = 50_000  # chunks per pack at most: tiny files would fill 32 MiB slowly
_LOOSE_BATCH = 8 << 20  # bytes of loose chunks a write pins in one catalog transaction
_LOOSE_WRITERS = 4  # threads that store the loose chunks of one put_chunks call
_LOCATION_CACHE = 200_000  # entries (~40 MiB at most), then it starts over
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


class _Prefixed:
    """A stream that yields ``head`` and then the rest of ``stream`` (for FastCDC after
    the first bytes were read to spot a one-chunk file)."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = memoryview(head)
        self._stream = stream

    def readinto(self, buffer: memoryview) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _read_up_to(stream: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes; fewer only at the end of the stream (pipes return short reads)."""
    parts: list[bytes] = []
    got = 0
    while got < n:
        part = stream.read(n - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


class ChunkStore:
    """Content-defined chunks over an object store, small ones packed.

    ``avg_size`` is FastCDC's average chunk size in bytes (min = avg/4,
    max = avg*4, as the paper suggests); tests use small sizes so that small
    inputs cross many chunk boundaries. ``index`` finds packed chunks: the
    catalog's (cairn.catalog.CatalogChunkIndex) in a real store, a
    MemoryChunkIndex by default. ``pack_size`` is the size in bytes at which the
    pack buffer is written out; chunks under ``pack_below`` bytes are packed
    (default: half the average chunk size; 0 stores every chunk loose). ``pins``
    records what writers rely on (see the module doc); None pins nothing, for stores
    that no garbage collection runs on (a DataStore sets its catalog's).
    """

    def __init__(
        self,
        objects: ObjectStore,
        *,
        avg_size: int = DEFAULT_AVG_CHUNK,
        level: int = 3,
        index: ChunkIndex | None = None,
        pack_size: int = DEFAULT_PACK_SIZE,
        pack_below: int | None = None,
        pins: Pins | None = None,
    ) -> None:
        self.objects = objects
        self.index = index if index is not None else MemoryChunkIndex()
        self.pins = pins
        self.avg_size = avg_size
        self.pack_size = pack_size
        self._level = level
        self._local = threading.local()
        self._min_size = self._cdc().min_size
        # Chunks below this size are packed; FastCDC cuts no chunk under min_size except a
        # file's last one, so this packs small files and tails.
        self._pack_below = (
            max(avg_size // 2, self._min_size + 1) if pack_below is None else pack_below
        )
        # Small chunks waiting for a pack: hash -> (frame, raw size). Readable at once.
        self._pending: dict[str, tuple[bytes, int]] = {}
        self._pending_bytes = 0
        # Buffered chunks that a writer found there (and so did not buffer again) since the
        # flush that holds them took its batch: that flush pins them once more at its end.
        self._rehit: set[str] = set()
        # Chunk hash -> pack location, or None for "not packed" (stored loose).
        self._locations: dict[str, ChunkLocation | None] = {}
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()

    def _cdc(self) -> pyfastcdc.FastCDC:
        # FastCDC instances are not safe to share between threads.
        cdc = getattr(self._local, "cdc", None)
        if cdc is None:
            cdc = self._local.cdc = pyfastcdc.FastCDC(self.avg_size)
        return cdc

    def _compressor(self) -> zstandard.ZstdCompressor:
        comp = getattr(self._local, "zstd", None)
        if comp is None:
            comp = self._local.zstd = zstandard.ZstdCompressor(level=self._level)
        return comp

    def _frame(self, data: memoryview | bytes) -> bytes:
        """A chunk as stored: codec byte + payload, zstd only where it saves 1/16."""
        compressor = self._compressor()
        if len(data) > 2 * _SAMPLE:
            # Photographs, video and audio are compressed already: when the first 64 KiB do
            # not shrink, store the chunk raw without compressing all of it to find out.
            if len(compressor.compress(data[:_SAMPLE])) > _SAMPLE - _SAMPLE // 16:
                return _RAW + data  # one copy, from bytes or a view
        packed = compressor.compress(data)
        if len(packed) <= len(data) - len(data) // 16:
            return _ZSTD + packed
        return _RAW + data

    def _pin(self, keys: list[str]) -> None:
        if self.pins is not None and keys:
            self.pins.pin(keys)

    def _put_chunk(self, digest: str, data: memoryview | bytes) -> None:
        if len(data) < self._pack_below:
            self._buffer(digest, data)
        else:
            self._put_loose([(digest, data)])

    def put_chunk(self, digest: str, data: bytes) -> None:
        """Store one chunk cut elsewhere (a remote client's upload): ``put_chunks`` of one."""
        self.put_chunks([(digest, data)])

    def put_chunks(self, chunks: Sequence[tuple[str, bytes | memoryview]]) -> None:
        """Store chunks cut elsewhere (a remote client's upload), each under its BLAKE3 hex
        digest, after checking that its bytes hash to it and are no longer than the
        largest chunk this store cuts (4x the average). Small chunks wait in the pack
        buffer: ``flush`` before a commit refers to them (puts do); the others are pinned
        in one catalog transaction. Raises CorruptObject (small chunks before the bad one
        may be buffered, as a put cut short leaves its chunks)."""
        loose: list[tuple[str, memoryview | bytes]] = []
        for digest, data in chunks:
            if len(data) > 4 * self.avg_size:
                raise CorruptObject(f"chunk of {len(data)} bytes: over {4 * self.avg_size}")
            if blake3.blake3(data).hexdigest() != digest:
                raise CorruptObject(f"chunk bytes do not hash to {digest}")
            if len(data) < self._pack_below:
                self._buffer(digest, data)
            else:
                loose.append((digest, data))
        if len(loose) < 2:
            self._put_loose(loose)
            return
        # Each loose chunk is an object of its own, written and synced apart: a few threads
        # overlap the syncs (an embedded put overlaps them by storing files in threads).
        self._pin([chunk_key(digest) for digest, _ in loose])
        with ThreadPoolExecutor(min(_LOOSE_WRITERS, len(loose))) as pool:
            for _ in pool.map(self._store_loose, loose):
                pass

    def _buffer(self, digest: str, data: memoryview | bytes) -> None:
        """Add a small chunk to the pack buffer (or note that a writer found it there)."""
        with self._lock:
            if digest in self._pending:
                self._rehit.add(digest)
                return
        # Compressed here, in the writer's thread (zstd releases the GIL), so parallel
        # writers compress in parallel; the flush only lays frames out.
        frame = self._frame(data)
        with self._lock:
            if digest in self._pending:
                self._rehit.add(digest)
            else:
                self._pending[digest] = (frame, len(data))
                self._pending_bytes += len(frame)
            full = self._pending_bytes >= self.pack_size or len(self._pending) >= _PACK_CHUNKS
        # One writer flushes a full buffer; the others go on filling the next one.
        if full and self._flush_lock.acquire(blocking=False):
            try:
                self._flush_locked()
            finally:
                self._flush_lock.release()

    def _put_loose(self, chunks: list[tuple[str, memoryview | bytes]]) -> None:
        """Store chunks one object each, but those stored already."""
        # Pinned first: a collection that has not deleted one by now will not, and one that
        # has makes the check below fail, so the chunk is written again.
        self._pin([chunk_key(digest) for digest, _ in chunks])
        for chunk in chunks:
            self._store_loose(chunk)

    def _store_loose(self, chunk: tuple[str, memoryview | bytes]) -> None:
        """Write one pinned chunk as an object of its own, unless it is stored already."""
        digest, data = chunk
        key = chunk_key(digest)
        if not self.objects.exists(key):
            self.objects.put(key, self._frame(data))

    def write(self, stream: BinaryIO, *, progress: ProgressFn | None = None) -> Content:
        """Chunk and store everything ``stream`` yields; return its Content.

        ``progress(n)`` is called with the byte count of each chunk as it is cut.
        Small chunks may still sit in the pack buffer: call ``flush`` before a
        commit refers to them.
        """
        head = _read_up_to(stream, self._min_size + 1)
        if len(head) <= self._min_size:
            return self._write_small(head, progress)
        whole = blake3.blake3()
        refs: list[ChunkRef] = []
        size = 0
        # Loose chunks wait here to be pinned together (only when there are pins to take:
        # the copy costs a memcpy, the transaction per chunk it saves far more).
        loose: list[tuple[str, memoryview | bytes]] = []
        held = 0
        for chunk in self._cdc().cut_stream(_Prefixed(head, stream)):
            data = chunk.data
            digest = blake3.blake3(data).hexdigest()
            whole.update(data)
            if len(data) < self._pack_below:
                self._buffer(digest, data)
            elif self.pins is None:
                self._put_loose([(digest, data)])
            else:
                loose.append((digest, bytes(data)))
                held += len(data)
                if held >= _LOOSE_BATCH:
                    self._put_loose(loose)
                    loose, held = [], 0
            refs.append(ChunkRef(digest, chunk.length))
            size += chunk.length
            if progress:
                progress(chunk.length)
        if loose:
            self._put_loose(loose)
        return Content(whole.hexdigest(), size, tuple(refs))

    def _write_small(self, data: bytes, progress: ProgressFn | None) -> Content:
        # FastCDC never cuts below min_size: the whole input is one chunk, and its hash is
        # the content hash.
        digest = blake3.blake3(data).hexdigest()
        if data:
            self._put_chunk(digest, data)
            if progress:
                progress(len(data))
        return Content(digest, len(data), (ChunkRef(digest, len(data)),) if data else ())

    def write_path(
        self,
        path: str | os.PathLike[str],
        *,
        progress: ProgressFn | None = None,
        follow: bool = True,
        expect: tuple[int, int] | None = None,
    ) -> tuple[Content, os.stat_result]:
        """Store a local regular file; return its Content and the stat taken when it was
        opened.

        With ``follow`` False a link at ``path`` itself is refused (O_NOFOLLOW); with
        ``expect`` (device, inode) the file opened must be that one. A pipe or device is
        refused without blocking (it is opened O_NONBLOCK and never read). A file no
        bigger than one minimum chunk is read with one system call, without a file object
        (most of the cost of a small file is Python's, not the disk's). Raises
        NotRegularFile, OSError when the file cannot be read."""
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
        try:
            fd = os.open(path, flags)
        except OSError as exc:
            if not follow and exc.errno == errno.ELOOP:
                raise NotRegularFile(f"{os.fspath(path)!r} is now a link; put it again") from None
            raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise NotRegularFile(f"{os.fspath(path)!r} is not a regular file")
            if expect is not None and (st.st_dev, st.st_ino) != expect:
                raise NotRegularFile(
                    f"{os.fspath(path)!r} was replaced after it was listed; put it again"
                )
            if st.st_size <= self._min_size:
                data = os.read(fd, self._min_size + 1)
                if len(data) <= self._min_size and not os.read(fd, 1):
                    return self._write_small(data, progress), st
                os.lseek(fd, 0, os.SEEK_SET)
            with open(fd, "rb", closefd=False) as f:
                return self.write(f, progress=progress), st
        finally:
            os.close(fd)

    def flush(self) -> None:
        """Write the pack buffer out: chunks the index does not know go into new packs,
        which are stored and then indexed. Returns once they are durable. Safe to call
        from any thread at any time; a no-op when the buffer is empty."""
        with self._flush_lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        with self._lock:
            batch = list(self._pending.items())
            self._rehit.difference_update(digest for digest, _ in batch)
        if not batch:
            return
        self._pin([chunk_key(digest) for digest, _ in batch])
        known = self.index.find([digest for digest, _ in batch])
        group: list[tuple[str, bytes, int]] = []
        group_bytes = 0
        for digest, (frame, size) in batch:
            if digest in known:
                continue
            group.append((digest, frame, size))
            group_bytes += len(frame)
            if group_bytes >= self.pack_size or len(group) >= _PACK_CHUNKS:
                self._write_pack(group)
                group, group_bytes = [], 0
        if group:
            self._write_pack(group)
        again: list[str] = []
        with self._lock:
            for digest, (frame, _size) in batch:
                if self._pending.pop(digest, None) is not None:
                    self._pending_bytes -= len(frame)
                if digest in self._rehit:
                    self._rehit.discard(digest)
                    again.append(chunk_key(digest))
        # Found in the buffer by a writer that may have begun after the pin above.
        self._pin(again)

    def _write_pack(self, frames: list[tuple[str, bytes, int]]) -> None:
        key, body, locations = encode_pack(frames)
        self._pin([key])  # until indexed, the pack is an orphan to a collection
        self.objects.put(key, body)
        self.index.add(locations)
        for loc in locations:
            self._locations.pop(loc.hash, None)

    def _locate(self, hashes: Sequence[str]) -> dict[str, ChunkLocation]:
        """Pack locations of those ``hashes`` that are packed, from the location cache or
        one index query for the rest (whose answers, misses too, are cached)."""
        cache = self._locations
        wanted = [h for h in hashes if h not in cache and h not in self._pending]
        if wanted:
            found = self.index.find(wanted)
            if len(cache) + len(wanted) > _LOCATION_CACHE:
                cache.clear()
            for h in wanted:
                cache[h] = found.get(h)
        out: dict[str, ChunkLocation] = {}
        for h in hashes:
            loc = cache.get(h)
            if loc is not None:
                out[h] = loc
        return out

    def prefetch(self, refs: Iterable[ChunkRef]) -> None:
        """Look up where many chunks are in one index query, ahead of reading them (a get
        of many small files would otherwise ask once per file)."""
        hashes = list({ref.hash for ref in refs})
        for i in range(0, len(hashes), 4096):
            self._locate(hashes[i : i + 4096])

    def packed_sizes(self, hashes: Iterable[str]) -> dict[str, int]:
        """The raw size in bytes of each of ``hashes`` that is packed or waits in the pack
        buffer (one index query per 4,096 not looked up before); chunks stored loose or
        not stored are left out."""
        wanted = list(set(hashes))
        sizes: dict[str, int] = {}
        for i in range(0, len(wanted), 4096):
            batch = wanted[i : i + 4096]
            for h, loc in self._locate(batch).items():
                sizes[h] = loc.size
            with self._lock:
                for h in batch:
                    pending = self._pending.get(h)
                    if pending is not None:
                        sizes[h] = pending[1]
        return sizes

    def missing(self, refs: Iterable[ChunkRef]) -> set[str]:
        """The hashes among ``refs`` that are not stored (nor waiting in the pack buffer):
        one index query for the packed ones, one existence check per other one. The
        caller means to reuse the others, so they are pinned before they are looked for."""
        hashes = {ref.hash for ref in refs}
        with self._lock:
            held = hashes.intersection(self._pending)
            self._rehit.update(held)
        wanted = hashes - held
        self._pin([chunk_key(h) for h in wanted])
        found = self.index.contains(wanted) if wanted else set()
        return {h for h in wanted - found if not self.objects.exists(chunk_key(h))}

    def concat(self, parts: Iterable[Content]) -> Content:
        """The Content of ``parts`` laid end to end (for appends), hashing the bytes again."""
        refs = tuple(ref for part in parts for ref in part.chunks)
        whole = blake3.blake3()
        for piece in self.iter_chunks(refs):
            whole.update(piece)
        return Content(whole.hexdigest(), sum(r.size for r in refs), refs)

    def read_chunk(self, ref: ChunkRef, location: ChunkLocation | None = None) -> bytes:
        """The raw bytes of one chunk. Raises ObjectNotFound or CorruptObject.

        ``location`` skips the index lookup when the caller has it already."""
        pending = self._pending.get(ref.hash)
        if pending is not None:
            return self._decode(ref, pending[0])
        if location is None:
            location = self._locate([ref.hash]).get(ref.hash)
        try:
            return self._read_stored(ref, location)
        except (ObjectNotFound, CorruptObject):
            # Garbage collection may have repacked the chunk since its location was
            # looked up (and cached): ask the index again, once, and retry if it moved.
            self._locations.pop(ref.hash, None)
            fresh = self.index.find([ref.hash]).get(ref.hash)
            if fresh == location:
                raise
            return self._read_stored(ref, fresh)

    def _read_stored(self, ref: ChunkRef, location: ChunkLocation | None) -> bytes:
        if location is not None:
            blob = self.objects.get_range(location.pack, location.offset, location.length)
            if len(blob) != location.length:
                raise CorruptObject(f"chunk {ref.hash} is cut short in pack {location.pack}")
        else:
            blob = self.objects.get(chunk_key(ref.hash))
        return self._decode(ref, blob)

    def _decode(self, ref: ChunkRef, blob: bytes) -> bytes:
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
        """Yield the raw bytes of each chunk in order; memory is one chunk (and the
        locations of up to 512 chunks, looked up in one index query)."""
        batch: list[ChunkRef] = []
        for ref in refs:
            batch.append(ref)
            if len(batch) == 512:
                yield from self._read_batch(batch)
                batch = []
        yield from self._read_batch(batch)

    def _read_batch(self, refs: list[ChunkRef]) -> Iterator[bytes]:
        if not refs:
            return
        found = self._locate([r.hash for r in refs])
        for ref in refs:
            yield self.read_chunk(ref, found.get(ref.hash))

    def read(self, content: Content) -> Iterator[bytes]:
        """Yield a file's bytes piece by piece."""
        return self.iter_chunks(content.chunks)

    def read_range(self, content: Content, start: int, end: int) -> Iterator[bytes]:
        """Yield bytes ``start`` to ``end`` (exclusive, clipped to the size) of a file,
        reading only the chunks that overlap them; memory is one chunk. Raises
        FieldError for a negative ``start`` or ``end``."""
        if start < 0 or end < 0:
            raise FieldError(f"range {start}-{end}: offsets must not be negative", "start")
        end = min(end, content.size)
        wanted: list[tuple[ChunkRef, int]] = []  # (chunk, its offset in the file)
        offset = 0
        for ref in content.chunks:
            if offset >= end:
                break
            if offset + ref.size > start:
                wanted.append((ref, offset))
            offset += ref.size
        pieces = self.iter_chunks(ref for ref, _ in wanted)
        for (ref, at), data in zip(wanted, pieces, strict=True):
            yield data[max(start - at, 0) : min(end - at, ref.size)]

    def read_bytes(self, content: Content) -> bytes:
        """A whole file in memory; for small files and tests."""
        return b"".join(self.read(content))

    def verify(self, content: Content) -> None:
        """Re-hash every chunk and the whole; raise CorruptObject on any mismatch."""
        whole = blake3.blake3()
        found = self._locate([r.hash for r in content.chunks])
        for ref in content.chunks:
            try:
                data = self.read_chunk(ref, found.get(ref.hash))
            except ObjectNotFound as exc:
                raise CorruptObject(f"chunk {ref.hash} is missing") from exc
            if blake3.blake3(data).hexdigest() != ref.hash:
                raise CorruptObject(f"chunk {ref.hash} does not match its hash")
            whole.update(data)
        if whole.hexdigest() != content.hash:
            raise CorruptObject(f"content {content.hash} does not match its chunks")
