"""moto's S3 server as an oracle: one sequence of boto3 calls (listings with prefixes,
delimiters and pages, ranges, conditional gets, multipart, copy, multi-delete, errors) runs
against moto and against the gateway, on a bucket of the same name whose keys all start
with ``master/``; the two transcripts must be equal once the fields README's "S3 gateway:
differences from S3" names are left out (``IGNORED``)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from tests.conftest import S3Server
from tests.gateway.conftest import gateway, s3_client

from cairn.api.protocol import ClientProtocol

# Fields left out of both transcripts, each a difference README lists: ETags of whole
# objects are BLAKE3, not MD5 (part ETags are MD5 in both, and compared); times are the
# commit's; the gateway stores no owner, storage class or checksum algorithm.
IGNORED = {
    "ETag",
    "LastModified",
    "Owner",
    "StorageClass",
    "ChecksumAlgorithm",
    "ChecksumType",
    "ChecksumCRC32",
    "ChecksumCRC64NVME",
    "ServerSideEncryption",
    "ContentType",
    "AcceptRanges",
    "Location",
    "Initiator",
    "Initiated",  # moto sends a fixed date (2010)
    "RequestCharged",
    # S3 sends no version id for a bucket without S3 versioning; moto sends "null"
    "VersionId",
    # the request's token and marker echoed: S3 does, moto does not
    "ContinuationToken",
    "Marker",
}
# Steps whose answer is the gateway's own, asserted instead of moto's: each is in README's
# list of differences, or is moto departing from S3's documentation.
OWN_ANSWERS: dict[str, object] = {
    # moto lists the deleted keys in quiet mode; S3 documents only errors
    "delete quietly": {"status": 200},
    # moto joins parts listed out of order; S3 documents InvalidPartOrder
    "complete out of order": {"error": "InvalidPartOrder", "status": 400},
    # moto answers 200 (S3's legacy us-east-1 answer); the gateway refuses as S3 does in
    # every other region (README)
    "create existing": {"error": "BucketAlreadyOwnedByYou", "status": 409},
    # moto answers a bare 404 without a code; S3 documents NoSuchKey
    "copy part missing": {"error": "NoSuchKey", "status": 404},
    # moto tests only x-amz-copy-source-if-none-match; S3 documents 412 for each of these
    "copy if match fails": {"error": "PreconditionFailed", "status": 412},
    "copy if modified since fails": {"error": "PreconditionFailed", "status": 412},
    "copy if unmodified since fails": {"error": "PreconditionFailed", "status": 412},
}

PART = 5 << 20  # S3's smallest part that is not the last


def _clean(value: Any) -> Any:
    """``value`` without IGNORED fields and tokens: opaque, so only their presence counts."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in IGNORED or v == "":  # an empty element means what an absent one does
                continue
            if k == "ResponseMetadata":
                out["status"] = v["HTTPStatusCode"]
            elif k in ("NextContinuationToken", "NextMarker", "UploadId"):
                out[k] = "<token>"
            elif k == "Body":
                out[k] = v.read()
            else:
                out[k] = _clean(v)
        return out
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _call(fn: Callable[..., Any], **kwargs: Any) -> Any:
    try:
        return _clean(fn(**kwargs))
    except ClientError as exc:
        return {
            "error": exc.response["Error"].get("Code"),
            "status": exc.response["ResponseMetadata"]["HTTPStatusCode"],
        }


