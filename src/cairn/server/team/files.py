"""The file routes of ``cairn server``: bytes both ways in bounded memory, and uploads
that send only the chunks the server lacks (as ``git push`` and ``dvc push`` do).

An upload (cairn.api.remote.files does the client's half):

1. ``GET  /api/v1/chunking``: the server's FastCDC average chunk size, so the client
   cuts files where the server would;
2. ``POST /api/v1/chunks/missing?ref=R`` ``{"hashes": [...]}``: which of the client's
   chunks the store does not hold (pinned, so a collection spares those it holds);
3. ``POST /api/v1/chunks?ref=R``: those chunks, as a stream of frames (32-byte BLAKE3
   digest, 4-byte big-endian length, the bytes), each checked against its digest (a
   frame that fails, is too long or is cut short is the client's error: 400 FieldError);
   stored about 8 MiB at a time, the loose ones of a batch pinned together. The client
   repeats 2 and 3 per batch of about 8 MiB of chunks, a few batches at once;
4. ``POST /api/v1/files/commit`` ``{"ref", "files": [{"path", "hash", "size",
   "chunks": [[hash, size], ...]}], "append", "description"}``: one commit of those
   files (each ``path`` relative to the ref's path; one file with path ``""`` is written
   at the ref's path itself, as ``files.put`` does)
   once the server has checked, in one index query, that every chunk is there and that
   each file's chunks hash to its hash (read back unless the file is one packed chunk).
   Nothing is committed before this step, so an upload cut off half way leaves no
   partial commit (its chunks are garbage that ``gc`` collects).

Reads: ``GET /api/v1/files/content?ref=repo@commit:/path`` streams one file chunk by
chunk; ``GET /api/v1/files/archive?ref=...`` streams every file below a folder at one
resolved commit in one response (a download of 20,000 small files is one request);
``GET /api/v1/models/archive?spec=cancer/3`` the same for a model version's files
(``models.download``). Every route passes the guard as the face method it stands for
(``files.put``, ``files.read``, ``files.list``, ``models.get``).
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from cairn.api.wire import ARCHIVE_HEADER, FRAME_HEADER
from cairn.data import InvalidPath, parse_ref
from cairn.data.archive import extract_store, restore_store
from cairn.server.team.app import call
from cairn.storage import ChunkRef, ChunkStore, Content, CorruptObject
from cairn.storage.errors import FieldError

__all__ = ["add_file_routes"]


MAX_FILES = 1_000_000  # files in one commit request
# Bytes of an upload gathered before its whole frames are stored in one worker thread
# (one thread hop per small chunk would cost more than storing it).
_STORE_BATCH = 8 << 20
_PIECE = 1 << 20  # bytes per piece of a streamed archive, at least (but its end)


class FileContent(BaseModel):
    path: str
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)
    chunks: list[tuple[str, int]]


class CommitFiles(BaseModel):
    ref: str
    files: list[FileContent] = Field(max_length=MAX_FILES)
    append: bool = False
    description: str = ""


class Hashes(BaseModel):
    hashes: list[str] = Field(max_length=1_000_000)


def _content(f: FileContent) -> Content:
    refs = tuple(ChunkRef(h, n) for h, n in f.chunks)
    if sum(r.size for r in refs) != f.size:
        raise FieldError(f"{f.path}: chunk sizes add up to {sum(r.size for r in refs)}", "size")
    return Content(f.hash, f.size, refs)


def _archive(data: Any, ref: Any) -> Iterator[bytes]:
    # Small files and headers go out gathered in pieces of about _PIECE bytes: each piece
    # is one trip through the server's thread pool and the socket.
    files = data.walk_files(ref)
    out = bytearray()
    while batch := list(itertools.islice(files, 1000)):
        # One index query tells where the chunks of a thousand files are.
        data.chunks.prefetch(r for _, f in batch for r in f.content.chunks)
        for path, f in batch:
            name = path.encode()
            out += ARCHIVE_HEADER.pack(len(name), f.content.size)
            out += name
            for piece in data.chunks.read(f.content):
                if len(piece) >= _PIECE:
                    if out:
                        yield bytes(out)
                        out.clear()
                    yield piece
                    continue
                out += piece
                if len(out) >= _PIECE:
                    yield bytes(out)
                    out.clear()
    if out:
        yield bytes(out)


def _store_frames(store: ChunkStore, pending: bytes) -> tuple[int, int, bytes]:
    """Store every whole frame at the start of ``pending`` (loose chunks pinned together):
    (frames stored, bytes the next frame needs, the bytes after the last whole frame).
    Each chunk is a view of ``pending``, not a copy. Raises FieldError (a frame over the
    largest chunk, or bytes that do not hash to their digest)."""
    frames: list[tuple[str, memoryview]] = []
    start = 0
    need = FRAME_HEADER.size
    view = memoryview(pending)
    while len(view) - start >= FRAME_HEADER.size:
        digest, size = FRAME_HEADER.unpack_from(view, start)
        if size > 4 * store.avg_size:
            raise FieldError(f"chunk of {size} bytes: over {4 * store.avg_size}", "chunks")
        end = start + FRAME_HEADER.size + size
        if len(view) < end:
            need = FRAME_HEADER.size + size
            break
        frames.append((digest.hex(), view[start + FRAME_HEADER.size : end]))
        start = end
    try:
        store.put_chunks(frames)
    except CorruptObject as exc:  # the client's bytes, not the store's damage
        raise FieldError(str(exc), "chunks") from None
    return len(frames), need, bytes(view[start:])


def _pinned(client: Any, ref: str) -> str:
    """``ref`` with its branch or ancestry replaced by the commit id it names now."""
    parsed = parse_ref(ref)
    commit = client.data.resolve(parsed)
    return f"{parsed.repo}@{commit.id}:/{(parsed.path or '').lstrip('/')}"


def add_file_routes(app: FastAPI) -> None:
    """Add the routes of the module doc to ``app`` (cairn.server.team.app.create_api)."""

    def client() -> Any:
        return app.state.client

    @app.get("/api/v1/chunking", tags=["files"])
    def chunking() -> dict[str, int]:
        return {"avg_size": client().data.chunks.avg_size}

    @app.post("/api/v1/chunks/missing", tags=["files"])
    def missing(request: Request, ref: str, body: Hashes) -> dict[str, list[str]]:
        refs = [ChunkRef(h, 0) for h in body.hashes]
        gone = call(
            request,
            "files",
            "put",
            {"ref": ref, "data": b""},
            run=lambda: client().data.chunks.missing(refs),
        )
        return {"missing": sorted(gone)}

    @app.post("/api/v1/chunks", tags=["files"])
    async def chunks(request: Request, ref: str) -> dict[str, int]:
        # Guarded before a byte is read; the frames are stored as they arrive, a batch at a
        # time (memory: one chunk and a batch), in the thread pool since hashing and
        # compressing take time.
        await run_in_threadpool(
            call, request, "files", "put", {"ref": ref, "data": b""}, run=lambda: None
        )
        store = client().data.chunks
        # The pieces of a batch (64-256 KiB each) are joined once: appending them to one
        # growing buffer copied it again at each growth, a third of this route's time.
        count, need, held = 0, 0, 0
        pieces: list[bytes] = []
        pending = b""  # the bytes of a frame cut by the end of the last batch
        async for piece in request.stream():
            pieces.append(piece)
            held += len(piece)
            if held >= max(need, _STORE_BATCH):
                batch = b"".join([pending, *pieces])
                pieces.clear()
                stored, need, pending = await run_in_threadpool(_store_frames, store, batch)
                held = len(pending)
                count += stored
        last = b"".join([pending, *pieces])
        stored, _, pending = await run_in_threadpool(_store_frames, store, last)
        count += stored
        if pending:
            raise FieldError(f"upload ended inside a chunk frame ({len(pending)} bytes)", "chunks")
        await run_in_threadpool(store.flush)
        return {"stored": count}

    @app.post("/api/v1/files/commit", tags=["files"])
    def commit(request: Request, body: CommitFiles) -> JSONResponse:
        from cairn.api.wire import method

        # The embedded files.put does the rest (ancestors refused, paths checked and joined
        # below the ref's path), with chunks the client sent as the data.
        data: Any
        if len(body.files) == 1 and body.files[0].path == "":
            data = _content(body.files[0])
        else:
            data = {f.path: _content(f) for f in body.files}

        def run() -> Any:
            return client().files.put(
                body.ref, data, append=body.append, description=body.description
            )

        info = call(request, "files", "put", {"ref": body.ref, "data": b""}, run=run)
        return JSONResponse({"result": method("files", "put").encode_result(info)})

    @app.get("/api/v1/files/content", tags=["files"])
    def content(request: Request, ref: str) -> StreamingResponse:
        c = client()
        # One commit for the answer's headers and bytes, though the branch moves meanwhile.
        at = call(request, "files", "read", {"ref": ref}, run=lambda: _pinned(c, ref))
        info = c.files.get(at)
        if info.type == "dir":
            raise InvalidPath(f"{ref} is a folder")
        pieces: Iterator[bytes] = c.data.read_file(parse_ref(at))
        headers = {"Content-Length": str(info.size), "X-Cairn-Hash": info.hash or ""}
        return StreamingResponse(pieces, media_type="application/octet-stream", headers=headers)

    @app.get("/api/v1/files/range", tags=["files"])
    def byte_range(request: Request, ref: str, start: int, end: int | None = None) -> Response:
        """Bytes ``start`` to ``end`` of one file (``files.read_range``), from only the
        chunks that hold them; a range is a client's block (megabytes), sent whole."""
        c = client()
        body = call(
            request,
            "files",
            "read_range",
            {"ref": ref, "start": start, "end": end},
            run=lambda: c.files.read_range(ref, start, end),
        )
        return Response(body, media_type="application/octet-stream")

    @app.get("/api/v1/store/extract", tags=["store"])
    def extract(request: Request) -> StreamingResponse:
        """The whole store as ``cairn extract`` writes it (cairn.data.archive), for a
        clusterAdmin. Spooled to a temporary file first, so that a failure is an error
        answer, not a cut stream."""
        c = client()

        def run() -> Any:
            spool = tempfile.TemporaryFile(prefix="cairn-extract-")
            try:
                extract_store(c.data.catalog, c.data.chunks.objects, spool)
            except BaseException:
                spool.close()
                raise
            spool.seek(0)
            return spool

        spool = call(request, "store", "extract", {}, run=run)
        return StreamingResponse(_spooled(spool), media_type="application/gzip")

    @app.post("/api/v1/store/restore", tags=["store"])
    async def restore(request: Request) -> dict[str, int]:
        """Load an extract file (the body) into the server's store, which must be empty;
        for a clusterAdmin, guarded before a byte is read."""
        await run_in_threadpool(call, request, "store", "restore", {}, run=lambda: None)
        c = client()
        with tempfile.TemporaryFile(prefix="cairn-restore-") as spool:
            async for piece in request.stream():
                await run_in_threadpool(spool.write, piece)
            spool.seek(0)
            counts: dict[str, int] = await run_in_threadpool(
                restore_store, c.data.catalog, c.data.chunks.objects, spool
            )
        return counts

    @app.get("/api/v1/files/archive", tags=["files"])
    def archive(request: Request, ref: str) -> StreamingResponse:
        """Every file below the path at one commit, in one response: the ``X-Cairn-Ref``
        header names that commit, ``X-Cairn-Type`` whether the path is a file or a folder;
        the body is, per file, ``ARCHIVE_HEADER`` (path length, size), the path (UTF-8)
        and the bytes. Memory: one chunk and a piece of 1 MiB."""
        c = client()

        def run() -> tuple[str, str]:
            at = _pinned(c, ref)
            return at, c.files.get(at).type

        at, kind = call(request, "files", "list", {"ref": ref}, run=run)
        headers = {"X-Cairn-Ref": at, "X-Cairn-Type": kind}
        return StreamingResponse(
            _archive(c.data, parse_ref(at)), media_type="application/octet-stream", headers=headers
        )

    @app.get("/api/v1/models/archive", tags=["models"])
    def model_archive(request: Request, spec: str) -> StreamingResponse:
        """The files of the model version ``spec`` names, as ``/api/v1/files/archive``
        answers them, guarded as ``models.get``: read on the model is enough (what
        ``cairn serve`` needs), not read on the repo holding it."""
        c = client()

        def run() -> tuple[str, str]:
            at = c.models.get(spec).ref
            return at, c.files.get(at).type

        at, kind = call(request, "models", "get", {"spec": spec}, run=run)
        headers = {"X-Cairn-Ref": at, "X-Cairn-Type": kind}
        return StreamingResponse(
            _archive(c.data, parse_ref(at)), media_type="application/octet-stream", headers=headers
        )


def _spooled(spool: Any) -> Iterator[bytes]:
    """The bytes of an open temporary file in pieces of 1 MiB; closes it at the end."""
    with spool:
        while piece := spool.read(1 << 20):
            yield piece
