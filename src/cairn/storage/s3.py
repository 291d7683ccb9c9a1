"""The object store on any S3-compatible service (``s3://bucket/prefix``), through boto3.

Credentials, region, retries and the endpoint come from boto3's own chain: the
standard ``AWS_*`` environment variables, then ``~/.aws/config`` and
``~/.aws/credentials`` (``AWS_PROFILE`` picks a profile). ``AWS_ENDPOINT_URL_S3``
or ``AWS_ENDPOINT_URL`` point it at MinIO, Ceph, R2 or any other S3 speaker; an
``endpoint_url`` query parameter of the store's URL overrides them, and ``region``
and ``addressing_style`` (``path`` / ``virtual``) may be given the same way::

    s3://bucket/cairn?endpoint_url=http://127.0.0.1:9000&addressing_style=path

A put is a conditional PutObject (``If-None-Match: *``): the store refuses to
replace a key that exists, in one request, so a second put of a key is a no-op
without a HEAD first. A service that ignores the condition overwrites the key
with the same bytes (keys are content hashes or fresh ids), which is harmless.
The bucket must exist; opening the store checks that it does.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator
from typing import Any, NoReturn
from urllib.parse import parse_qs, urlencode, urlparse

# Without the s3 extra this import fails; open_object_store (backends.py) turns that into
# UnsupportedBackend naming the extra to install.
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cairn.storage.base import ObjectStore, check_key, check_range
from cairn.storage.errors import ObjectNotFound, StorageError, UnsupportedBackend

__all__ = ["S3ObjectStore"]

# Loose on purpose: S3-compatible services differ on bucket names; what cairn checks is
# that the URL names one at all and that it cannot smuggle a path or credentials.
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
_QUERY_KEYS = ("endpoint_url", "region", "addressing_style")
_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
# 412: the key exists (If-None-Match: *); 409: a concurrent conditional put of it won.
_ALREADY_THERE = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}

# Loading S3's service model takes most of the time of making a client (about 0.2 s);
# botocore's loader caches it, so every store shares one loader. Each store still gets
# its own session, which reads credentials and configuration afresh.
_loader_lock = threading.Lock()
_loader: Any = None


def _new_session() -> Any:
    global _loader
    session = botocore.session.get_session()
    with _loader_lock:
        if _loader is None:
            _loader = session.get_component("data_loader")
        else:
            session.register_component("data_loader", _loader)
    return session


def _parse(url: str) -> tuple[str, str, dict[str, str]]:
    """(bucket, prefix, options) of an ``s3://`` URL. Raises StorageError."""
    parsed = urlparse(url)
    if parsed.scheme != "s3":
        raise UnsupportedBackend(f"not an s3:// URL: {parsed.scheme}://")
    if "@" in parsed.netloc:
        raise StorageError(
            "s3:// URLs take no credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "or use ~/.aws/credentials"
        )
    bucket = parsed.netloc
    if not bucket:
        raise StorageError(f"s3 URL names no bucket: {url!r}; write s3://BUCKET/PREFIX")
    if not _BUCKET.fullmatch(bucket):
        raise StorageError(f"invalid S3 bucket name {bucket!r}")
    prefix = parsed.path.strip("/")
    if prefix:
        check_key(prefix)
    options: dict[str, str] = {}
    for name, values in parse_qs(parsed.query, keep_blank_values=True).items():
        if name not in _QUERY_KEYS:
            raise StorageError(
                f"unknown s3 URL parameter {name!r}; known: {', '.join(_QUERY_KEYS)}"
            )
        options[name] = values[-1]
    return bucket, prefix, options


