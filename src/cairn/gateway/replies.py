"""Pieces of every S3 answer: ETags, times, request ids, XML bodies, error documents, the
``REF/PATH`` split of a key, listing tokens, and the request's signed-chunk chain."""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import uuid
from typing import IO, Any

from starlette.requests import Request
from starlette.responses import Response

from cairn.gateway import documents
from cairn.gateway.errors import S3Error

__all__ = [
    "MAX_KEYS",
    "REGION",
    "Md5Sink",
    "branch_of",
    "chunks",
    "error_response",
    "etag_of",
    "http_time",
    "ids",
    "refuse_later",
    "split_key",
    "page_token",
    "page_marker",
    "xml",
]

MAX_KEYS = 1000  # S3's cap on one listing page (and on keys per DeleteObjects)
_XML = "application/xml"
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
REGION = {"x-amz-bucket-region": "us-east-1"}


def etag_of(digest: str) -> str:
    """The ETag of content whose BLAKE3 hash is ``digest``: its first 128 bits, quoted (the
    length of an MD5 ETag, which some clients expect)."""
    return f'"{digest[:32]}"'


def split_key(key: str, bucket: str) -> tuple[str, str]:
    """``REF/PATH`` as (ref, path). Raises S3Error NoSuchKey when either is empty."""
    ref, _, path = key.partition("/")
    if not ref or not path.strip("/"):
        raise S3Error("NoSuchKey", "keys are BRANCH-or-COMMIT/PATH", bucket=bucket, key=key)
    return ref, path


def http_time(seconds: float) -> str:
    return email.utils.formatdate(seconds, usegmt=True)


class Md5Sink:
    """A file that also keeps the MD5 of what is written (a part's ETag)."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self.md5 = hashlib.md5()

    def write(self, data: bytes) -> int:
        self.md5.update(data)
        return self.file.write(data)


def chunks(request: Request) -> Any:
    """The ChunkChain of a request signed chunk by chunk (cairn.gateway.acting), or None."""
    return getattr(request.state, "chunks", None)


def branch_of(request: Request) -> str:
    """``BRANCH/`` when the request named its bucket ``BRANCH.REPO`` (cairn.gateway.app's
    ``_BranchBuckets`` keeps BRANCH in the scope), else ""."""
    branch = request.scope.get("cairn.branch")
    return f"{branch}/" if branch else ""


def ids() -> dict[str, str]:
    return {"x-amz-request-id": uuid.uuid4().hex[:16].upper()}


def xml(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type=_XML, headers=ids())


def error_response(
    request: Request, error: S3Error, bucket: str | None, key: str | None
) -> Response:
    headers = ids()
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


def refuse_later(request: Request) -> None:
    named = _LATER.intersection(request.query_params)
    if named or (request.method == "POST" and "delete" not in request.query_params):
        what = ", ".join(sorted(named)) or "POST"
        raise S3Error("NotImplemented", f"{what} is not served by this gateway yet")


def page_token(marker: str) -> str:
    return base64.urlsafe_b64encode(marker.encode()).decode()


def page_marker(token: str) -> str:
    try:
        return base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise S3Error("InvalidArgument", "the continuation token is invalid") from None
