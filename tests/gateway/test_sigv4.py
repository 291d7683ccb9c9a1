"""SigV4 checked against AWS's own worked example (S3 API reference, "Signature
Calculations for the Authorization Header: Transferring Payload in Multiple Chunks"): the
seed signature of its PUT, then what changes make it fail."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from cairn.gateway import sigv4
from cairn.gateway.errors import S3Error

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
HEADERS = {
    "content-encoding": ["aws-chunked"],
    "content-length": ["66824"],
    "host": ["s3.amazonaws.com"],
    "x-amz-content-sha256": ["STREAMING-AWS4-HMAC-SHA256-PAYLOAD"],
    "x-amz-date": ["20130524T000000Z"],
    "x-amz-decoded-content-length": ["66560"],
    "x-amz-storage-class": ["REDUCED_REDUNDANCY"],
}
SIGNED = sigv4.Signed(
    "AKIAIOSFODNN7EXAMPLE",
    "20130524/us-east-1/s3/aws4_request",
    "20130524T000000Z",
    tuple(sorted(HEADERS)),
    "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
)
THEN = dt.datetime(2013, 5, 24, 0, 5, tzinfo=dt.UTC)


def _verify(signed: sigv4.Signed = SIGNED, **changes: object) -> object:
    request: dict[str, object] = {
        "method": "PUT",
        "raw_path": "/examplebucket/chunkObject.txt",
        "query": [],
        "headers": HEADERS,
        "now": THEN,
    }
    request.update(changes)
    return sigv4.verify(signed, SECRET, **request)  # type: ignore[arg-type]


def test_aws_example_seed_signature_verifies_and_starts_the_chunk_chain() -> None:
    assert isinstance(_verify(), sigv4.ChunkChain)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"method": "POST"}, "SignatureDoesNotMatch"),
        ({"raw_path": "/examplebucket/other.txt"}, "SignatureDoesNotMatch"),
        ({"query": [("uploads", "")]}, "SignatureDoesNotMatch"),
        ({"headers": {**HEADERS, "content-length": ["1"]}}, "SignatureDoesNotMatch"),
        ({"now": THEN + dt.timedelta(hours=1)}, "RequestTimeTooSkewed"),
    ],
)
def test_a_changed_request_is_refused(change: dict[str, object], code: str) -> None:
    with pytest.raises(S3Error) as exc:
        _verify(**change)
    assert exc.value.code == code


def test_presigned_urls_expire_and_need_the_host_signed() -> None:
    presigned = dataclasses.replace(SIGNED, payload="UNSIGNED-PAYLOAD", expires=60)
    with pytest.raises(S3Error) as exc:
        _verify(presigned, now=THEN + dt.timedelta(minutes=2))
    assert exc.value.code == "AccessDenied"
    hostless = dataclasses.replace(SIGNED, headers=("x-amz-date",))
    with pytest.raises(S3Error) as exc:
        _verify(hostless)
    assert exc.value.code == "AuthorizationHeaderMalformed"
