"""The S3 operations on buckets and objects, over one ``ClientProtocol`` (the package doc
says what each maps to). Each handler parses the request, calls the face in a worker thread
(its calls block) and formats S3's answer; multipart uploads are in cairn.gateway.uploading."""

from __future__ import annotations

import io
import mimetypes
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

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
from cairn.gateway import documents, uploading
from cairn.gateway.acting import Acting
from cairn.gateway.body import receive
from cairn.gateway.conditions import copy_preconditions, parse_range, preconditions
from cairn.gateway.errors import S3Error
from cairn.gateway.listing import list_page
from cairn.gateway.multipart import Uploads
from cairn.gateway.replies import (
    MAX_KEYS,
    REGION,
    branch_of,
    chunks,
    etag_of,
    http_time,
    ids,
    page_marker,
    page_token,
    refuse_later,
    split_key,
    xml,
)

if TYPE_CHECKING:
    from cairn.api.protocol import ClientProtocol
    from cairn.data import FileInfo

__all__ = ["Gateway"]

_PIECE = 4 << 20  # bytes per read of a ranged GetObject's body
_SPOOL = 8 << 20  # a PutObject body larger than this waits on disk, not in memory
_MAX_DELETE_BODY = 2 << 20  # 1000 keys of up to 1 KiB each, and the XML around them


def branch_bucket(client: ClientProtocol, name: str) -> tuple[str, str] | None:
    """Pachyderm's bucket name ``BRANCH.REPO`` as (repo, branch), or None when ``name`` is
    a repo itself (a repo wins: repo names may hold dots) or names no repo after its
    first dot. The branch need not exist yet: a write makes it."""
    branch, dot, repo = name.partition(".")
    if not dot or not branch or not repo:
        return None
    try:
        client.repos.get(name)
        return None
    except (NotFound, InvalidReference, PermissionDenied):
        pass
    try:
        client.repos.get(repo)
    except (NotFound, InvalidReference, PermissionDenied):
        return None
    return repo, branch


