"""The client's half of the file routes (cairn.server.team.files): puts that cut and hash
locally and send only the chunks the server lacks, and reads streamed chunk by chunk.

Files are cut with FastCDC at the server's average chunk size (``GET /api/v1/chunking``),
so the chunks are the ones the server would cut, and a file edited in the middle sends
about the edited bytes. A put reads each local file once: its chunks gather in batches of
about 8 MiB (over many small files), and for each batch a worker thread asks the server
which chunks it lacks and sends those in one request, while the next files are cut.
Memory holds the chunk hashes of the put and a few batches, never a whole big file. A
stream (stdin, a pipe, bytes given in memory) is spooled to a temporary file first.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, BinaryIO

import blake3
import pyfastcdc

from cairn.api.embedded.local import local_items
from cairn.api.remote.client import RemoteSub, check
from cairn.api.wire import ARCHIVE_HEADER, FRAME_HEADER, method
from cairn.data import CommitInfo, InvalidPath, Skipped, parse_ref
from cairn.data.localfiles import LocalFile, OutputFolder
from cairn.storage import ChunkRef, Content, CorruptObject, NotRegularFile

__all__ = ["RemoteFilesBase", "RemoteModelsBase", "receive_archive"]

_FRAME_BATCH = 8 << 20  # bytes of chunks per "missing" question and upload request
_IN_FLIGHT = 2  # batches being asked about or sent while the next one is cut
_READ_AHEAD = 4 << 20  # bytes of a file from which a get receives and writes at once


def cut(stream: BinaryIO, avg_size: int, progress: Callable[[int], None] | None) -> Content:
    """Cut ``stream`` as the server's ChunkStore does (FastCDC, BLAKE3); its Content."""
    return _cut_stream(stream, pyfastcdc.FastCDC(avg_size), progress, None)


def _cut_stream(
    stream: BinaryIO,
    cdc: pyfastcdc.FastCDC,
    progress: Callable[[int], None] | None,
    keep: Callable[[str, bytes], None] | None,
) -> Content:
    """The Content of ``stream`` cut by ``cdc``; ``keep(hash, bytes)`` gets each chunk."""
    whole = blake3.blake3()
    refs: list[ChunkRef] = []
    for chunk in cdc.cut_stream(stream):
        data = chunk.data
        whole.update(data)
        digest = blake3.blake3(data).hexdigest()
        refs.append(ChunkRef(digest, chunk.length))
        if keep is not None:
            keep(digest, bytes(data))  # the cutter reuses its buffer
        if progress:
            progress(chunk.length)
    return Content(whole.hexdigest(), sum(r.size for r in refs), tuple(refs))


class _Uploader:
    """Sends the chunks of a put while its files are still being cut.

    Chunks gather in batches of about ``_FRAME_BATCH`` bytes; for each, a worker thread
    asks the server which it lacks and sends those in one request of frames, while the
    caller cuts on. Memory: the batch being filled and ``_IN_FLIGHT`` more. A chunk is
    batched once per put, however many files hold it."""

    def __init__(self, transport: Any, target: str) -> None:
        self._transport = transport
        self._target = target
        self._batch: list[tuple[str, bytes]] = []
        self._bytes = 0
        self._seen: set[str] = set()
        self._pool = ThreadPoolExecutor(_IN_FLIGHT, thread_name_prefix="cairn-upload")
        self._flight: deque[Future[None]] = deque()

    def keep(self, digest: str, data: bytes) -> None:
        if digest in self._seen:
            return
        self._seen.add(digest)
        self._batch.append((digest, data))
        self._bytes += len(data)
        if self._bytes >= _FRAME_BATCH:
            self._dispatch()

    def _dispatch(self) -> None:
        if not self._batch:
            return
        while len(self._flight) >= _IN_FLIGHT:
            self._flight.popleft().result()
        self._flight.append(self._pool.submit(self._send, self._batch))
        self._batch, self._bytes = [], 0

    def _send(self, batch: list[tuple[str, bytes]]) -> None:
        t, params = self._transport, {"ref": self._target}
        answer = t.request(
            "POST", "/api/v1/chunks/missing", params=params, json={"hashes": [h for h, _ in batch]}
        )
        wanted = set(answer.json()["missing"])
        body = b"".join(
            FRAME_HEADER.pack(bytes.fromhex(h), len(data)) + data
            for h, data in batch
            if h in wanted
        )
        if body:
            t.request("POST", "/api/v1/chunks", params=params, content=body)

    def finish(self) -> None:
        """Returns once every chunk kept is stored on the server; raises the first error."""
        self._dispatch()
        while self._flight:
            self._flight.popleft().result()

    def close(self) -> None:
        for future in self._flight:
            future.cancel()
        self._pool.shutdown(wait=True)


