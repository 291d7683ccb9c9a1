"""Conditional requests as S3 applies them: Range, and If-Match / If-None-Match /
If-Modified-Since / If-Unmodified-Since (RFC 9110)."""

from __future__ import annotations

import email.utils
import re

from starlette.requests import Request

from cairn.gateway.errors import S3Error

__all__ = ["copy_preconditions", "parse_range", "preconditions"]

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def parse_range(header: str | None, size: int, bucket: str, key: str) -> tuple[int, int] | None:
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


def preconditions(request: Request, etag: str, modified: float) -> int | None:
    """RFC 9110's conditional GET, as S3 applies it: 412 raised as PreconditionFailed;
    returns 304 when the client's copy is current, else None."""
    h = request.headers
    seconds = int(modified)
    if "if-match" in h:
        if not _etag_matches(h["if-match"], etag):
            raise S3Error("PreconditionFailed", "If-Match did not match the ETag")
    elif (since := _http_date(h.get("if-unmodified-since"))) is not None and seconds > since:
        raise S3Error("PreconditionFailed", "modified since If-Unmodified-Since")
    if "if-none-match" in h:
        if _etag_matches(h["if-none-match"], etag):
            return 304
    elif (since := _http_date(h.get("if-modified-since"))) is not None and seconds <= since:
        return 304
    return None


def _etag_matches(header: str, etag: str) -> bool:
    tags = [t.strip().removeprefix("W/").strip('"') for t in header.split(",")]
    return "*" in tags or etag.strip('"') in tags


def _http_date(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(email.utils.parsedate_to_datetime(text).timestamp())
    except (TypeError, ValueError):
        return None  # an unreadable date is ignored, as HTTP says


def copy_preconditions(request: Request, etag: str, modified: float) -> None:
    """CopyObject's and UploadPartCopy's ``x-amz-copy-source-if-*`` headers, tested on the
    source as S3 does (a matching If-Match outweighs If-Unmodified-Since, a failing
    If-None-Match outweighs If-Modified-Since). Raises S3Error PreconditionFailed."""
    h = request.headers
    seconds = int(modified)
    if "x-amz-copy-source-if-match" in h:
        if not _etag_matches(h["x-amz-copy-source-if-match"], etag):
            raise S3Error("PreconditionFailed", "the source's ETag did not match")
    elif (since := _http_date(h.get("x-amz-copy-source-if-unmodified-since"))) is not None:
        if seconds > since:
            raise S3Error("PreconditionFailed", "the source was modified since")
    if "x-amz-copy-source-if-none-match" in h:
        if _etag_matches(h["x-amz-copy-source-if-none-match"], etag):
            raise S3Error("PreconditionFailed", "the source's ETag matched")
    elif (since := _http_date(h.get("x-amz-copy-source-if-modified-since"))) is not None:
        if seconds <= since:
            raise S3Error("PreconditionFailed", "the source was not modified since")
