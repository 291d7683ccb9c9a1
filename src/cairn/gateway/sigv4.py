"""AWS Signature Version 4, checked as S3 checks it: who signed a request, from the
``Authorization`` header or a presigned URL's query, with an access key cairn issued
(cairn.catalog.auth.AuthStore.create_s3_key).

The algorithm is AWS's documented one ("Create a signed AWS API request", and S3's
"Authenticating Requests: Using the Authorization Header" / "Using Query Parameters"):
canonical request (method, the path as sent, the sorted URI-encoded query, the signed
headers, the payload hash), string to sign (algorithm, time, scope, SHA-256 of the
canonical request), signing key (HMAC-SHA256 chain over date, region, service,
``aws4_request`` from ``AWS4`` + secret). The payload hash is the client's
``x-amz-content-sha256`` as sent: cairn.gateway.body checks a hex hash against the body,
and the chunk signatures of ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`` with
``ChunkChain``; ``UNSIGNED-PAYLOAD`` and ``STREAMING-UNSIGNED-PAYLOAD-TRAILER`` sign no
body bytes (their checksums are still checked).

Any region and the service ``s3`` are accepted in the scope. Secrets are never logged nor
put in an error message.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote

from cairn.gateway.errors import S3Error

__all__ = ["ChunkChain", "Signed", "decoded_query", "parse", "signing_key", "verify"]

ALGORITHM = "AWS4-HMAC-SHA256"
_SKEW = dt.timedelta(minutes=15)  # S3's RequestTimeTooSkewed limit
_MAX_EXPIRES = 7 * 24 * 3600  # a presigned URL lives at most 7 days (S3's limit)
_HEADER = re.compile(
    rf"{ALGORITHM}\s+Credential=(?P<cred>[^,\s]+)\s*,\s*"
    r"SignedHeaders=(?P<headers>[^,\s]+)\s*,\s*Signature=(?P<sig>[0-9a-f]{64})\s*"
)
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Signed:
    """What a request claims: the access key id, the scope (``date/region/s3/aws4_request``),
    the signing time (``YYYYMMDDTHHMMSSZ``), the signed header names (lower case, sorted as
    sent), the signature (hex), the payload hash, and for a presigned URL its lifetime in
    seconds."""

    key_id: str
    scope: str
    amz_date: str
    headers: tuple[str, ...]
    signature: str
    payload: str
    expires: int | None = None


def parse(headers: Mapping[str, str], query: Sequence[tuple[str, str]]) -> Signed | None:
    """The signature a request carries (headers: lower-case names), or None when it is
    unsigned. Raises S3Error AuthorizationHeaderMalformed, AuthorizationQueryParametersError
    or AccessDenied (a signature scheme other than SigV4)."""
    params = dict(query)
    auth = headers.get("authorization")
    if auth is not None:
        if not auth.startswith(ALGORITHM):
            raise S3Error("AccessDenied", "only AWS Signature Version 4 is accepted")
        m = _HEADER.fullmatch(auth.strip())
        if m is None:
            raise S3Error("AuthorizationHeaderMalformed", "the Authorization header is malformed")
        key_id, _, scope = m["cred"].partition("/")
        amz_date = headers.get("x-amz-date") or ""
        payload = headers.get("x-amz-content-sha256")
        if payload is None:
            raise S3Error("InvalidRequest", "a signed request needs x-amz-content-sha256")
        return Signed(key_id, scope, amz_date, tuple(m["headers"].split(";")), m["sig"], payload)
    if "X-Amz-Signature" not in params:
        if "Signature" in params:  # SigV2's query form
            raise S3Error("AccessDenied", "only AWS Signature Version 4 is accepted")
        return None
    try:
        if params["X-Amz-Algorithm"] != ALGORITHM:
            raise S3Error("AccessDenied", "only AWS Signature Version 4 is accepted")
        key_id, _, scope = params["X-Amz-Credential"].partition("/")
        expires = int(params["X-Amz-Expires"])
        signed = Signed(
            key_id,
            scope,
            params["X-Amz-Date"],
            tuple(params["X-Amz-SignedHeaders"].split(";")),
            params["X-Amz-Signature"],
            params.get("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD"),
            expires,
        )
    except (KeyError, ValueError):
        raise S3Error(
            "AuthorizationQueryParametersError", "the presigned URL's X-Amz-* parameters"
        ) from None
    if not 0 < expires <= _MAX_EXPIRES:
        raise S3Error("AuthorizationQueryParametersError", "X-Amz-Expires is out of range")
    return signed


def verify(
    signed: Signed,
    secret: str,
    *,
    method: str,
    raw_path: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, list[str]],
    now: dt.datetime,
) -> ChunkChain | None:
    """Check ``signed`` against the request, signed with ``secret``. ``raw_path`` is the
    path as sent (still percent-encoded), ``query`` the decoded query pairs in order,
    ``headers`` lower-case name -> values. Raises S3Error SignatureDoesNotMatch,
    AccessDenied (a presigned URL expired or not yet valid), RequestTimeTooSkewed,
    AuthorizationHeaderMalformed (a bad scope or time). Returns the chain that checks
    the body's chunk signatures when the payload is ``STREAMING-AWS4-HMAC-SHA256-*``."""
    date, region, service, terminal = (signed.scope.split("/") + ["", "", "", ""])[:4]
    try:
        when = dt.datetime.strptime(signed.amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise S3Error("AuthorizationHeaderMalformed", "X-Amz-Date is not a time") from None
    if service != "s3" or terminal != "aws4_request" or date != signed.amz_date[:8]:
        raise S3Error("AuthorizationHeaderMalformed", "the credential scope is not s3's")
    if signed.expires is None:
        if abs(now - when) > _SKEW:
            raise S3Error("RequestTimeTooSkewed", "the request's time is too far from ours")
    elif not when - _SKEW <= now <= when + dt.timedelta(seconds=signed.expires):
        raise S3Error("AccessDenied", "the presigned URL has expired")
    if "host" not in signed.headers:
        raise S3Error("AuthorizationHeaderMalformed", "the host header must be signed")
    pairs = [(k, v) for k, v in query if k != "X-Amz-Signature" or signed.expires is None]
    canonical = "\n".join(
        [
            method,
            raw_path or "/",
            _canonical_query(pairs),
            "".join(f"{h}:{_canonical_value(headers.get(h, []))}\n" for h in signed.headers),
            ";".join(signed.headers),
            signed.payload,
        ]
    )
    to_sign = "\n".join(
        [ALGORITHM, signed.amz_date, signed.scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = signing_key(secret, signed.scope)
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signed.signature):
        raise _mismatch()
    if signed.payload.startswith("STREAMING-AWS4-HMAC-SHA256-"):
        return ChunkChain(key, signed.amz_date, signed.scope, signed.signature)
    return None


def signing_key(secret: str, scope: str) -> bytes:
    """SigV4's signing key: HMAC-SHA256 of each part of ``scope``
    (``date/region/service/aws4_request``) in turn, from ``AWS4`` + ``secret``."""
    key = f"AWS4{secret}".encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _mismatch() -> S3Error:
    return S3Error(
        "SignatureDoesNotMatch",
        "the request signature we calculated does not match the signature you provided",
    )


_EMPTY = hashlib.sha256(b"").hexdigest()


class ChunkChain:
    """The signatures of an ``aws-chunked`` body signed chunk by chunk (S3's "Signature
    Calculations for the Authorization Header: Transferring Payload in Multiple Chunks"):
    each chunk's signature signs its bytes' SHA-256 and the previous signature, from the
    request's own (the seed); the trailer's, the trailing headers after the last chunk.
    Raises S3Error SignatureDoesNotMatch."""

    def __init__(self, key: bytes, amz_date: str, scope: str, seed: str) -> None:
        self._key, self._date, self._scope, self._previous = key, amz_date, scope, seed

    def _next(self, kind: str, digest: str, signature: str | None) -> None:
        to_sign = "\n".join([kind, self._date, self._scope, self._previous, *digest.split(",")])
        expected = hmac.new(self._key, to_sign.encode(), hashlib.sha256).hexdigest()
        if signature is None or not hmac.compare_digest(expected, signature):
            raise _mismatch()
        self._previous = expected

    def chunk(self, signature: str | None, sha256_hex: str) -> None:
        """Check the signature of the next chunk, whose bytes hash to ``sha256_hex``."""
        self._next(f"{ALGORITHM}-PAYLOAD", f"{_EMPTY},{sha256_hex}", signature)

    def trailer(self, signature: str | None, trailers: Mapping[str, str]) -> None:
        """Check the trailer signature over ``trailers`` (name -> value, as sent)."""
        text = "".join(f"{k}:{v}\n" for k, v in trailers.items())
        self._next(f"{ALGORITHM}-TRAILER", hashlib.sha256(text.encode()).hexdigest(), signature)


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


def _canonical_query(pairs: Sequence[tuple[str, str]]) -> str:
    return "&".join(f"{k}={v}" for k, v in sorted((_encode(k), _encode(v)) for k, v in pairs))


def _canonical_value(values: list[str]) -> str:
    return ",".join(_SPACES.sub(" ", v.strip()) for v in values)


def decoded_query(raw: str) -> list[tuple[str, str]]:
    """``raw`` (a query string as sent) as decoded pairs in order; a name without ``=``
    has the value ``""`` (``?uploads``). ``+`` stays a plus: SigV4 clients encode spaces
    as ``%20``."""
    out = []
    for item in raw.split("&") if raw else []:
        name, _, value = item.partition("=")
        out.append((unquote(name), unquote(value)))
    return out
