"""The S3 gateway's HTTP side: a Starlette app over a cairn client (see the package doc
for the mapping and what is served). Handlers parse the request, call the face in a
worker thread (its calls block), and format S3's answer."""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import io
import logging
import mimetypes
import re
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from cairn.api.errors import (
    AlreadyExists,
    AuthError,
    CairnError,
    CommitStateError,
    DataError,
    InvalidPath,
    InvalidReference,
    NotFound,
    PermissionDenied,
)
from cairn.gateway import documents
from cairn.gateway.acting import Acting, identify
from cairn.gateway.body import receive
from cairn.gateway.errors import S3Error
from cairn.gateway.listing import list_page
from cairn.gateway.multipart import Uploads

if TYPE_CHECKING:
    from cairn.api.protocol import ClientProtocol
    from cairn.catalog.auth import AuthStore
    from cairn.data import FileInfo
    from cairn.server.team.auth import AuthGuard

__all__ = ["create_app", "serve"]

log = logging.getLogger("cairn.gateway")

_PIECE = 4 << 20  # bytes per read of a ranged GetObject's body
_SPOOL = 8 << 20  # a PutObject body larger than this waits on disk, not in memory
_MAX_KEYS = 1000  # S3's cap on one listing page
_XML = "application/xml"
_MAX_DELETE_BODY = 2 << 20  # 1000 keys of up to 1 KiB each, and the XML around them
# Subresources S3 has and the gateway does not serve yet: refused, never mistaken for a
# plain GET or PUT of the bucket or object.
_LATER = {
    "accelerate", "acl", "analytics", "attributes", "cors", "encryption",
    "intelligent-tiering", "inventory", "legal-hold", "lifecycle", "logging", "metrics",
    "notification", "object-lock", "ownershipControls", "partNumber", "policy",
    "policyStatus", "publicAccessBlock", "replication", "requestPayment", "restore",
    "retention", "select", "tagging", "torrent", "uploadId", "uploads", "versionId",
    "versioning", "versions", "website",
}  # fmt: skip
# One region, S3's default: HeadBucket names it, as SDKs that pick endpoints by it expect.
_REGION = {"x-amz-bucket-region": "us-east-1"}
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")

Handler = Callable[[Request], Awaitable[Response]]
Method = Callable[["Gateway", Request], Awaitable[Response]]


def _etag(digest: str) -> str:
    """The ETag of content whose BLAKE3 hash is ``digest``: its first 128 bits, quoted (the
    length of an MD5 ETag, which some clients expect)."""
    return f'"{digest[:32]}"'


def _split_key(key: str, bucket: str) -> tuple[str, str]:
    """``REF/PATH`` as (ref, path). Raises S3Error NoSuchKey when either is empty."""
    ref, _, path = key.partition("/")
    if not ref or not path.strip("/"):
        raise S3Error("NoSuchKey", "keys are BRANCH-or-COMMIT/PATH", bucket=bucket, key=key)
    return ref, path


def _http_time(seconds: float) -> str:
    return email.utils.formatdate(seconds, usegmt=True)


