"""A PutObject body as S3 receives it: plain, or ``aws-chunked`` (the streaming upload
encoding of SigV4, https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html),
checked against every digest the request declares.

aws-chunked, as it arrives::

    <size in hex>[;chunk-signature=<sig>]\\r\\n<size bytes>\\r\\n      (repeated)
    0[;chunk-signature=<sig>]\\r\\n
    <trailer name>:<value>\\r\\n                                     (0 or more)
    \\r\\n

Current boto3 sends PutObject over HTTPS this way with a CRC32 of the content in the
trailer ``x-amz-checksum-crc32`` (``x-amz-trailer`` names it). Chunk signatures (and the
trailer's, ``x-amz-trailer-signature``) are checked when the request's SigV4 signature
was (a ``ChunkChain`` from cairn.gateway.sigv4), ignored while auth is off.

Digests checked, each failing with S3's code: ``Content-MD5`` (BadDigest),
``x-amz-content-sha256`` when it is a hex SHA-256 (XAmzContentSHA256Mismatch),
``x-amz-checksum-{crc32,sha1,sha256}`` as a header or a trailer (BadDigest), and
``x-amz-decoded-content-length`` (IncompleteBody). CRC32C and CRC64NVME (the AWS CLI
v2's and the C++ SDK's default, so pyarrow's) are computed by awscrt when it is
installed (``cairn[gateway]``), else in pure Python at about 6 MB/s: correct, slow for
big uploads. Any other algorithm is refused (NotImplemented) before the body is read.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from cairn.gateway.errors import S3Error
from cairn.gateway.sigv4 import ChunkChain

__all__ = ["AwsChunked", "Sink", "receive"]

_MAX_LINE = 4096  # a chunk header or trailer line longer than this is malformed


class Sink(Protocol):
    """Where a body's payload goes: a binary file, or anything with its ``write``."""

    def write(self, data: bytes, /) -> object: ...


class _Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...


class _Crc32:
    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes) -> None:
        self.value = zlib.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


def _reflected_table(poly: int) -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


