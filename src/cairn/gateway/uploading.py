"""The multipart-upload requests (create, UploadPart, complete, abort, ListParts) over
cairn.gateway.multipart's ``Uploads``: one commit when an upload completes, none before."""

from __future__ import annotations

import io
import re
import tempfile
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from cairn.gateway import documents
from cairn.gateway.body import receive
from cairn.gateway.errors import S3Error
from cairn.gateway.replies import MAX_KEYS, Md5Sink, branch_of, chunks, etag_of, ids, split_key, xml

if TYPE_CHECKING:
    from cairn.gateway.handlers import Gateway

__all__ = ["multipart"]

_SPOOL = 8 << 20  # a part larger than this waits on disk, not in memory
_PIECE = 4 << 20  # bytes per read of an UploadPartCopy source
_COPY_RANGE = re.compile(r"bytes=(\d+)-(\d+)")


async def multipart(gateway: Gateway, request: Request) -> Response:
    """Create, UploadPart (and UploadPartCopy), Complete, Abort and ListParts
    (cairn.gateway.multipart)."""
    bucket, key = request.path_params["bucket"], request.path_params["key"]
    shown = key[len(branch_of(request)) :]  # the key as the client named it
    q, method = request.query_params, request.method
    uploads = gateway.uploads
    ref, path = split_key(key, bucket)
    if key.endswith("/"):
        raise S3Error("InvalidArgument", "a key ending in / names a folder", key=key)
    if method == "POST" and "uploads" in q:
        await run_in_threadpool(gateway._branch, bucket, ref, key)
        upload = await run_in_threadpool(uploads.create, bucket, key)
        return xml(documents.initiate_doc(bucket, shown, upload))
    branch = await run_in_threadpool(uploads.branch, bucket, key, q["uploadId"])
    if method == "PUT" and "partNumber" in q:
        number = uploads.number(q["partNumber"])
        await run_in_threadpool(gateway._branch, bucket, ref, key)
        if "x-amz-copy-source" in request.headers:
            return await _copy_part(gateway, request, branch, number)
        with tempfile.SpooledTemporaryFile(_SPOOL) as spool:
            sink = Md5Sink(spool)
            size = await receive(dict(request.headers), request.stream(), sink, chunks(request))
            spool.seek(0)
            part = await run_in_threadpool(
                uploads.store, branch, number, spool, sink.md5.hexdigest(), size
            )
        return Response(status_code=200, headers={**ids(), "ETag": part.etag})
    if method == "POST":
        body = io.BytesIO()
        await receive(dict(request.headers), request.stream(), body, chunks(request))
        named = documents.parse_complete(body.getvalue())

        def complete() -> str:
            gateway._branch(bucket, ref, key)
            with uploads.joined(branch, named) as stream:
                commit = gateway.client.files.put(f"{bucket}@{ref}:/{path}", stream)
            uploads.remove(branch)
            return gateway.client.files.get(f"{bucket}@{commit.id}:/{path}").hash

        digest = await run_in_threadpool(complete)
        return xml(documents.complete_doc(f"/{bucket}/{key}", bucket, shown, etag_of(digest)))
    if method == "DELETE":
        await run_in_threadpool(uploads.remove, branch)
        return Response(status_code=204, headers=ids())
    if method == "GET":
        try:
            marker = int(q.get("part-number-marker", 0))
            max_parts = min(int(q.get("max-parts", MAX_KEYS)), MAX_KEYS)
        except ValueError:
            raise S3Error("InvalidArgument", "part markers are numbers") from None
        parts = [p for p in await run_in_threadpool(uploads.parts, branch) if p.number > marker]
        page = parts[:max_parts]
        more = len(parts) > len(page) and bool(page)
        return xml(
            documents.parts_doc(
                bucket=bucket,
                key=shown,
                upload=q["uploadId"],
                parts=((p.number, p.modified, p.etag, p.size) for p in page),
                marker=marker,
                next_marker=page[-1].number if page else None,
                truncated=more,
                max_parts=max_parts,
            )
        )
    raise S3Error("NotImplemented", f"{method} of an upload is not served")


async def _copy_part(gateway: Gateway, request: Request, branch: str, number: int) -> Response:
    """UploadPartCopy: the source (pinned at its commit), or the bytes
    ``x-amz-copy-source-range`` names, stored as part ``number``."""
    src_bucket, src_key = gateway.copy_source(request)
    header = request.headers.get("x-amz-copy-source-range")

    def copy() -> tuple[str, float]:
        info, modified = gateway.source_file(src_bucket, src_key)
        gateway.check_copy_conditions(request, etag_of(info.hash), modified)
        pinned = f"{info.repo}@{info.commit}:/{info.path.lstrip('/')}"
        start, end = 0, info.size
        if header is not None:
            m = _COPY_RANGE.fullmatch(header.strip())
            if m is None or int(m[2]) < int(m[1]) or int(m[2]) >= info.size:
                raise S3Error("InvalidRange", "the copy range is not satisfiable")
            start, end = int(m[1]), int(m[2]) + 1
        with tempfile.SpooledTemporaryFile(_SPOOL) as spool:
            sink = Md5Sink(spool)
            at = start
            while at < end:
                piece = gateway.client.files.read_range(pinned, at, min(at + _PIECE, end))
                sink.write(piece)
                at += len(piece)
            spool.seek(0)
            part = gateway.uploads.store(branch, number, spool, sink.md5.hexdigest(), end - start)
        return part.etag, part.modified

    etag, modified = await run_in_threadpool(copy)
    return xml(documents.copy_doc(etag, modified, root="CopyPartResult"))
