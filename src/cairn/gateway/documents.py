"""S3's XML documents (namespace ``http://s3.amazonaws.com/doc/2006-03-01/``), built with
the standard library's ElementTree: ListAllMyBucketsResult, ListBucketResult (V2), the
error document. Times are ISO 8601 in UTC with milliseconds, as S3 writes them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import quote

from cairn.gateway.errors import S3Error

__all__ = [
    "NS",
    "buckets_doc",
    "complete_doc",
    "copy_doc",
    "deleted_doc",
    "error_doc",
    "initiate_doc",
    "listing_doc",
    "parse_complete",
    "parse_delete",
    "parts_doc",
    "s3_time",
    "uploads_doc",
]

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


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def parse_delete(body: bytes) -> tuple[list[str], bool]:
    """A DeleteObjects request (``<Delete><Object><Key>`` ..., ``<Quiet>``): the keys in
    order and whether the answer is quiet. Raises S3Error MalformedXML."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise S3Error("MalformedXML", "the delete request is not well-formed XML") from None
    if _local(root.tag) != "Delete":
        raise S3Error("MalformedXML", "the delete request is no <Delete> document")
    keys: list[str] = []
    quiet = False
    for child in root:
        if _local(child.tag) == "Quiet":
            quiet = (child.text or "").strip().lower() == "true"
        elif _local(child.tag) == "Object":
            key = next((k.text for k in child if _local(k.tag) == "Key"), None)
            if not key:
                raise S3Error("MalformedXML", "an <Object> without a <Key>")
            keys.append(key)
    return keys, quiet


def deleted_doc(deleted: Iterable[str], errors: Iterable[tuple[str, str, str]]) -> bytes:
    """DeleteResult: the keys deleted, then (key, code, message) of those refused."""
    root = ET.Element("DeleteResult", xmlns=NS)
    for key in deleted:
        _add(_add(root, "Deleted"), "Key", key)
    for key, code, message in errors:
        error = _add(root, "Error")
        _add(error, "Key", key)
        _add(error, "Code", code)
        _add(error, "Message", message)
    return _bytes(root)


def copy_doc(etag: str, modified: float, root: str = "CopyObjectResult") -> bytes:
    """CopyObjectResult (or ``root``: CopyPartResult): the copy's ETag and the time it
    was made (the commit's, or the part's)."""
    root_ = ET.Element(root, xmlns=NS)
    _add(root_, "LastModified", s3_time(modified))
    _add(root_, "ETag", etag)
    return _bytes(root_)


def initiate_doc(bucket: str, key: str, upload: str) -> bytes:
    """InitiateMultipartUploadResult."""
    root = ET.Element("InitiateMultipartUploadResult", xmlns=NS)
    _add(root, "Bucket", bucket)
    _add(root, "Key", key)
    _add(root, "UploadId", upload)
    return _bytes(root)


def parse_complete(body: bytes) -> list[tuple[int, str]]:
    """A CompleteMultipartUpload request: its (PartNumber, ETag) pairs, in order. Raises
    S3Error MalformedXML."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise S3Error("MalformedXML", "the request is not well-formed XML") from None
    if _local(root.tag) != "CompleteMultipartUpload":
        raise S3Error("MalformedXML", "the request is no <CompleteMultipartUpload>")
    parts = []
    for child in root:
        if _local(child.tag) != "Part":
            continue
        fields = {_local(f.tag): (f.text or "").strip() for f in child}
        try:
            parts.append((int(fields["PartNumber"]), fields["ETag"]))
        except (KeyError, ValueError):
            raise S3Error("MalformedXML", "a <Part> needs a PartNumber and an ETag") from None
    return parts


def complete_doc(location: str, bucket: str, key: str, etag: str) -> bytes:
    """CompleteMultipartUploadResult."""
    root = ET.Element("CompleteMultipartUploadResult", xmlns=NS)
    _add(root, "Location", location)
    _add(root, "Bucket", bucket)
    _add(root, "Key", key)
    _add(root, "ETag", etag)
    return _bytes(root)


def parts_doc(
    *,
    bucket: str,
    key: str,
    upload: str,
    parts: Iterable[tuple[int, float, str, int]],
    marker: int,
    next_marker: int | None,
    truncated: bool,
    max_parts: int,
) -> bytes:
    """ListPartsResult: ``parts`` as (number, modified seconds, etag, size in bytes);
    ``next_marker``: the last part listed (S3 sends it whenever a part is listed),
    ``truncated`` when more follow it."""
    root = ET.Element("ListPartsResult", xmlns=NS)
    _add(root, "Bucket", bucket)
    _add(root, "Key", key)
    _add(root, "UploadId", upload)
    _add(root, "PartNumberMarker", marker)
    if next_marker is not None:
        _add(root, "NextPartNumberMarker", next_marker)
    _add(root, "MaxParts", max_parts)
    _add(root, "IsTruncated", truncated)
    _add(root, "StorageClass", "STANDARD")
    for number, modified, etag, size in parts:
        part = _add(root, "Part")
        _add(part, "PartNumber", number)
        _add(part, "LastModified", s3_time(modified))
        _add(part, "ETag", etag)
        _add(part, "Size", size)
    return _bytes(root)


def uploads_doc(bucket: str, uploads: Iterable[tuple[str, str, float]], max_uploads: int) -> bytes:
    """ListMultipartUploadsResult: ``uploads`` as (key, upload id, initiated seconds), all
    of them (never truncated)."""
    root = ET.Element("ListMultipartUploadsResult", xmlns=NS)
    _add(root, "Bucket", bucket)
    _add(root, "KeyMarker", "")
    _add(root, "UploadIdMarker", "")
    _add(root, "MaxUploads", max_uploads)
    _add(root, "IsTruncated", False)
    for key, upload, initiated in uploads:
        item = _add(root, "Upload")
        _add(item, "Key", key)
        _add(item, "UploadId", upload)
        _add(item, "StorageClass", "STANDARD")
        _add(item, "Initiated", s3_time(initiated))
    return _bytes(root)