class _Reflected:
    """A reflected CRC with init and xorout all ones (CRC-32C, CRC-64/NVME; parameters
    from the CRC catalogue), in awscrt when it is installed, else byte by byte here."""

    def __init__(self, width: int, poly: int, native: Callable[[bytes, int], int] | None):
        self._mask = (1 << width) - 1
        self._width = width
        self._native = native
        self._table = _TABLES.setdefault(poly, _reflected_table(poly)) if native is None else []
        self._value = 0  # the finished CRC of what came so far (awscrt's running form)

    def update(self, data: bytes) -> None:
        if self._native is not None:
            self._value = self._native(data, self._value)
            return
        crc, table = self._value ^ self._mask, self._table
        for byte in data:
            crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
        self._value = crc ^ self._mask

    def digest(self) -> bytes:
        return self._value.to_bytes(self._width // 8, "big")


_TABLES: dict[int, list[int]] = {}


@functools.cache
def _natives() -> dict[str, Callable[[bytes, int], int]]:
    try:
        from awscrt import checksums  # optional: cairn[gateway]
    except ImportError:
        return {}
    return {"crc32c": checksums.crc32c, "crc64nvme": checksums.crc64nvme}


_CHECKSUMS: dict[str, Callable[[], _Digest]] = {
    "crc32": _Crc32,
    "crc32c": lambda: _Reflected(32, 0x82F63B78, _natives().get("crc32c")),
    "crc64nvme": lambda: _Reflected(64, 0x9A6C9329AC4BC9B5, _natives().get("crc64nvme")),
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
}
_PREFIX = "x-amz-checksum-"


class AwsChunked:
    """An incremental aws-chunked decoder: ``feed`` bytes as they arrive, get the payload
    bytes back; ``close`` at the end returns the trailers (lower-cased names). Raises
    S3Error IncompleteBody (a body cut short or malformed)."""

    def __init__(self, chain: ChunkChain | None = None) -> None:
        self._buf = bytearray()
        self._left = 0  # payload bytes still due in the current chunk
        self._state = "size"  # size -> data -> crlf -> size ... -> trailers -> done
        self.trailers: dict[str, str] = {}
        self._chain = chain
        self._signature: str | None = None  # the current chunk's, as sent
        self._sha256 = hashlib.sha256()  # of the current chunk's bytes (with a chain)
        self._signed: list[tuple[str, str]] = []  # trailers as sent, for their signature
        self._trailer_signature: str | None = None

    def _line(self) -> bytes | None:
        end = self._buf.find(b"\r\n")
        if end < 0:
            if len(self._buf) > _MAX_LINE:
                raise S3Error("IncompleteBody", "an aws-chunked header line is too long")
            return None
        line = bytes(self._buf[:end])
        del self._buf[: end + 2]
        return line

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        out = bytearray()
        while True:
            if self._state == "data":
                take = min(self._left, len(self._buf))
                if self._chain is not None:
                    self._sha256.update(self._buf[:take])
                out += self._buf[:take]
                del self._buf[:take]
                self._left -= take
                if self._left:
                    break
                self._state = "crlf"
            elif self._state == "crlf":
                if len(self._buf) < 2:
                    break
                if self._buf[:2] != b"\r\n":
                    raise S3Error("IncompleteBody", "an aws-chunked chunk is longer than said")
                del self._buf[:2]
                if self._chain is not None:
                    self._chain.chunk(self._signature, self._sha256.hexdigest())
                    self._sha256 = hashlib.sha256()
                self._state = "size"
            elif self._state == "size":
                line = self._line()
                if line is None:
                    break
                size, _, extension = line.partition(b";")
                try:
                    self._left = int(size.strip(), 16)
                except ValueError:
                    raise S3Error("IncompleteBody", "a malformed aws-chunked size") from None
                name, _, value = extension.decode("latin-1").partition("=")
                self._signature = value.strip() if name.strip() == "chunk-signature" else None
                if not self._left and self._chain is not None:
                    self._chain.chunk(self._signature, self._sha256.hexdigest())
                self._state = "data" if self._left else "trailers"
            elif self._state == "trailers":
                line = self._line()
                if line is None:
                    break
                if not line:
                    self._state = "done"
                    continue
                name, colon, value = line.decode("latin-1").partition(":")
                if not colon:
                    raise S3Error("IncompleteBody", "a malformed aws-chunked trailer")
                if name.strip().lower() == "x-amz-trailer-signature":
                    self._trailer_signature = value.strip()
                else:
                    self.trailers[name.strip().lower()] = value.strip()
                    self._signed.append((name.strip(), value.strip()))
            else:  # done: bytes after the end are malformed
                if self._buf:
                    raise S3Error("IncompleteBody", "bytes after the aws-chunked end")
                break
        return bytes(out)

    def close(self) -> dict[str, str]:
        # Some senders end after the trailers without the final empty line.
        if self._state == "trailers" and not self._buf:
            self._state = "done"
        if self._state != "done":
            raise S3Error("IncompleteBody", "the aws-chunked body ended early")
        if self._chain is not None and self._signed:
            self._chain.trailer(self._trailer_signature, dict(self._signed))
        return self.trailers


async def receive(
    headers: dict[str, str],
    stream: AsyncIterator[bytes],
    sink: Sink,
    chain: ChunkChain | None = None,
) -> int:
    """Write the payload of a request body (``headers`` with lower-cased names) to
    ``sink``, decoding aws-chunked and checking every declared digest and, with ``chain``,
    every chunk signature; returns the payload size in bytes. Raises S3Error (see the
    module doc; SignatureDoesNotMatch for a chunk signature)."""
    encodings = [e.strip() for e in headers.get("content-encoding", "").split(",")]
    sha_header = headers.get("x-amz-content-sha256", "")
    decoder = (
        AwsChunked(chain)
        if "aws-chunked" in encodings or sha_header.startswith("STREAMING-")
        else None
    )
    trailer = headers.get("x-amz-trailer", "").strip().lower()
    declared = [n for n in headers if n.startswith(_PREFIX) and n != _PREFIX + "algorithm"]
    algorithms = {n.removeprefix(_PREFIX) for n in [*declared, trailer] if n}
    algorithms.discard("type")  # x-amz-checksum-type: full object or composite, not a digest
    algorithms.discard("mode")
    for name in algorithms:
        if name not in _CHECKSUMS:
            raise S3Error(
                "NotImplemented",
                f"checksum {name.upper()} is not supported here; use CRC32, CRC32C, "
                "CRC64NVME, SHA1 or SHA256",
            )
    digests: dict[str, _Digest] = {name: _CHECKSUMS[name]() for name in algorithms}
    md5 = hashlib.md5() if "content-md5" in headers else None
    sha256 = hashlib.sha256() if _is_hex_sha256(sha_header) else None
    size = 0
    async for piece in stream:
        data = decoder.feed(piece) if decoder is not None else piece
        if not data:
            continue
        size += len(data)
        for d in digests.values():
            d.update(data)
        if md5 is not None:
            md5.update(data)
        if sha256 is not None:
            sha256.update(data)
        sink.write(data)
    trailers = decoder.close() if decoder is not None else {}
    decoded = headers.get("x-amz-decoded-content-length")
    if decoded is not None and decoded.strip() != str(size):
        raise S3Error("IncompleteBody", f"the body holds {size} bytes, not {decoded}")
    if md5 is not None and base64.b64encode(md5.digest()).decode() != headers["content-md5"]:
        raise S3Error("BadDigest", "the Content-MD5 you specified did not match what we received")
    if sha256 is not None and sha256.hexdigest() != sha_header.lower():
        raise S3Error(
            "XAmzContentSHA256Mismatch",
            "the x-amz-content-sha256 you specified did not match what we received",
        )
    for name, digest in digests.items():
        header = _PREFIX + name
        given = trailers.get(header) if header == trailer else headers.get(header)
        if given is None:
            raise S3Error("InvalidRequest", f"the trailer {header} was announced but not sent")
        if base64.b64encode(digest.digest()).decode() != given:
            raise S3Error(
                "BadDigest", f"the {name.upper()} you specified did not match the calculated one"
            )
    return size


def _is_hex_sha256(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text)