class Gateway:
    """The handlers, over one ``ClientProtocol``."""

    def __init__(self, client: ClientProtocol, uploads: Uploads) -> None:
        self.client = client
        self.uploads = uploads

    # -- errors -------------------------------------------------------------------------

    def _translate(self, exc: CairnError, bucket: str | None, key: str | None) -> S3Error:
        message = str(exc)
        if isinstance(exc, NotFound):
            if bucket is None or key is None or not self._bucket_exists(bucket):
                return S3Error("NoSuchBucket", "the repo does not exist", bucket=bucket)
            return S3Error("NoSuchKey", message, bucket=bucket, key=key)
        if isinstance(exc, PermissionError | PermissionDenied):
            return S3Error("AccessDenied", message, bucket=bucket, key=key)
        if isinstance(exc, AuthError):
            return S3Error("AccessDenied", message, bucket=bucket, key=key)
        if isinstance(exc, CommitStateError):
            return S3Error("OperationAborted", message, bucket=bucket, key=key)
        if isinstance(exc, InvalidPath | InvalidReference):
            return S3Error("InvalidArgument", message, bucket=bucket, key=key)
        if isinstance(exc, DataError):  # e.g. a put to a pipeline's output repo
            return S3Error("AccessDenied", message, bucket=bucket, key=key)
        return S3Error("InvalidRequest", message, bucket=bucket, key=key)

    def _bucket_exists(self, bucket: str) -> bool:
        try:
            self.client.repos.get(bucket)
        except (NotFound, InvalidReference, PermissionDenied):
            return False
        return True

    # -- service and buckets ------------------------------------------------------------
    async def list_buckets(self, request: Request) -> Response:
        repos = await run_in_threadpool(self.client.repos.list)
        return _xml(documents.buckets_doc((r.name, r.created) for r in repos))

    async def bucket(self, request: Request) -> Response:
        bucket = request.path_params["bucket"]
        _refuse_later(request)
        if request.method == "HEAD":
            await run_in_threadpool(self._head_bucket, bucket)
            return Response(status_code=200, headers={**_ids(), **_REGION})
        if request.method == "GET":
            if "location" in request.query_params:
                await run_in_threadpool(self._head_bucket, bucket)
                root = f'<LocationConstraint xmlns="{documents.NS}"/>'
                return _xml(b'<?xml version="1.0" encoding="UTF-8"?>' + root.encode())
            return await self.list_objects(request, bucket)
        if request.method == "POST" and "delete" in request.query_params:
            return await self.delete_objects(request, bucket)
        if request.method == "PUT":
            try:
                await run_in_threadpool(self.client.repos.create, bucket)
            except AlreadyExists:
                raise S3Error("BucketAlreadyOwnedByYou", "the repo exists", bucket=bucket) from None
            except InvalidReference as exc:
                raise S3Error("InvalidBucketName", str(exc), bucket=bucket) from None
            return Response(status_code=200, headers={**_ids(), "Location": f"/{bucket}"})
        raise S3Error("NotImplemented", f"{request.method} on a bucket is not served yet")

    def _head_bucket(self, bucket: str) -> None:
        if not self._bucket_exists(bucket):
            raise S3Error("NoSuchBucket", "the repo does not exist", bucket=bucket)

    async def list_objects(self, request: Request, bucket: str) -> Response:
        """ListObjectsV2 (``list-type=2``) or ListObjects (V1, markers)."""
        q = request.query_params
        v2 = q.get("list-type") == "2"
        prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
        try:
            max_keys = min(int(q.get("max-keys", _MAX_KEYS)), _MAX_KEYS)
        except ValueError:
            raise S3Error("InvalidArgument", "max-keys must be a number") from None
        if max_keys < 0:
            raise S3Error("InvalidArgument", "max-keys must not be negative")
        token = q.get("continuation-token")
        if v2:
            after = _untoken(token) if token is not None else q.get("start-after", "")
        else:
            after = q.get("marker", "")
        page = await run_in_threadpool(
            lambda: list_page(
                self.client,
                bucket,
                prefix=prefix,
                delimiter=delimiter,
                after=after,
                max_keys=max_keys,
            )
        )
        count = len(page.contents) + len(page.prefixes)
        params: dict[str, str | None]
        if v2:
            params = {
                "Prefix": prefix,
                "Delimiter": delimiter or None,
                "MaxKeys": str(max_keys),
                "KeyCount": str(count),
                "ContinuationToken": token,
                "NextContinuationToken": _token(page.next_marker) if page.next_marker else None,
                "StartAfter": q.get("start-after"),
            }
        else:
            params = {
                "Prefix": prefix,
                "Marker": after,
                "Delimiter": delimiter or None,
                "MaxKeys": str(max_keys),
                # S3 needs it only with a delimiter (else the last key is it); sent always
                # when truncated, as moto does, since clients read it first when present.
                "NextMarker": page.next_marker,
            }
        return _xml(
            documents.listing_doc(
                bucket=bucket,
                params=params,
                contents=((e.key, e.modified, _etag(e.hash), e.size) for e in page.contents),
                prefixes=page.prefixes,
                truncated=page.next_marker is not None,
                url_encoded=q.get("encoding-type") == "url",
            )
        )

    # -- objects ------------------------------------------------------------------------
    async def object(self, request: Request) -> Response:
        if not request.path_params["key"]:
            return await self.bucket(request)
        q = request.query_params
        if "uploadId" in q or (request.method == "POST" and "uploads" in q):
            return await self.multipart(request)
        _refuse_later(request)
        if request.method in ("GET", "HEAD"):
            return await self.get_object(request)
        if request.method == "PUT" and "x-amz-copy-source" in request.headers:
            return await self.copy_object(request)
        if request.method == "PUT":
            return await self.put_object(request)
        if request.method == "DELETE":
            return await self.delete_object(request)
        raise S3Error("NotImplemented", f"{request.method} on an object is not served yet")

    def _file(self, bucket: str, key: str) -> tuple[FileInfo, float]:
        """The file ``key`` names and the time its commit was made. Raises S3Error
        NoSuchKey (also for a folder), NoSuchBucket."""
        ref, path = _split_key(key, bucket)
        info = self.client.files.get(f"{bucket}@{ref}:/{path}")
        if info.type != "file" or key.endswith("/"):
            raise S3Error("NoSuchKey", "a folder, not an object", bucket=bucket, key=key)
        commit = self.client.commits.get(f"{bucket}@{info.commit}")
        return info, commit.finished or commit.created

    async def get_object(self, request: Request) -> Response:
        bucket, key = request.path_params["bucket"], request.path_params["key"]
        info, modified = await run_in_threadpool(self._file, bucket, key)
        etag = _etag(info.hash)
        headers = {
            **_ids(),
            "ETag": etag,
            "Last-Modified": _http_time(modified),
            "Accept-Ranges": "bytes",
            "Content-Type": mimetypes.guess_type(key)[0] or "application/octet-stream",
        }
        status = _preconditions(request, etag, modified)
        if status == 304:
            return Response(status_code=304, headers=headers)
        pinned = f"{bucket}@{info.commit}:/{info.path.lstrip('/')}"
        span = _parse_range(request.headers.get("range"), info.size, bucket, key)
        if span is None:
            start, end, status = 0, info.size, 200
        else:
            (start, end), status = span, 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{info.size}"
        headers["Content-Length"] = str(end - start)
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers)
        body = self._whole(pinned) if span is None else self._span(pinned, start, end)
        return StreamingResponse(body, status_code=status, headers=headers)

    def _whole(self, ref: str) -> Iterator[bytes]:
        stream = self.client.files.open(ref)
        try:
            while piece := stream.read(_PIECE):
                yield piece
        finally:
            stream.close()

    def _span(self, ref: str, start: int, end: int) -> Iterator[bytes]:
        for at in range(start, end, _PIECE):
            yield self.client.files.read_range(ref, at, min(at + _PIECE, end))

    def _branch(self, bucket: str, ref: str, key: str) -> None:
        """Check that ``ref`` can take a write: a branch, or a name no commit has (the
        write makes the branch, as ``cairn put file`` does). Raises S3Error AccessDenied
        (a commit id or an ancestor), NoSuchBucket."""
        self.client.repos.get(bucket)
        if any(c in ref for c in "^~"):
            raise S3Error(
                "AccessDenied", f"{ref}: an ancestor never changes", bucket=bucket, key=key
            )
        if isinstance(self.client, Acting):  # refused before a body or part is read
            self.client.require("files", "put", ref=f"{bucket}@{ref}:/", data=b"")
        try:
            self.client.branches.get(f"{bucket}@{ref}")
            return
        except NotFound:
            pass
        try:
            commit = self.client.commits.get(f"{bucket}@{ref}")
        except (NotFound, InvalidReference):
            return
        raise S3Error(
            "AccessDenied",
            f"commit {commit.id} never changes; write to a branch (BRANCH/PATH)",
            bucket=bucket,
            key=key,
        )

    async def put_object(self, request: Request) -> Response:
        bucket, key = request.path_params["bucket"], request.path_params["key"]
        ref, path = _split_key(key, bucket)
        if key.endswith("/"):
            raise S3Error("InvalidArgument", "a key ending in / names a folder", key=key)
        await run_in_threadpool(self._branch, bucket, ref, key)
        with tempfile.SpooledTemporaryFile(_SPOOL) as spool:
            await receive(dict(request.headers), request.stream(), spool, _chunks(request))
            spool.seek(0)
            commit = await run_in_threadpool(
                self.client.files.put, f"{bucket}@{ref}:/{path}", spool
            )
        info = await run_in_threadpool(self.client.files.get, f"{bucket}@{commit.id}:/{path}")
        return Response(status_code=200, headers={**_ids(), "ETag": _etag(info.hash)})

    def _delete(self, bucket: str, key: str) -> None:
        ref, path = _split_key(key, bucket)
        self._branch(bucket, ref, key)
        try:
            info = self.client.files.get(f"{bucket}@{ref}:/{path}")
        except NotFound:
            return  # S3 answers a delete of a missing key as done
        if info.type == "file" and not key.endswith("/"):
            self.client.files.delete(f"{bucket}@{ref}:/{path}")

    async def delete_object(self, request: Request) -> Response:
        bucket, key = request.path_params["bucket"], request.path_params["key"]
        await run_in_threadpool(self._delete, bucket, key)
        return Response(status_code=204, headers=_ids())

    async def delete_objects(self, request: Request, bucket: str) -> Response:
        """DeleteObjects: the keys of each branch deleted in one commit of that branch."""
        length = int(request.headers.get("content-length") or 0)
        if length > _MAX_DELETE_BODY:
            raise S3Error("InvalidRequest", "the delete request is too large", bucket=bucket)
        body = io.BytesIO()
        await receive(dict(request.headers), request.stream(), body, _chunks(request))
        keys, quiet = documents.parse_delete(body.getvalue())
        if len(keys) > _MAX_KEYS:
            raise S3Error("InvalidRequest", f"at most {_MAX_KEYS} keys per request")
        deleted, errors = await run_in_threadpool(self._delete_many, bucket, keys)
        return _xml(documents.deleted_doc([] if quiet else deleted, errors))

    def _delete_many(
        self, bucket: str, keys: list[str]
    ) -> tuple[list[str], list[tuple[str, str, str]]]:
        self.client.repos.get(bucket)
        deleted: list[str] = []
        errors: list[tuple[str, str, str]] = []
        files: dict[str, list[tuple[str, str]]] = {}  # branch -> (key, path) of files
        for key in keys:
            try:
                ref, path = _split_key(key, bucket)
                self._branch(bucket, ref, key)
                info = self.client.files.get(f"{bucket}@{ref}:/{path}")
            except S3Error as exc:
                if exc.code == "NoSuchKey":  # not an object: S3 counts it deleted
                    deleted.append(key)
                else:
                    errors.append((key, exc.code, exc.message))
                continue
            except NotFound:
                deleted.append(key)
                continue
            except CairnError as exc:
                error = self._translate(exc, bucket, key)
                errors.append((key, error.code, error.message))
                continue
            if info.type == "file" and not key.endswith("/"):
                files.setdefault(ref, []).append((key, path))
            else:
                deleted.append(key)
        for ref, named in files.items():
            try:
                self.client.files.delete(*(f"{bucket}@{ref}:/{p}" for _, p in named))
            except CairnError as exc:
                error = self._translate(exc, bucket, None)
                errors += [(k, error.code, error.message) for k, _ in named]
            else:
                deleted += [k for k, _ in named]
        order = {k: i for i, k in enumerate(keys)}  # S3 answers in the request's order
        return sorted(deleted, key=order.__getitem__), errors

    async def copy_object(self, request: Request) -> Response:
        """CopyObject: the source pinned at its commit, copied without copying bytes."""
        bucket, key = request.path_params["bucket"], request.path_params["key"]
        conditions = [h for h in request.headers if h.startswith("x-amz-copy-source-if")]
        if conditions:
            raise S3Error("NotImplemented", f"{conditions[0]} is not served yet")
        source = unquote(request.headers["x-amz-copy-source"].partition("?")[0]).lstrip("/")
        src_bucket, _, src_key = source.partition("/")
        ref, path = _split_key(key, bucket)
        if key.endswith("/"):
            raise S3Error("InvalidArgument", "a key ending in / names a folder", key=key)

        def copy() -> tuple[str, float]:
            self._branch(bucket, ref, key)
            try:
                info, _ = self._file(src_bucket, src_key)
            except NotFound:
                if not self._bucket_exists(src_bucket):
                    raise S3Error(
                        "NoSuchBucket", "no such source repo", bucket=src_bucket
                    ) from None
                raise S3Error("NoSuchKey", "no such source key", key=src_key) from None
            pinned = f"{src_bucket}@{info.commit}:/{info.path.lstrip('/')}"
            commit = self.client.files.copy(pinned, f"{bucket}@{ref}:/{path}")
            return info.hash, commit.finished or commit.created

        digest, when = await run_in_threadpool(copy)
        return _xml(documents.copy_doc(_etag(digest), when))

    async def multipart(self, request: Request) -> Response:
        """Create, UploadPart, Complete, Abort and ListParts (cairn.gateway.multipart)."""
        bucket, key = request.path_params["bucket"], request.path_params["key"]
        q, method = request.query_params, request.method
        ref, path = _split_key(key, bucket)
        if key.endswith("/"):
            raise S3Error("InvalidArgument", "a key ending in / names a folder", key=key)
        if method == "POST" and "uploads" in q:
            await run_in_threadpool(self._branch, bucket, ref, key)
            upload = await run_in_threadpool(self.uploads.create, bucket, key)
            return _xml(documents.initiate_doc(bucket, key, upload))
        folder = await run_in_threadpool(self.uploads.folder, bucket, key, q["uploadId"])
        if method == "PUT" and "partNumber" in q:
            await run_in_threadpool(self._branch, bucket, ref, key)
            if "x-amz-copy-source" in request.headers:
                raise S3Error("NotImplemented", "UploadPartCopy is not served yet")
            number, temp = self.uploads.part_file(folder, q["partNumber"])
            try:
                with open(temp, "wb") as file:
                    sink = _Md5Sink(file)
                    size = await receive(
                        dict(request.headers), request.stream(), sink, _chunks(request)
                    )
                part = await run_in_threadpool(
                    self.uploads.store, folder, number, temp, sink.md5.hexdigest(), size
                )
            finally:
                temp.unlink(missing_ok=True)
            return Response(status_code=200, headers={**_ids(), "ETag": part.etag})
        if method == "POST":
            body = io.BytesIO()
            await receive(dict(request.headers), request.stream(), body, _chunks(request))
            named = documents.parse_complete(body.getvalue())

            def complete() -> str:
                self._branch(bucket, ref, key)
                with self.uploads.joined(folder, named) as stream:
                    commit = self.client.files.put(f"{bucket}@{ref}:/{path}", stream)
                self.uploads.remove(folder)
                return self.client.files.get(f"{bucket}@{commit.id}:/{path}").hash

            digest = await run_in_threadpool(complete)
            return _xml(documents.complete_doc(f"/{bucket}/{key}", bucket, key, _etag(digest)))
        if method == "DELETE":
            await run_in_threadpool(self.uploads.remove, folder)
            return Response(status_code=204, headers=_ids())
        if method == "GET":
            try:
                marker = int(q.get("part-number-marker", 0))
                max_parts = min(int(q.get("max-parts", _MAX_KEYS)), _MAX_KEYS)
            except ValueError:
                raise S3Error("InvalidArgument", "part markers are numbers") from None
            parts = [
                p for p in await run_in_threadpool(self.uploads.parts, folder) if p.number > marker
            ]
            page = parts[:max_parts]
            more = len(parts) > len(page) and bool(page)
            return _xml(
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


class _Md5Sink:
    """A file that also keeps the MD5 of what is written (a part's ETag)."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self.md5 = hashlib.md5()

    def write(self, data: bytes) -> int:
        self.md5.update(data)
        return self.file.write(data)


def _chunks(request: Request) -> Any:
    """The ChunkChain of a request signed chunk by chunk (cairn.gateway.acting), or None."""
    return getattr(request.state, "chunks", None)


def _ids() -> dict[str, str]:
    return {"x-amz-request-id": uuid.uuid4().hex[:16].upper()}


def _xml(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type=_XML, headers=_ids())


def _error_response(
    request: Request, error: S3Error, bucket: str | None, key: str | None
) -> Response:
    headers = _ids()
    if request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers:
        # The body may be unread (refused before it was, or an Expect: 100-continue that
        # never got its 100): left on the connection, it would be read as the next request.
        headers["Connection"] = "close"
    if request.method == "HEAD":  # no body: SDKs read the status alone
        return Response(status_code=error.status, headers=headers)
    extra = {}
    if error.bucket or bucket:
        extra["BucketName"] = error.bucket or bucket or ""
    if error.key or key:
        extra["Key"] = error.key or key or ""
    body = documents.error_doc(
        error.code, error.message, request.url.path, headers["x-amz-request-id"], **extra
    )
    return Response(body, status_code=error.status, media_type=_XML, headers=headers)


def _refuse_later(request: Request) -> None:
    named = _LATER.intersection(request.query_params)
    if named or (request.method == "POST" and "delete" not in request.query_params):
        what = ", ".join(sorted(named)) or "POST"
        raise S3Error("NotImplemented", f"{what} is not served by this gateway yet")


def _token(marker: str) -> str:
    return base64.urlsafe_b64encode(marker.encode()).decode()


def _untoken(token: str) -> str:
    try:
        return base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise S3Error("InvalidArgument", "the continuation token is invalid") from None


def _parse_range(header: str | None, size: int, bucket: str, key: str) -> tuple[int, int] | None:
    """The [start, end) bytes a Range header asks for; None for the whole object (no
    header, or one S3 ignores: not ``bytes=a-b``, or b < a). Raises S3Error InvalidRange
    when the range starts past the end."""
    if header is None:
        return None
    m = _RANGE.fullmatch(header.strip())
    if m is None or (not m[1] and not m[2]):
        return None
    if not m[1]:  # the last N bytes
        n = int(m[2])
        if n == 0 or size == 0:
            raise S3Error("InvalidRange", "the range is not satisfiable", bucket=bucket, key=key)
        return max(size - n, 0), size
    start = int(m[1])
    if m[2] and int(m[2]) < start:
        return None
    if start >= size:
        raise S3Error("InvalidRange", "the range is not satisfiable", bucket=bucket, key=key)
    return start, size if not m[2] else min(int(m[2]) + 1, size)


def _preconditions(request: Request, etag: str, modified: float) -> int | None:
    """RFC 9110's conditional GET, as S3 applies it: 412 raised as PreconditionFailed;
    returns 304 when the client's copy is current, else None."""
    h = request.headers
    seconds = int(modified)
    if "if-match" in h:
        if not _etag_matches(h["if-match"], etag):
            raise S3Error("PreconditionFailed", "If-Match did not match the ETag")
    elif (since := _date(h.get("if-unmodified-since"))) is not None and seconds > since:
        raise S3Error("PreconditionFailed", "modified since If-Unmodified-Since")
    if "if-none-match" in h:
        if _etag_matches(h["if-none-match"], etag):
            return 304
    elif (since := _date(h.get("if-modified-since"))) is not None and seconds <= since:
        return 304
    return None


def _etag_matches(header: str, etag: str) -> bool:
    tags = [t.strip().removeprefix("W/").strip('"') for t in header.split(",")]
    return "*" in tags or etag.strip('"') in tags


def _date(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(email.utils.parsedate_to_datetime(text).timestamp())
    except (TypeError, ValueError):
        return None  # an unreadable date is ignored, as HTTP says


def create_app(
    client: ClientProtocol,
    *,
    keys: AuthStore | None = None,
    domains: tuple[str, ...] = ("localhost",),
    spool: Path | None = None,
) -> Any:
    """The S3 REST API over ``client`` as an ASGI app: path-style (``/BUCKET/KEY``), and
    virtual-host-style for a Host ``BUCKET.D`` where D is one of ``domains``.
    ``keys``: the store's tokens and roles (cairn.catalog.auth), whose S3 keys sign
    requests once auth is active there (None: nothing is checked here, as over a remote
    client, whose server checks the gateway's own token). ``spool``: the folder multipart
    uploads wait in (default: a temporary folder made now and removed when the app shuts
    down)."""
    made = spool is None
    folder = Path(tempfile.mkdtemp(prefix="cairn-s3-")) if spool is None else spool
    uploads = Uploads(folder)
    guard: AuthGuard | None = None
    if keys is not None:
        from cairn.server.team.auth import AuthGuard

        guard = AuthGuard(keys)

    def answers(handler: Method) -> Handler:
        """``handler`` for the request's user (cairn.gateway.acting), answering its
        errors as S3 does: an S3Error as its document, a cairn error as the S3 code that
        means the same, anything else as InternalError."""

        async def endpoint(request: Request) -> Response:
            bucket = request.path_params.get("bucket")
            key = request.path_params.get("key") or None
            gateway = Gateway(client, uploads)
            try:
                if guard is not None:
                    principal, request.state.chunks = await run_in_threadpool(
                        identify, request, guard.store
                    )
                    if principal is not None:
                        acting = Acting(client, guard, principal)
                        gateway = Gateway(acting, uploads)  # type: ignore[arg-type]
                return await handler(gateway, request)
            except S3Error as exc:
                error = exc
            except CairnError as exc:
                error = await run_in_threadpool(gateway._translate, exc, bucket, key)
            except Exception:
                log.exception("S3 gateway: %s %s failed", request.method, request.url.path)
                error = S3Error("InternalError", "the gateway failed; see its log")
            return _error_response(request, error, bucket, key)

        return endpoint

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if made:
                shutil.rmtree(folder, ignore_errors=True)

    methods = ["GET", "HEAD", "PUT", "DELETE", "POST"]
    app = Starlette(
        routes=[
            Route("/", answers(Gateway.list_buckets), methods=["GET"]),
            Route("/{bucket}", answers(Gateway.bucket), methods=methods),
            Route("/{bucket}/{key:path}", answers(Gateway.object), methods=methods),
        ],
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # "/bucket/" is the bucket, not a redirect
    return _VirtualHosts(app, tuple(d.lower().strip(".") for d in domains))


class _VirtualHosts:
    """Virtual-host-style requests (``Host: REPO.DOMAIN``) routed as path-style ones
    (``/REPO/...``) when DOMAIN is one of ``domains``; every other Host is path-style. The
    path is rewritten for routing only: the path as sent (``raw_path``) stays what SigV4
    signed."""

    def __init__(self, app: Starlette, domains: tuple[str, ...]) -> None:
        self.app, self.domains = app, domains

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            host = next((v for k, v in scope["headers"] if k == b"host"), b"").decode("latin-1")
            name = host.rsplit(":", 1)[0].lower() if not host.endswith("]") else host
            for domain in self.domains:
                if name.endswith(f".{domain}"):
                    bucket = name[: -len(domain) - 1]
                    scope = {**scope, "path": f"/{bucket}{scope['path']}"}
                    break
        await self.app(scope, receive, send)


def serve(
    client: ClientProtocol,
    *,
    host: str = "127.0.0.1",
    port: int,
    keys: AuthStore | None = None,
    domains: tuple[str, ...] = ("localhost",),
    on_ready: Callable[[str], Any] | None = None,
) -> None:
    """Serve the gateway over ``client`` (``keys`` and ``domains`` as ``create_app``)
    until interrupted; ``on_ready(url)`` before it listens."""
    import uvicorn

    config = uvicorn.Config(
        create_app(client, keys=keys, domains=domains),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    if on_ready is not None:
        on_ready(f"http://{host}:{port}")
    server.run()
