"""Multipart uploads kept in the store itself, so any gateway over the same store (another
process, another machine, one started after a restart) continues, lists, completes or
aborts an upload another began.

Each upload is a branch of the bucket's repo named ``s3-upload-<upload id>`` (32 hex)::

    /upload.json        {"key": ..., "initiated": seconds}   (the upload's first commit)
    /parts/<n>          part n's bytes                        (one commit per part,
    /parts/<n>.json     {"etag": ..., "size": ..., "modified": ...}   both files in it)

CompleteMultipartUpload pins the branch's head, joins the parts it names into one
``files.put`` on the target branch (one commit; its content-defined chunks are the
parts' own but for a chunk or two at each part boundary) and deletes the upload's branch;
AbortMultipartUpload deletes it. Its commits are then unreachable and ``cairn gc`` reclaims them.

Invariants: a part is whole or absent (one commit holds its bytes and its ETag); an
upload belongs to one bucket and key; completing checks the parts the client names exist
with the ETags it names, ascending, each but the last at least 5 MiB (S3's rules and
codes: InvalidPart, InvalidPartOrder, EntityTooSmall). Upload branches are left out of
the gateway's listings; ``cairn list branch`` shows them while an upload is in progress.
"""

from __future__ import annotations

import io
import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from cairn.api.errors import InvalidReference, NotFound
from cairn.gateway.errors import S3Error

if TYPE_CHECKING:
    from cairn.api.protocol import ClientProtocol

__all__ = ["BRANCH_PREFIX", "MIN_PART", "Part", "Upload", "Uploads"]

MIN_PART = 5 << 20  # S3's smallest part but the last, in bytes
MAX_PART_NUMBER = 10_000
BRANCH_PREFIX = "s3-upload-"
_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Part:
    """A stored part: its ``number``, ``etag`` (quoted MD5 hex), ``size`` in bytes and
    ``modified`` time (seconds)."""

    number: int
    etag: str
    size: int
    modified: float


@dataclass(frozen=True)
class Upload:
    """An upload in progress: its ``id``, ``key`` and ``initiated`` time (seconds)."""

    id: str
    key: str
    initiated: float


class Uploads:
    """The uploads in progress in the repos ``client`` sees."""

    def __init__(self, client: ClientProtocol) -> None:
        self.client = client

    def create(self, bucket: str, key: str) -> str:
        """A new upload of ``bucket``/``key``; returns its id."""
        upload = uuid.uuid4().hex
        meta = json.dumps({"key": key, "initiated": time.time()}).encode()
        self.client.files.put(f"{bucket}@{BRANCH_PREFIX}{upload}:/upload.json", meta)
        return upload

    def branch(self, bucket: str, key: str, upload: str) -> str:
        """The branch (``repo@branch``) of upload ``upload`` of ``bucket``/``key``. Raises
        S3Error NoSuchUpload."""
        ref = f"{bucket}@{BRANCH_PREFIX}{upload}"
        try:
            if not _ID.fullmatch(upload):
                raise NotFound(upload)
            meta = json.loads(self.client.files.read(f"{ref}:/upload.json"))
        except (NotFound, InvalidReference, ValueError):
            meta = None
        if meta is None or meta.get("key") != key:
            raise S3Error("NoSuchUpload", "no such upload of this key", bucket=bucket, key=key)
        return ref

    def in_progress(self, bucket: str) -> list[Upload]:
        """The uploads in progress in ``bucket``, by key then initiation time. Raises
        NotFound (no such repo)."""
        out = []
        for b in self.client.branches.list(bucket):
            upload = b.name.removeprefix(BRANCH_PREFIX)
            if b.name == upload or not _ID.fullmatch(upload) or b.head is None:
                continue
            try:
                meta = json.loads(self.client.files.read(f"{bucket}@{b.head}:/upload.json"))
            except (NotFound, ValueError):
                continue  # completed or aborted while listed
            out.append(Upload(upload, meta["key"], meta["initiated"]))
        return sorted(out, key=lambda u: (u.key, u.initiated))

    @staticmethod
    def number(text: str) -> int:
        """The part number ``text`` (from the query) names. Raises S3Error
        InvalidArgument."""
        try:
            n = int(text)
        except ValueError:
            n = 0
        if not 1 <= n <= MAX_PART_NUMBER:
            raise S3Error("InvalidArgument", f"partNumber must be 1 to {MAX_PART_NUMBER}")
        return n

    def store(self, ref: str, number: int, data: IO[bytes], md5: str, size: int) -> Part:
        """Keep part ``number`` (replacing an earlier one of that number) in one commit."""
        part = Part(number, f'"{md5}"', size, time.time())
        meta = json.dumps({"etag": part.etag, "size": size, "modified": part.modified})
        self.client.files.put(f"{ref}:/parts", {str(number): data, f"{number}.json": meta.encode()})
        return part

    def parts(self, ref: str) -> list[Part]:
        """The stored parts, by number (``ref``: a branch or a commit of an upload)."""
        try:
            listed = self.client.files.list(f"{ref}:/parts")
        except NotFound:
            return []
        out = []
        for f in listed:
            name = f.path.rsplit("/", 1)[-1]
            if name.endswith(".json") and name[:-5].isdigit():
                m = json.loads(self.client.files.read(f"{ref}:/parts/{name}"))
                out.append(Part(int(name[:-5]), m["etag"], m["size"], m["modified"]))
        return sorted(out, key=lambda p: p.number)

    def joined(self, ref: str, named: list[tuple[int, str]]) -> io.BufferedReader:
        """The parts ``named`` as (number, etag) by CompleteMultipartUpload, joined in one
        stream read at the upload's current head. Raises S3Error InvalidPart,
        InvalidPartOrder, EntityTooSmall, MalformedXML (no part)."""
        if not named:
            raise S3Error("MalformedXML", "name at least one part")
        numbers = [n for n, _ in named]
        if numbers != sorted(set(numbers)):
            raise S3Error("InvalidPartOrder", "parts must be listed in ascending order")
        repo = ref.partition("@")[0]
        pinned = f"{repo}@{self.client.commits.get(ref).id}"
        stored = {p.number: p for p in self.parts(pinned)}
        for i, (number, etag) in enumerate(named):
            part = stored.get(number)
            if part is None or part.etag.strip('"') != etag.strip('"'):
                raise S3Error("InvalidPart", f"part {number} was not uploaded with that ETag")
            if i < len(named) - 1 and part.size < MIN_PART:
                raise S3Error("EntityTooSmall", f"part {number} is under 5 MiB")
        refs = [f"{pinned}:/parts/{n}" for n in numbers]
        return io.BufferedReader(_Joined(self.client, refs), 1 << 20)

    def remove(self, ref: str) -> None:
        """Forget the upload on branch ``ref`` (its commits go at the next gc)."""
        try:
            self.client.branches.delete(ref)
        except NotFound:
            pass  # completed or aborted by another request meanwhile


class _Joined(io.RawIOBase):
    """Files of the store read one after another as one stream, one open at a time."""

    def __init__(self, client: ClientProtocol, refs: list[str]) -> None:
        self._client = client
        self._refs = list(refs)
        self._file: Any = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while True:
            if self._file is None:
                if not self._refs:
                    return 0
                self._file = self._client.files.open(self._refs.pop(0))
            data = self._file.read(len(buffer))
            if data:
                buffer[: len(data)] = data
                return len(data)
            self._file.close()
            self._file = None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        super().close()