class Gateway:
    """The handlers, over one ``ClientProtocol``."""

    def __init__(self, client: ClientProtocol) -> None:
        self.client = client
        self.uploads = Uploads(client)

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
        return xml(documents.buckets_doc((r.name, r.created) for r in repos))

    async def bucket(self, request: Request) -> Response:
        bucket = request.path_params["bucket"]
        if request.method == "GET" and "uploads" in request.query_params:
            return await self.list_uploads(request, bucket)
        refuse_later(request)
        if request.method == "HEAD":
            await run_in_threadpool(self._head_bucket, bucket)
            return Response(status_code=200, headers={**ids(), **REGION})
        if request.method == "GET":
            if "location" in request.query_params:
                await run_in_threadpool(self._head_bucket, bucket)
                root = f'<LocationConstraint xmlns="{documents.NS}"/>'
                return xml(b'<?xml version="1.0" encoding="UTF-8"?>' + root.encode())
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
            return Response(status_code=200, headers={**ids(), "Location": f"/{bucket}"})
        raise S3Error("NotImplemented", f"{request.method} on a bucket is not served yet")

    async def list_uploads(self, request: Request, bucket: str) -> Response:
        """ListMultipartUploads: every upload in progress, in one page (key and upload
        markers and a prefix are not applied)."""
        await run_in_threadpool(self._head_bucket, bucket)
        found = await run_in_threadpool(self.uploads.in_progress, bucket)
        base = branch_of(request)
        prefix = base + request.query_params.get("prefix", "")
        listed = [
            (u.key[len(base) :], u.id, u.initiated) for u in found if u.key.startswith(prefix)
        ]
        return xml(documents.uploads_doc(bucket, listed, MAX_KEYS))

    def _head_bucket(self, bucket: str) -> None:
        if not self._bucket_exists(bucket):
            raise S3Error("NoSuchBucket", "the repo does not exist", bucket=bucket)

    async def list_objects(self, request: Request, bucket: str) -> Response:
        """ListObjectsV2 (``list-type=2``) or ListObjects (V1, markers)."""
        q = request.query_params
        v2 = q.get("list-type") == "2"
        prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
        try:
            max_keys = min(int(q.get("max-keys", MAX_KEYS)), MAX_KEYS)
        except ValueError:
            raise S3Error("InvalidArgument", "max-keys must be a number") from None
        if max_keys < 0:
            raise S3Error("InvalidArgument", "max-keys must not be negative")
        token = q.get("continuation-token")
        base = branch_of(request)  # keys are below BRANCH/ and answered without it
        if v2:
            after = page_marker(token) if token is not None else q.get("start-after", "")
        else:
            after = q.get("marker", "")
        if after and (token is None or not v2):
            after = base + after
        page = await run_in_threadpool(
            lambda: list_page(
                self.client,
                bucket,
                prefix=base + prefix,
                delimiter=delimiter,
                after=after,
                max_keys=max_keys,
            )
        )
        strip = len(base)
        count = len(page.contents) + len(page.prefixes)
        params: dict[str, str | None]
        if v2:
            params = {
                "Prefix": prefix,
                "Delimiter": delimiter or None,
                "MaxKeys": str(max_keys),
                "KeyCount": str(count),
                "ContinuationToken": token,
                "NextContinuationToken": page_token(page.next_marker) if page.next_marker else None,
                "StartAfter": q.get("start-after"),
            }
        else:
            params = {
                "Prefix": prefix,
                "Marker": after[strip:],
                "Delimiter": delimiter or None,
                "MaxKeys": str(max_keys),
                # S3 needs it only with a delimiter (else the last key is it); sent always
                # when truncated, as moto does, since clients read it first when present.
                "NextMarker": page.next_marker[strip:] if page.next_marker else None,
            }
        return xml(
            documents.listing_doc(
                bucket=bucket,
                params=params,
                contents=(
                    (e.key[strip:], e.modified, etag_of(e.hash), e.size) for e in page.contents
                ),
                prefixes=[p[strip:] for p in page.prefixes],
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
            return await uploading.multipart(self, request)
        refuse_later(request)
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
        try:
            ref, path = split_key(key, bucket)
        except S3Error:
            if not self._bucket_exists(bucket):  # S3 names the missing bucket first
                raise S3Error("NoSuchBucket", "the repo does not exist", bucket=bucket) from None
            raise
        info = self.client.files.get(f"{bucket}@{ref}:/{path}")
        if info.type != "file" or key.endswith("/"):
            raise S3Error("NoSuchKey", "a folder, not an object", bucket=bucket, key=key)
        commit = self.client.commits.get(f"{bucket}@{info.commit}")
        return info, commit.finished or commit.created

    async def get_object(self, request: Request) -> Response:
        bucket, key = request.path_params["bucket"], request.path_params["key"]
        info, modified = await run_in_threadpool(self._file, bucket, key)
        etag = etag_of(info.hash)
        headers = {
            **ids(),
            "ETag": etag,
            "Last-Modified": http_time(modified),
            "Accept-Ranges": "bytes",
            "Content-Type": mimetypes.guess_type(key)[0] or "application/octet-stream",
        }
        status = preconditions(request, etag, modified)
        if status == 304:
            return Response(status_code=304, headers=headers)
        pinned = f"{bucket}@{info.commit}:/{info.path.lstrip('/')}"
        span = parse_range(request.headers.get("range"), info.size, bucket, key)
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
        ref, path = split_key(key, bucket)
        if key.endswith("/"):
            raise S3Error("InvalidArgument", "a key ending in / names a folder", key=key)
        await run_in_threadpool(self._branch, bucket, ref, key)
        with tempfile.SpooledTemporaryFile(_SPOOL) as spool:
            await receive(dict(request.headers), request.stream(), spool, chunks(request))
            spool.seek(0)
            commit = await run_in_threadpool(
                self.client.files.put, f"{bucket}@{ref}:/{path}", spool
            )
        info = await run_in_threadpool(self.client.files.get, f"{bucket}@{commit.id}:/{path}")
        return Response(status_code=200, headers={**ids(), "ETag": etag_of(info.hash)})

    def _delete(self, bucket: str, key: str) -> None:
        ref, path = split_key(key, bucket)
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
        return Response(status_code=204, headers=ids())

    async def delete_objects(self, request: Request, bucket: str) -> Response:
        """DeleteObjects: the keys of each branch deleted in one commit of that branch."""
        length = int(request.headers.get("content-length") or 0)
        if length > _MAX_DELETE_BODY:
            raise S3Error("InvalidRequest", "the delete request is too large", bucket=bucket)
        body = io.BytesIO()
        await receive(dict(request.headers), request.stream(), body, chunks(request))
        keys, quiet = documents.parse_delete(body.getvalue())
        if len(keys) > MAX_KEYS:
            raise S3Error("InvalidRequest", f"at most {MAX_KEYS} keys per request")
        base = branch_of(request)
        deleted, errors = await run_in_threadpool(
            self._delete_many, bucket, [base + k for k in keys]
        )
        strip = len(base)
        return xml(
            documents.deleted_doc(
                [] if quiet else [k[strip:] for k in deleted],
                [(k[strip:], code, message) for k, code, message in errors],
            )
        )

    def _delete_many(
        self, bucket: str, keys: list[str]
    ) -> tuple[list[str], list[tuple[str, str, str]]]:
        self.client.repos.get(bucket)
        deleted: list[str] = []
        errors: list[tuple[str, str, str]] = []
        files: dict[str, list[tuple[str, str]]] = {}  # branch -> (key, path) of files
        for key in keys:
            try:
                ref, path = split_key(key, bucket)
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

    def copy_source(self, request: Request) -> tuple[str, str]:
        """The (bucket, key) of ``x-amz-copy-source`` (a version id after ``?`` is
        ignored: a key's ref already names the version)."""
        source = unquote(request.headers["x-amz-copy-source"].partition("?")[0]).lstrip("/")
        src_bucket, _, src_key = source.partition("/")
        return src_bucket, src_key

    def source_file(self, bucket: str, key: str) -> tuple[FileInfo, float]:
        """As ``_file``, for a copy's source (its bucket may be ``BRANCH.REPO``). Raises
        S3Error NoSuchBucket, NoSuchKey."""
        named = branch_bucket(self.client, bucket)
        if named is not None:
            bucket, key = named[0], f"{named[1]}/{key}"
        try:
            return self._file(bucket, key)
        except NotFound:
            if not self._bucket_exists(bucket):
                raise S3Error("NoSuchBucket", "no such source repo", bucket=bucket) from None
            raise S3Error("NoSuchKey", "no such source key", key=key) from None

    def check_copy_conditions(self, request: Request, etag: str, modified: float) -> None:
        """The source's ``x-amz-copy-source-if-*`` (cairn.gateway.conditions)."""
        copy_preconditions(request, etag, modified)

    async def copy_object(self, request: Request) -> Response:
        """CopyObject: the source pinned at its commit, copied without copying bytes, if
        its ``x-amz-copy-source-if-*`` conditions hold."""
        bucket, key = request.path_params["bucket"], request.path_params["key"]
        src_bucket, src_key = self.copy_source(request)
        ref, path = split_key(key, bucket)
        if key.endswith("/"):
            raise S3Error("InvalidArgument", "a key ending in / names a folder", key=key)

        def copy() -> tuple[str, float]:
            self._branch(bucket, ref, key)
            info, modified = self.source_file(src_bucket, src_key)
            copy_preconditions(request, etag_of(info.hash), modified)
            pinned = f"{info.repo}@{info.commit}:/{info.path.lstrip('/')}"
            commit = self.client.files.copy(pinned, f"{bucket}@{ref}:/{path}")
            return info.hash, commit.finished or commit.created

        digest, when = await run_in_threadpool(copy)
        return xml(documents.copy_doc(etag_of(digest), when))