def _cut_file(
    source: str | os.PathLike[str],
    cdc: pyfastcdc.FastCDC,
    progress: Callable[[int], None] | None,
    keep: Callable[[str, bytes], None],
) -> Content:
    """Cut one local file, read once; a file no longer than one minimum chunk is one
    read and one hash (its chunk's hash is its own). A LocalFile from a walk is read only
    while it is the file the walk saw, not through a link. Raises NotRegularFile."""
    expect = source.identity if isinstance(source, LocalFile) else None
    walked = expect is not None
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (os.O_NOFOLLOW if walked else 0)
    try:
        fd = os.open(source, flags)
    except OSError as exc:
        if walked and exc.errno == errno.ELOOP:
            raise NotRegularFile(f"{os.fspath(source)!r} is now a link; put it again") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(f"{os.fspath(source)!r} is not a regular file")
        if walked and (st.st_dev, st.st_ino) != expect:
            raise NotRegularFile(f"{os.fspath(source)!r} was replaced after it was listed")
        if st.st_size <= cdc.min_size:
            data = os.read(fd, cdc.min_size + 1)
            if len(data) <= cdc.min_size and not os.read(fd, 1):
                digest = blake3.blake3(data).hexdigest()
                if not data:
                    return Content(digest, 0, ())
                keep(digest, data)
                if progress:
                    progress(len(data))
                return Content(digest, len(data), (ChunkRef(digest, len(data)),))
            os.lseek(fd, 0, os.SEEK_SET)
        with open(fd, "rb", buffering=1 << 20, closefd=False) as f:
            return _cut_stream(f, cdc, progress, keep)
    finally:
        os.close(fd)