def _scenario(s3: Any, bucket: str) -> list[tuple[str, Any]]:
    """The transcript: (step, cleaned answer or error code and status) for each call."""
    out: list[tuple[str, Any]] = []

    def step(name: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        result = _call(fn, **kwargs)
        out.append((name, result))
        return result

    blob = bytes(range(256)) * 4  # 1,024 bytes
    step("create bucket", s3.create_bucket, Bucket=bucket)
    step("head bucket", s3.head_bucket, Bucket=bucket)
    for key, body in [
        ("master/a.csv", b"x,y\n1,2\n"),
        ("master/b/1.txt", b"one"),
        ("master/b/2.txt", b"two"),
        ("master/b/c/3.txt", b"three"),
        ("master/blob.bin", blob),
        ("master/z.v1.txt", b"zed"),
    ]:
        step(f"put {key}", s3.put_object, Bucket=bucket, Key=key, Body=body)
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    out.append(("bucket listed", bucket in names))

    # listings
    v2 = s3.list_objects_v2
    step("list all", v2, Bucket=bucket)
    step("list master/ by /", v2, Bucket=bucket, Prefix="master/", Delimiter="/")
    step("list master/b/ by /", v2, Bucket=bucket, Prefix="master/b/", Delimiter="/")
    step("list master/b by /", v2, Bucket=bucket, Prefix="master/b", Delimiter="/")
    step("list mas by /", v2, Bucket=bucket, Prefix="mas", Delimiter="/")
    step("list by .", v2, Bucket=bucket, Prefix="master/", Delimiter=".")
    step("list master/nothing", v2, Bucket=bucket, Prefix="master/nothing")
    step("list start-after", v2, Bucket=bucket, StartAfter="master/b/2.txt")
    page = step("page 1", v2, Bucket=bucket, Prefix="master/", MaxKeys=2)
    token = s3.list_objects_v2(Bucket=bucket, Prefix="master/", MaxKeys=2).get(
        "NextContinuationToken"
    )
    n = 2
    while page.get("IsTruncated") and n < 10:
        page = step(
            f"page {n}", v2, Bucket=bucket, Prefix="master/", MaxKeys=2, ContinuationToken=token
        )
        token = s3.list_objects_v2(
            Bucket=bucket, Prefix="master/", MaxKeys=2, ContinuationToken=token
        ).get("NextContinuationToken")
        n += 1
    step("pages by /", v2, Bucket=bucket, Prefix="master/", Delimiter="/", MaxKeys=3)
    step("v1 page", s3.list_objects, Bucket=bucket, Prefix="master/", MaxKeys=2)
    step("v1 marker", s3.list_objects, Bucket=bucket, Marker="master/b/1.txt", MaxKeys=2)
    # no max-keys: moto counts it over keys alone, S3 over keys and common prefixes
    step("v1 by /", s3.list_objects, Bucket=bucket, Prefix="master/", Delimiter="/")

    # ranges
    get = s3.get_object
    k = "master/blob.bin"
    for r in ["bytes=0-9", "bytes=-10", "bytes=1000-", "bytes=10-99999", "bytes=5-2"]:
        step(f"range {r}", get, Bucket=bucket, Key=k, Range=r)
    step("range past the end", get, Bucket=bucket, Key=k, Range="bytes=1024-")
    step("head", s3.head_object, Bucket=bucket, Key=k)

    # conditional gets
    etag = s3.head_object(Bucket=bucket, Key=k)["ETag"]
    past = dt.datetime(2001, 1, 1, tzinfo=dt.UTC)
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
    step("if-match", get, Bucket=bucket, Key=k, IfMatch=etag)
    step("if-match other", get, Bucket=bucket, Key=k, IfMatch='"0123"')
    step("if-none-match", get, Bucket=bucket, Key=k, IfNoneMatch=etag)
    step("if-none-match other", get, Bucket=bucket, Key=k, IfNoneMatch='"0123"')
    step("if-modified-since past", get, Bucket=bucket, Key=k, IfModifiedSince=past)
    step("if-modified-since later", get, Bucket=bucket, Key=k, IfModifiedSince=soon)
    step("if-unmodified-since past", get, Bucket=bucket, Key=k, IfUnmodifiedSince=past)
    step("if-unmodified-since later", get, Bucket=bucket, Key=k, IfUnmodifiedSince=soon)
    step("head if-none-match", s3.head_object, Bucket=bucket, Key=k, IfNoneMatch=etag)

    # multipart
    key = "master/big/parts.bin"
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    step(
        "part 1",
        s3.upload_part,
        Bucket=bucket,
        Key=key,
        UploadId=upload,
        PartNumber=1,
        Body=b"a" * PART,
    )
    step(
        "part 2",
        s3.upload_part,
        Bucket=bucket,
        Key=key,
        UploadId=upload,
        PartNumber=2,
        Body=b"b" * PART,
    )
    step("list parts", s3.list_parts, Bucket=bucket, Key=key, UploadId=upload)
    heads = [
        s3.list_parts(Bucket=bucket, Key=key, UploadId=upload)["Parts"][i]["ETag"] for i in (0, 1)
    ]
    parts = [{"PartNumber": i + 1, "ETag": e} for i, e in enumerate(heads)]
    step(
        "complete wrong etag",
        s3.complete_multipart_upload,
        Bucket=bucket,
        Key=key,
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"00"'}]},
    )
    step(
        "complete",
        s3.complete_multipart_upload,
        Bucket=bucket,
        Key=key,
        UploadId=upload,
        MultipartUpload={"Parts": parts},
    )
    step("get completed", get, Bucket=bucket, Key=key, Range="bytes=5242878-5242881")
    step("list parts of completed", s3.list_parts, Bucket=bucket, Key=key, UploadId=upload)
    small = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    tags = [
        s3.upload_part(Bucket=bucket, Key=key, UploadId=small, PartNumber=i, Body=b"s")["ETag"]
        for i in (1, 2)
    ]
    step(
        "complete too small",
        s3.complete_multipart_upload,
        Bucket=bucket,
        Key=key,
        UploadId=small,
        MultipartUpload={"Parts": [{"PartNumber": i + 1, "ETag": t} for i, t in enumerate(tags)]},
    )
    step(
        "complete out of order",
        s3.complete_multipart_upload,
        Bucket=bucket,
        Key=key,
        UploadId=small,
        MultipartUpload={
            "Parts": [{"PartNumber": 2 - i, "ETag": t} for i, t in enumerate(tags[::-1])]
        },
    )
    step("abort", s3.abort_multipart_upload, Bucket=bucket, Key=key, UploadId=small)
    step("list parts of aborted", s3.list_parts, Bucket=bucket, Key=key, UploadId=small)

    # uploads in progress, and parts copied from objects (whole and a range)
    pending = s3.create_multipart_upload(Bucket=bucket, Key="master/pending.bin")["UploadId"]
    step("list uploads", s3.list_multipart_uploads, Bucket=bucket)
    step("list uploads by prefix", s3.list_multipart_uploads, Bucket=bucket, Prefix="master/no")
    source = {"Bucket": bucket, "Key": key}
    copied = {"Bucket": bucket, "Key": "master/pending.bin", "UploadId": pending}
    step("copy part", s3.upload_part_copy, PartNumber=1, CopySource=source, **copied)
    step(
        "copy part range",
        s3.upload_part_copy,
        PartNumber=2,
        CopySource=source,
        CopySourceRange="bytes=10-19",
        **copied,
    )
    missing = {"Bucket": bucket, "Key": "master/missing"}
    step("copy part missing", s3.upload_part_copy, PartNumber=3, CopySource=missing, **copied)
    step("list copied parts", s3.list_parts, **copied)
    step("abort pending", s3.abort_multipart_upload, **copied)
    step("list uploads after abort", s3.list_multipart_uploads, Bucket=bucket)

    # copy
    step(
        "copy",
        s3.copy_object,
        Bucket=bucket,
        Key="master/copy/a.csv",
        CopySource={"Bucket": bucket, "Key": "master/a.csv"},
    )
    step("get copy", get, Bucket=bucket, Key="master/copy/a.csv")
    tag = s3.head_object(Bucket=bucket, Key="master/a.csv")["ETag"]
    past, future = dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
    conditions: dict[str, dict[str, Any]] = {
        "copy if match": {"CopySourceIfMatch": tag},
        "copy if match fails": {"CopySourceIfMatch": '"0123"'},
        "copy if none match fails": {"CopySourceIfNoneMatch": tag},
        "copy if modified since fails": {"CopySourceIfModifiedSince": future},
        "copy if unmodified since fails": {"CopySourceIfUnmodifiedSince": past},
        "copy if match outweighs unmodified since": {
            "CopySourceIfMatch": tag,
            "CopySourceIfUnmodifiedSince": past,
        },
    }
    for name, headers in conditions.items():
        step(
            name,
            s3.copy_object,
            Bucket=bucket,
            Key="master/copy/c.csv",
            CopySource={"Bucket": bucket, "Key": "master/a.csv"},
            **headers,
        )
    step(
        "copy missing",
        s3.copy_object,
        Bucket=bucket,
        Key="master/copy/x",
        CopySource={"Bucket": bucket, "Key": "master/missing"},
    )

    # deletes
    step(
        "delete objects",
        s3.delete_objects,
        Bucket=bucket,
        Delete={
            "Objects": [
                {"Key": "master/a.csv"},
                {"Key": "master/missing.txt"},
                {"Key": "master/b/1.txt"},
            ]
        },
    )
    step(
        "delete quietly",
        s3.delete_objects,
        Bucket=bucket,
        Delete={"Quiet": True, "Objects": [{"Key": "master/z.v1.txt"}]},
    )
    step("delete object", s3.delete_object, Bucket=bucket, Key="master/b/2.txt")
    step("delete missing", s3.delete_object, Bucket=bucket, Key="master/none")
    step("list after deletes", v2, Bucket=bucket, Prefix="master/")

    # errors
    step("get missing", get, Bucket=bucket, Key="master/missing.txt")
    step("head missing", s3.head_object, Bucket=bucket, Key="master/missing.txt")
    step("get deleted", get, Bucket=bucket, Key="master/a.csv")
    step("get no bucket", get, Bucket=f"{bucket}-none", Key="master/a.csv")
    step("list no bucket", v2, Bucket=f"{bucket}-none")
    step("head no bucket", s3.head_bucket, Bucket=f"{bucket}-none")
    step("put no bucket", s3.put_object, Bucket=f"{bucket}-none", Key="master/x", Body=b"x")
    step("create existing", s3.create_bucket, Bucket=bucket)
    return out


def test_the_gateway_answers_as_moto_does(
    s3_server: S3Server, s3_env: None, tmp_path: Any, request: pytest.FixtureRequest
) -> None:
    from tests.gateway.conftest import embedded

    bucket = f"diff-{uuid.uuid4().hex[:12]}"
    moto = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    expected = [(name, OWN_ANSWERS.get(name, answer)) for name, answer in _scenario(moto, bucket)]
    client: ClientProtocol
    with embedded(tmp_path / "home") as client, gateway(client) as url:
        got = _scenario(s3_client(url), bucket)
    assert [name for name, _ in got] == [name for name, _ in expected]
    differ = [
        f"{name}:\n  gateway {mine}\n  moto    {theirs}"
        for (name, mine), (_, theirs) in zip(got, expected, strict=True)
        if mine != theirs
    ]
    assert not differ, "\n".join(differ)
