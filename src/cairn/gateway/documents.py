"""S3's XML documents (namespace ``http://s3.amazonaws.com/doc/2006-03-01/``), built with
the standard library's ElementTree: ListAllMyBucketsResult, ListBucketResult (V2), the
error document. Times are ISO 8601 in UTC with milliseconds, as S3 writes them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import quote

__all__ = ["NS", "buckets_doc", "error_doc", "listing_doc", "s3_time"]

NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def s3_time(seconds: float) -> str:
    """``seconds`` since the epoch as S3 writes times in XML: ``2026-12-04T22:05:36.123Z``."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _add(parent: ET.Element, tag: str, text: object | None = None) -> ET.Element:
    child = ET.SubElement(parent, tag)
    if text is not None:
        child.text = str(text).lower() if isinstance(text, bool) else str(text)
    return child


def _bytes(root: ET.Element) -> bytes:
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def buckets_doc(buckets: Iterable[tuple[str, float]]) -> bytes:
    """ListAllMyBucketsResult for ``(name, created seconds)`` pairs."""
    root = ET.Element("ListAllMyBucketsResult", xmlns=NS)
    owner = _add(root, "Owner")
    _add(owner, "ID", "cairn")
    _add(owner, "DisplayName", "cairn")
    listed = _add(root, "Buckets")
    for name, created in buckets:
        bucket = _add(listed, "Bucket")
        _add(bucket, "Name", name)
        _add(bucket, "CreationDate", s3_time(created))
    return _bytes(root)


def listing_doc(
    *,
    bucket: str,
    params: dict[str, str | None],
    contents: Iterable[tuple[str, float, str, int]],
    prefixes: Iterable[str],
    truncated: bool,
    url_encoded: bool,
) -> bytes:
    """ListBucketResult: ``params`` in order (``Prefix``, ``Delimiter``, ``MaxKeys``,
    ``KeyCount``, tokens or markers; None leaves one out), ``contents`` as (key, modified
    seconds, etag, size in bytes), ``prefixes`` as the CommonPrefixes. With
    ``url_encoded`` (the request said ``encoding-type=url``), keys and prefixes are
    percent-encoded, as SDKs then decode them."""

    def enc(text: str) -> str:
        return quote(text, safe="/~") if url_encoded else text

    root = ET.Element("ListBucketResult", xmlns=NS)
    _add(root, "Name", bucket)
    for tag, value in params.items():
        if value is not None:
            encoded = tag in ("Prefix", "Delimiter", "StartAfter", "Marker", "NextMarker")
            _add(root, tag, enc(value) if encoded else value)
    if url_encoded:
        _add(root, "EncodingType", "url")
    _add(root, "IsTruncated", truncated)
    for key, modified, etag, size in contents:
        item = _add(root, "Contents")
        _add(item, "Key", enc(key))
        _add(item, "LastModified", s3_time(modified))
        _add(item, "ETag", etag)
        _add(item, "Size", size)
        _add(item, "StorageClass", "STANDARD")
    for prefix in prefixes:
        _add(_add(root, "CommonPrefixes"), "Prefix", enc(prefix))
    return _bytes(root)


def error_doc(code: str, message: str, resource: str, request_id: str, **extra: str) -> bytes:
    """S3's error document: Code, Message, the ``extra`` fields (BucketName, Key...),
    Resource, RequestId."""
    root = ET.Element("Error")
    _add(root, "Code", code)
    _add(root, "Message", message)
    for tag, value in extra.items():
        _add(root, tag, value)
    _add(root, "Resource", resource)
    _add(root, "RequestId", request_id)
    return _bytes(root)
