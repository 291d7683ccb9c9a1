"""aws-chunked decoding and digest checks of PutObject bodies (cairn.gateway.body), on
bodies built by hand: split anywhere, signed or not, with good and bad trailers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import zlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cairn.gateway.body import AwsChunked, receive
from cairn.gateway.errors import S3Error


def _chunked(data: bytes, size: int, trailers: dict[str, str], signed: bool = False) -> bytes:
    sig = ";chunk-signature=" + "0" * 64 if signed else ""
    out = b""
    for at in range(0, len(data), size):
        piece = data[at : at + size]
        out += f"{len(piece):x}{sig}\r\n".encode() + piece + b"\r\n"
    out += f"0{sig}\r\n".encode()
    out += b"".join(f"{k}:{v}\r\n".encode() for k, v in trailers.items())
    return out + b"\r\n"


def _crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


async def _pieces(body: bytes, step: int) -> AsyncIterator[bytes]:
    for at in range(0, len(body), step):
        yield body[at : at + step]


def _receive(headers: dict[str, str], body: bytes, step: int = 7) -> bytes:
    sink = io.BytesIO()
    asyncio.run(receive(headers, _pieces(body, step), sink))
    return sink.getvalue()


CHUNKED = {
    "content-encoding": "aws-chunked",
    "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    "x-amz-trailer": "x-amz-checksum-crc32",
}


@pytest.mark.parametrize("step", [1, 2, 5, 64, 10_000])
@pytest.mark.parametrize("signed", [False, True])
def test_decodes_whatever_the_split(step: int, signed: bool) -> None:
    data = bytes(range(256)) * 7
    body = _chunked(data, 300, {"x-amz-checksum-crc32": _crc32(data)}, signed=signed)
    headers = {**CHUNKED, "x-amz-decoded-content-length": str(len(data))}
    assert _receive(headers, body, step) == data


def test_a_wrong_trailer_is_bad_digest() -> None:
    body = _chunked(b"hello", 2, {"x-amz-checksum-crc32": _crc32(b"other")})
    with pytest.raises(S3Error) as exc:
        _receive(CHUNKED, body)
    assert exc.value.code == "BadDigest"


def test_an_announced_trailer_that_never_comes_is_refused() -> None:
    with pytest.raises(S3Error) as exc:
        _receive(CHUNKED, _chunked(b"hello", 2, {}))
    assert exc.value.code == "InvalidRequest"


@pytest.mark.parametrize(
    "body",
    [
        b"5\r\nhel",  # cut inside a chunk
        b"5\r\nhello\r\n",  # no last chunk
        b"zz\r\nhello\r\n0\r\n\r\n",  # not a hex size
        b"3\r\nhello\r\n0\r\n\r\n",  # a chunk longer than its size
        b"0\r\n\r\nextra",  # bytes after the end
    ],
)
def test_malformed_bodies_are_incomplete(body: bytes) -> None:
    with pytest.raises(S3Error) as exc:
        _receive({"content-encoding": "aws-chunked"}, body)
    assert exc.value.code == "IncompleteBody"


def test_decoded_length_must_match() -> None:
    body = _chunked(b"hello", 5, {})
    headers = {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": "6"}
    with pytest.raises(S3Error) as exc:
        _receive(headers, body)
    assert exc.value.code == "IncompleteBody"


def test_plain_bodies_check_sha256_and_header_checksums() -> None:
    good = {
        "x-amz-content-sha256": hashlib.sha256(b"abc").hexdigest(),
        "x-amz-checksum-sha1": base64.b64encode(hashlib.sha1(b"abc").digest()).decode(),
    }
    assert _receive(good, b"abc") == b"abc"
    with pytest.raises(S3Error) as exc:
        _receive({"x-amz-content-sha256": hashlib.sha256(b"x").hexdigest()}, b"abc")
    assert exc.value.code == "XAmzContentSHA256Mismatch"
    assert _receive({"x-amz-content-sha256": "UNSIGNED-PAYLOAD"}, b"abc") == b"abc"


def test_the_decoder_returns_trailers_by_lower_case_name() -> None:
    decoder = AwsChunked()
    assert decoder.feed(b"3\r\nabc\r\n0\r\nX-Amz-Checksum-CRC32:AAAA\r\n\r\n") == b"abc"
    assert decoder.close() == {"x-amz-checksum-crc32": "AAAA"}


@pytest.mark.parametrize(
    "name,check",
    [("crc32c", 0xE3069283), ("crc64nvme", 0xAE8B14860A799888)],  # the CRC catalogue's
)
def test_the_crcs_of_newer_sdks_match_the_catalogue(name: str, check: int) -> None:
    width = 4 if name == "crc32c" else 8
    value = base64.b64encode(check.to_bytes(width, "big")).decode()
    headers = {f"x-amz-checksum-{name}": value}
    assert _receive(headers, b"123456789", step=4) == b"123456789"
    with pytest.raises(S3Error) as exc:
        _receive(headers, b"123456780")
    assert exc.value.code == "BadDigest"


# AWS's worked example of a body signed by chunk (S3 API reference, "Signature
# Calculations for the Authorization Header: Transferring Payload in Multiple Chunks"):
# its key, time, scope, seed signature and the three chunk signatures it lists.
_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
_SCOPE = "20130524/us-east-1/s3/aws4_request"
_SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
_CHUNKS = [
    (b"a" * 65536, "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"),
    (b"a" * 1024, "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"),
    (b"", "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"),
]


def _signed_body(chunks: list[tuple[bytes, str]]) -> bytes:
    return b"".join(
        f"{len(data):x};chunk-signature={sig}\r\n".encode() + data + b"\r\n" for data, sig in chunks
    )


def _chain() -> Any:
    from cairn.gateway.sigv4 import ChunkChain, signing_key

    return ChunkChain(signing_key(_SECRET, _SCOPE), "20130524T000000Z", _SCOPE, _SEED)


def test_chunk_signatures_of_aws_example_are_accepted() -> None:
    decoder = AwsChunked(_chain())
    assert decoder.feed(_signed_body(_CHUNKS)) == b"a" * 66560
    assert decoder.close() == {}


def test_a_changed_chunk_or_signature_is_refused() -> None:
    changed = [(b"b" + _CHUNKS[0][0][1:], _CHUNKS[0][1]), *_CHUNKS[1:]]
    with pytest.raises(S3Error) as exc:
        AwsChunked(_chain()).feed(_signed_body(changed))
    assert exc.value.code == "SignatureDoesNotMatch"
    reordered = [_CHUNKS[1], _CHUNKS[0], _CHUNKS[2]]
    with pytest.raises(S3Error) as exc:
        AwsChunked(_chain()).feed(_signed_body(reordered))
    assert exc.value.code == "SignatureDoesNotMatch"
    unsigned = b"".join(f"{len(d):x}\r\n".encode() + d + b"\r\n" for d, _ in _CHUNKS)
    with pytest.raises(S3Error) as exc:
        AwsChunked(_chain()).feed(unsigned)
    assert exc.value.code == "SignatureDoesNotMatch"
