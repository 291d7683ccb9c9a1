"""aws-chunked decoding and digest checks of PutObject bodies (cairn.gateway.body), on
bodies built by hand: split anywhere, signed or not, with good and bad trailers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import zlib
from collections.abc import AsyncIterator

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