class _ResponseStream(io.RawIOBase):
    """A streamed response's body as a raw binary stream (for ``files.open``)."""

    def __init__(self, response: Any) -> None:
        self._response = response
        self._pieces = response.iter_bytes()
        self._left = memoryview(b"")  # a view: taking a little from a piece copies nothing

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._left:
            try:
                self._left = memoryview(next(self._pieces))
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._left))
        buffer[:n] = self._left[:n]
        self._left = self._left[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            self._response.close()
        super().close()


class RemoteFilesBase(RemoteSub):
    """The methods of FilesProtocol that move bytes; the generated class adds the rest."""

    # -- writes -------------------------------------------------------------------------
    def put(
        self,
        ref: Any,
        data: bytes | IO[bytes] | Mapping[str, bytes | IO[bytes]],
        *,
        append: bool = False,
        description: str = "",
    ) -> CommitInfo:
        """FilesProtocol.put over the wire (see the module doc)."""
        text = str(ref)
        items: list[tuple[str, bytes | IO[bytes]]]
        if isinstance(data, Mapping):
            items = list(data.items())
        else:
            items = [("", data)]  # the ref's path itself (the server says if it has none)
        with tempfile.TemporaryDirectory(prefix="cairn-put-") as tmp:
            sources: list[tuple[str, str | os.PathLike[str]]] = []
            for i, (path, value) in enumerate(items):
                spool = os.path.join(tmp, str(i))
                with open(spool, "wb") as f:
                    if isinstance(value, bytes | bytearray | memoryview):
                        f.write(value)
                    else:
                        _copy(value, f)
                sources.append((path, spool))
            info = self._send(text, sources, append=append, description=description)
        self._transport.settled(info)
        return info

    def upload(
        self,
        ref: Any,
        sources: Sequence[str | Path],
        *,
        recursive: bool = False,
        append: bool = False,
        description: str = "",
        progress: Callable[[int], None] | None = None,
        on_plan: Callable[[int | None, int], None] | None = None,
        on_stored: Callable[[], None] | None = None,
        on_skipped: Callable[[list[Skipped]], None] | None = None,
    ) -> CommitInfo:
        """FilesProtocol.upload over the wire: the local files are walked here, as the
        embedded client walks them (cairn.api.embedded.local.local_items)."""
        text = str(ref)
        parsed = parse_ref(text)
        if parsed.ancestry:
            raise InvalidPath(f"{text}: cannot write to an ancestor; name a branch or commit")
        dest = "/" + (parsed.path or "")
        if text.endswith("/") and not dest.endswith("/"):
            dest += "/"
        target = text.split(":", 1)[0]
        names = [str(s) for s in sources]
        with tempfile.TemporaryDirectory(prefix="cairn-put-") as tmp:
            todo: list[tuple[str, str | os.PathLike[str]]] = []
            skipped: list[Skipped] = []
            if names == ["-"]:
                if not parsed.path:
                    raise InvalidPath("name the file to write from stdin: repo@branch:/path")
                todo.append((dest, _spool(sys.stdin.buffer, tmp, 0)))
            else:
                for source in names:
                    found, left_out = local_items(source, dest, recursive, len(names))
                    for path, src in found:
                        if isinstance(src, str | os.PathLike):
                            todo.append((path, src))
                        else:  # a pipe named on the command line, opened by local_items
                            assert not isinstance(src, Content)  # local_items gives none
                            with src:
                                todo.append((path, _spool(src, tmp, len(todo))))
                    skipped += left_out
            if on_skipped and skipped:
                on_skipped(skipped)
            if on_plan:
                sizes = [os.stat(s).st_size for _, s in todo]
                stream = names == ["-"]
                on_plan(None if stream else sum(sizes), len(todo))
            info = self._send(
                target, todo, append=append, description=description, progress=progress
            )
        if on_stored:
            on_stored()
        self._transport.settled(info)
        return info

    def _send(
        self,
        target: str,
        sources: list[tuple[str, str | os.PathLike[str]]],
        *,
        append: bool,
        description: str,
        progress: Callable[[int], None] | None = None,
    ) -> CommitInfo:
        t = self._transport
        avg = int(t.request("GET", "/api/v1/chunking").json()["avg_size"])
        cdc = pyfastcdc.FastCDC(avg)
        planned: list[tuple[str, Content]] = []
        uploader = _Uploader(t, target)
        try:
            for path, source in sources:
                planned.append((path, _cut_file(source, cdc, progress, uploader.keep)))
            uploader.finish()
        finally:
            uploader.close()
        files = [
            {
                "path": path,
                "hash": content.hash,
                "size": content.size,
                "chunks": [[r.hash, r.size] for r in content.chunks],
            }
            for path, content in planned
        ]
        commit = {"ref": target, "files": files, "append": append, "description": description}
        answer = t.request("POST", "/api/v1/files/commit", json=commit)
        return method("files", "put").decode_result(answer.json()["result"])

    # -- reads --------------------------------------------------------------------------
    def read(self, ref: Any) -> bytes:
        """FilesProtocol.read over the wire."""
        return self._transport.request(
            "GET", "/api/v1/files/content", params={"ref": str(ref)}
        ).content

    def open(self, ref: Any) -> IO[bytes]:
        """FilesProtocol.open over the wire: the body streamed as it is read."""
        http = self._transport.http
        request = http.build_request("GET", "/api/v1/files/content", params={"ref": str(ref)})
        response = http.send(request, stream=True)
        check(response)
        return io.BufferedReader(_ResponseStream(response), buffer_size=1 << 20)

    def read_range(self, ref: Any, start: int, end: int | None = None) -> bytes:
        """FilesProtocol.read_range over the wire (``GET /api/v1/files/range``)."""
        params: dict[str, Any] = {"ref": str(ref), "start": start}
        if end is not None:
            params["end"] = end
        return self._transport.request("GET", "/api/v1/files/range", params=params).content

    def download(
        self,
        ref: Any,
        output: str | Path,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> list[Path]:
        """FilesProtocol.download over the wire: the files below the path at one commit,
        each streamed to a name beside its place, then renamed (cairn.data.localfiles)."""
        return receive_archive(
            self._transport.http, "/api/v1/files/archive", {"ref": str(ref)}, output, progress
        )


class RemoteModelsBase(RemoteSub):
    """ModelsProtocol.download, over the archive route of model versions; the generated
    class adds the rest."""

    def download(self, spec: str, output: str | Path) -> list[Path]:
        """ModelsProtocol.download over the wire (read on the model is enough)."""
        return receive_archive(
            self._transport.http, "/api/v1/models/archive", {"spec": spec}, output, None
        )


def receive_archive(
    http: Any,
    route: str,
    params: dict[str, str],
    output: str | Path,
    progress: Callable[[int], None] | None,
) -> list[Path]:
    """Write the files of the archive ``GET route?params`` answers (cairn.server.team.files)
    below ``output`` (a folder) or at it (a file); return the local paths written."""
    request = http.build_request("GET", route, params=params)
    response = http.send(request, stream=True)
    check(response)
    pinned = parse_ref(response.headers["X-Cairn-Ref"])
    base = pinned.path or ""
    is_dir = response.headers["X-Cairn-Type"] == "dir"
    folder = OutputFolder(output if is_dir else Path(output).parent)
    written = []
    body = io.BufferedReader(_ResponseStream(response), 1 << 20)
    with body, folder:  # closing the body closes the response
        while header := body.read(ARCHIVE_HEADER.size):
            if len(header) < ARCHIVE_HEADER.size:
                raise CorruptObject("the server's archive ended inside a header")
            length, size = ARCHIVE_HEADER.unpack(header)
            path = body.read(length).decode()
            rel = path[len(base) :].lstrip("/") if is_dir else Path(output).name
            pieces = _exactly(body, size, progress)
            if size >= _READ_AHEAD:
                pieces = _read_ahead(pieces)
            written.append(folder.write(rel, pieces))
    return written


def _read_ahead(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """``pieces``, the next one received by a thread while the caller writes this one
    (both wait on the kernel, not the GIL). Memory: two pieces."""
    with ThreadPoolExecutor(1, thread_name_prefix="cairn-get") as pool:
        ahead = pool.submit(next, pieces, None)
        while (piece := ahead.result()) is not None:
            ahead = pool.submit(next, pieces, None)
            yield piece


def _exactly(
    stream: IO[bytes], size: int, progress: Callable[[int], None] | None
) -> Iterator[bytes]:
    """The next ``size`` bytes of ``stream``, in pieces. Raises CorruptObject if it ends."""
    while size:
        piece = stream.read(min(size, 1 << 20))
        if not piece:
            raise CorruptObject("the server's archive ended inside a file")
        size -= len(piece)
        if progress:
            progress(len(piece))
        yield piece


def _copy(src: IO[bytes], dst: BinaryIO) -> None:
    while piece := src.read(1 << 20):
        dst.write(piece)


def _spool(src: IO[bytes], folder: str, n: int) -> str:
    path = os.path.join(folder, f"stream-{n}")
    with open(path, "wb") as f:
        _copy(src, f)
    return path
