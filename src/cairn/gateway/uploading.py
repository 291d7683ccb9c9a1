"""The multipart-upload requests (create, UploadPart, complete, abort, ListParts) over
cairn.gateway.multipart's ``Uploads``: one commit when an upload completes, none before."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from cairn.gateway import documents
from cairn.gateway.body import receive
from cairn.gateway.errors import S3Error
from cairn.gateway.replies import MAX_KEYS, Md5Sink, chunks, etag_of, ids, split_key, xml

if TYPE_CHECKING:
    from cairn.gateway.handlers import Gateway

__all__ = ["multipart"]


async def multipart(gateway: Gateway, request: Request) -> Response:
    """Create, UploadPart, Complete, Abort and ListParts (cairn.gateway.multipart)."""
    bucket, key = request.path_params["bucket"], request.path_params["key"]
    q, method = request.query_params, request.method
    ref, path = split_key(key, bucket)
    if key.endswith("/"):
        raise S3Error("InvalidArgument", "a key ending in / names a folder", key=key)
    if method == "POST" and "uploads" in q:
        await run_in_threadpool(gateway._branch, bucket, ref, key)
        upload = await run_in_threadpool(gateway.uploads.create, bucket, key)
        return xml(documents.initiate_doc(bucket, key, upload))
    folder = await run_in_threadpool(gateway.uploads.folder, bucket, key, q["uploadId"])
    if method == "PUT" and "partNumber" in q:
        await run_in_threadpool(gateway._branch, bucket, ref, key)
        if "x-amz-copy-source" in request.headers:
            raise S3Error("NotImplemented", "UploadPartCopy is not served yet")
        number, temp = gateway.uploads.part_file(folder, q["partNumber"])
        try:
            with open(temp, "wb") as file:
                sink = Md5Sink(file)
                size = await receive(dict(request.headers), request.stream(), sink, chunks(request))
            part = await run_in_threadpool(
                gateway.uploads.store, folder, number, temp, sink.md5.hexdigest(), size
            )
        finally:
            temp.unlink(missing_ok=True)
        return Response(status_code=200, headers={**ids(), "ETag": part.etag})
    if method == "POST":
        body = io.BytesIO()
        await receive(dict(request.headers), request.stream(), body, chunks(request))
        named = documents.parse_complete(body.getvalue())

        def complete() -> str:
            gateway._branch(bucket, ref, key)
            with gateway.uploads.joined(folder, named) as stream:
                commit = gateway.client.files.put(f"{bucket}@{ref}:/{path}", stream)
            gateway.uploads.remove(folder)
            return gateway.client.files.get(f"{bucket}@{commit.id}:/{path}").hash

        digest = await run_in_threadpool(complete)
        return xml(documents.complete_doc(f"/{bucket}/{key}", bucket, key, etag_of(digest)))
    if method == "DELETE":
        await run_in_threadpool(gateway.uploads.remove, folder)
        return Response(status_code=204, headers=ids())
    if method == "GET":
        try:
            marker = int(q.get("part-number-marker", 0))
            max_parts = min(int(q.get("max-parts", MAX_KEYS)), MAX_KEYS)
        except ValueError:
            raise S3Error("InvalidArgument", "part markers are numbers") from None
        parts = [
            p for p in await run_in_threadpool(gateway.uploads.parts, folder) if p.number > marker
        ]
        page = parts[:max_parts]
        more = len(parts) > len(page) and bool(page)
        return xml(
            documents.parts_doc(
                bucket=bucket,
                key=key,
                upload=q["uploadId"],
                parts=((p.number, p.modified, p.etag, p.size) for p in page),
                marker=marker,
                next_marker=page[-1].number if page else None,
                truncated=more,
                max_parts=max_parts,
            )
        )
    raise S3Error("NotImplemented", f"{method} of an upload is not served")
