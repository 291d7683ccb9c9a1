"""The client's half of the file routes (cairn.server.team.files): puts that cut and hash
locally and send only the chunks the server lacks, and reads streamed chunk by chunk.

Files are cut with FastCDC at the server's average chunk size (``GET /api/v1/chunking``),
so the chunks are the ones the server would cut, and a file edited in the middle sends
about the edited bytes. A put reads each local file twice: once to cut and hash it, once
to send the missing chunks (by offset); memory holds chunk hashes, never a file. A stream
(stdin, a pipe, bytes given in memory) is spooled to a temporary file first.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, BinaryIO

import blake3
import pyfastcdc

from cairn.api.embedded.local import local_items
from cairn.api.remote.client import RemoteSub, check
from cairn.api.wire import ARCHIVE_HEADER, FRAME_HEADER, method
from cairn.data import CommitInfo, InvalidPath, Skipped, parse_ref
from cairn.data.localfiles import OutputFolder
from cairn.storage import ChunkRef, Content, CorruptObject, NotRegularFile

__all__ = ["RemoteFilesBase", "RemoteModelsBase", "receive_archive"]

_FRAME_BATCH = 8 << 20  # bytes of chunks per upload request
_HASH_BATCH = 50_000  # hashes per "missing" request


def cut(stream: BinaryIO, avg_size: int, progress: Callable[[int], None] | None) -> Content:
    """Cut ``stream`` as the server's ChunkStore does (FastCDC, BLAKE3); its Content."""
    whole = blake3.blake3()
    refs: list[ChunkRef] = []
    for chunk in pyfastcdc.FastCDC(avg_size).cut_stream(stream):
        data = chunk.data
        whole.update(data)
        refs.append(ChunkRef(blake3.blake3(data).hexdigest(), chunk.length))
        if progress:
            progress(chunk.length)
    return Content(whole.hexdigest(), sum(r.size for r in refs), tuple(refs))


class _Planned:
    """One file of a put: where it goes, where its bytes are, and its Content."""

    def __init__(self, path: str, source: str | os.PathLike[str], content: Content) -> None:
        self.path, self.source, self.content = path, source, content

    def frames(self, wanted: set[str]) -> Iterator[bytes]:
        """Header + bytes of each chunk of this file in ``wanted`` (removed as sent)."""
        if not wanted.intersection(r.hash for r in self.content.chunks):
            return
        with open(self.source, "rb") as f:
            offset = 0
            for ref in self.content.chunks:
                if ref.hash in wanted:
                    wanted.discard(ref.hash)
                    f.seek(offset)
                    data = f.read(ref.size)
                    if blake3.blake3(data).hexdigest() != ref.hash:
                        raise NotRegularFile(
                            f"{self.source!r} changed during the put; put it again"
                        )
                    yield FRAME_HEADER.pack(bytes.fromhex(ref.hash), len(data)) + data
                offset += ref.size


class _ResponseStream(io.RawIOBase):
    """A streamed response's body as a raw binary stream (for ``files.open``)."""

    def __init__(self, response: Any) -> None:
        self._response = response
        self._pieces = response.iter_bytes()
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._left:
            try:
                self._left = next(self._pieces)
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
        planned = []
        for path, source in sources:
            with open(source, "rb") as f:
                planned.append(_Planned(path, source, cut(f, avg, progress)))
        hashes = sorted({r.hash for p in planned for r in p.content.chunks})
        wanted: set[str] = set()
        for i in range(0, len(hashes), _HASH_BATCH):
            answer = t.request(
                "POST",
                "/api/v1/chunks/missing",
                params={"ref": target},
                json={"hashes": hashes[i : i + _HASH_BATCH]},
            )
            wanted.update(answer.json()["missing"])
        if wanted:
            for body in _batches(p.frames(wanted) for p in planned):
                t.request("POST", "/api/v1/chunks", params={"ref": target}, content=body)
        files = [
            {
                "path": p.path,
                "hash": p.content.hash,
                "size": p.content.size,
                "chunks": [[r.hash, r.size] for r in p.content.chunks],
            }
            for p in planned
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
            written.append(folder.write(rel, _exactly(body, size, progress)))
    return written


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


def _batches(frames: Iterable[Iterator[bytes]]) -> Iterator[bytes]:
    """Frames gathered into request bodies of about ``_FRAME_BATCH`` bytes."""
    body = bytearray()
    for per_file in frames:
        for frame in per_file:
            body += frame
            if len(body) >= _FRAME_BATCH:
                yield bytes(body)
                body.clear()
    if body:
        yield bytes(body)