class S3ObjectStore(ObjectStore):
    """Objects as keys ``<prefix>/<key>`` of one S3 bucket (``s3://bucket/prefix``).

    Every method raises StorageError (naming the bucket and key, never a credential)
    when the service fails or cannot be reached, ObjectNotFound where a key is missing.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        addressing_style: str | None = None,
        client: Any = None,
    ) -> None:
        """Open ``bucket`` (which must exist) below ``prefix``. ``client`` is a ready
        S3 client (boto3 / botocore) to use instead of one built from boto3's
        configuration chain.
        Raises StorageError when the bucket is missing or the service unreachable."""
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._base = f"{self.prefix}/" if self.prefix else ""
        query = {
            k: v
            for k, v in (
                ("endpoint_url", endpoint_url),
                ("region", region),
                ("addressing_style", addressing_style),
            )
            if v
        }
        self.url = f"s3://{bucket}/{self.prefix}" + (f"?{urlencode(query)}" if query else "")
        self._where = f"s3://{bucket}/{self.prefix}"
        if client is None:
            config = Config(
                max_pool_connections=32,  # the chunk store writes from a thread pool
                s3={"addressing_style": addressing_style} if addressing_style else None,
            )
            try:
                client = _new_session().create_client(
                    "s3", endpoint_url=endpoint_url, region_name=region, config=config
                )
            except (BotoCoreError, ValueError) as exc:
                raise StorageError(f"cannot open {self._where}: {exc}") from None
        self._s3 = client
        try:
            self._s3.head_bucket(Bucket=bucket)
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND | {"NoSuchBucket"}:
                raise StorageError(
                    f"S3 bucket {bucket!r} does not exist at {self._endpoint()}; create it first"
                ) from None
            self._fail("open", "", exc)
        except BotoCoreError as exc:
            self._fail("open", "", exc)

    @classmethod
    def from_url(cls, url: str) -> S3ObjectStore:
        """Open the store an ``s3://bucket/prefix[?endpoint_url=…&region=…]`` URL names.
        Raises UnsupportedBackend, StorageError."""
        bucket, prefix, options = _parse(url)
        return cls(bucket, prefix, **options)

    def _endpoint(self) -> str:
        return str(getattr(getattr(self._s3, "meta", None), "endpoint_url", "the S3 endpoint"))

    def _fail(self, verb: str, key: str, exc: Exception) -> NoReturn:
        where = f"{key!r} in {self._where}" if key else self._where
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            detail = f"{error.get('Code', '?')}: {error.get('Message', '')}".rstrip(": ")
        else:
            detail = f"{type(exc).__name__}: {exc}"
        endpoint = self._endpoint()
        raise StorageError(f"S3 {verb} of {where} at {endpoint} failed ({detail})") from None

    def put(self, key: str, data: bytes) -> None:
        full = self._base + check_key(key)
        try:
            self._s3.put_object(Bucket=self.bucket, Key=full, Body=bytes(data), IfNoneMatch="*")
        except ClientError as exc:
            if _code(exc) not in _ALREADY_THERE:
                self._fail("put", key, exc)
        except BotoCoreError as exc:
            self._fail("put", key, exc)

    def get(self, key: str) -> bytes:
        full = self._base + check_key(key)
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=full)
            return bytes(response["Body"].read())
        except ClientError as exc:
            self._missing_or_fail("get", key, exc)
        except BotoCoreError as exc:
            self._fail("get", key, exc)

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        check_range(offset, length)
        full = self._base + check_key(key)
        if length == 0:
            # "bytes=N-(N-1)" is no valid range, and S3 answers one with the whole object.
            if not self.exists(key):
                raise ObjectNotFound(f"no object {key!r} in {self._where}")
            return b""
        try:
            response = self._s3.get_object(
                Bucket=self.bucket, Key=full, Range=f"bytes={offset}-{offset + length - 1}"
            )
            return bytes(response["Body"].read())
        except ClientError as exc:
            if _code(exc) in ("InvalidRange", "416"):  # offset at or past the end
                return b""
            self._missing_or_fail("get", key, exc)
        except BotoCoreError as exc:
            self._fail("get", key, exc)

    def _missing_or_fail(self, verb: str, key: str, exc: ClientError) -> NoReturn:
        if _code(exc) in _NOT_FOUND:
            raise ObjectNotFound(f"no object {key!r} in {self._where}") from None
        self._fail(verb, key, exc)

    def exists(self, key: str) -> bool:
        full = self._base + check_key(key)
        try:
            self._s3.head_object(Bucket=self.bucket, Key=full)
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                return False
            self._fail("head", key, exc)
        except BotoCoreError as exc:
            self._fail("head", key, exc)
        return True

    def delete(self, key: str) -> None:
        full = self._base + check_key(key)
        try:
            self._s3.delete_object(Bucket=self.bucket, Key=full)
        except (ClientError, BotoCoreError) as exc:
            self._fail("delete", key, exc)

    def delete_many(self, keys: Iterable[str]) -> None:
        """One DeleteObjects request per 1000 keys (S3's limit). Raises StorageError naming
        the first key the service failed to delete."""
        full = [self._base + check_key(key) for key in keys]
        for i in range(0, len(full), 1000):
            batch = [{"Key": key} for key in full[i : i + 1000]]
            try:
                response = self._s3.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            except (ClientError, BotoCoreError) as exc:
                self._fail("delete", "", exc)
            for error in response.get("Errors", ()):
                key = str(error.get("Key", ""))[len(self._base) :]
                detail = f"{error.get('Code', '?')}: {error.get('Message', '')}"
                raise StorageError(
                    f"S3 delete of {key!r} in {self._where} at {self._endpoint()} failed ({detail})"
                )

    def list(self, prefix: str = "") -> Iterator[str]:
        """Yield every key under ``prefix``, one ListObjectsV2 page (up to 1000 keys) at a
        time, so a listing of millions of keys streams. Raises StorageError."""
        paginator = self._s3.get_paginator("list_objects_v2")
        cut = len(self._base)
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._base + prefix):
                for item in page.get("Contents", ()):
                    yield item["Key"][cut:]
        except (ClientError, BotoCoreError) as exc:
            self._fail("list", prefix, exc)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
