"""Multipart uploads: the parts wait in a folder of the gateway's process until
CompleteMultipartUpload joins them into one ``files.put`` (one commit), or
AbortMultipartUpload removes them.

On disk, below the spool folder (``create_app(spool=...)``; default a fresh temporary
folder)::

    <upload id>/upload.json    {"bucket": ..., "key": ...}
    <upload id>/<part number>  the part's bytes (written beside, then renamed)
    <upload id>/<part number>.json  {"etag": ..., "size": ..., "modified": ...}

Invariants: a part is whole or absent (rename); an upload belongs to one bucket and key;
completing checks the parts the client names exist with the ETags it names, ascending,
each but the last at least 5 MiB (S3's rules and codes: InvalidPart, InvalidPartOrder,
EntityTooSmall). The parts live only in this process's spool: an upload is not seen by
another gateway, and a gateway that starts with a fresh temporary spool forgets the
uploads of the one before (S3 keeps them until aborted).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cairn.gateway.errors import S3Error

__all__ = ["MIN_PART", "Part", "Uploads"]

MIN_PART = 5 << 20  # S3's smallest part but the last, in bytes
MAX_PART_NUMBER = 10_000
_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Part:
    """A stored part: its ``number``, ``etag`` (quoted MD5 hex), ``size`` in bytes and
    ``modified`` time (seconds)."""

    number: int
    etag: str
    size: int
    modified: float


class Uploads:
    """The uploads in progress, in folder ``spool``."""

    def __init__(self, spool: Path) -> None:
        self.spool = spool
        spool.mkdir(parents=True, exist_ok=True)

    def create(self, bucket: str, key: str) -> str:
        """A new upload of ``bucket``/``key``; returns its id."""
        upload = uuid.uuid4().hex
        folder = self.spool / upload
        folder.mkdir()
        (folder / "upload.json").write_text(json.dumps({"bucket": bucket, "key": key}))
        return upload

    def folder(self, bucket: str, key: str, upload: str) -> Path:
        """The folder of upload ``upload`` of ``bucket``/``key``. Raises S3Error
        NoSuchUpload."""
        folder = self.spool / upload
        try:
            if not _ID.fullmatch(upload):
                raise FileNotFoundError(upload)
            meta = json.loads((folder / "upload.json").read_text())
        except (FileNotFoundError, ValueError):
            meta = None
        if meta != {"bucket": bucket, "key": key}:
            raise S3Error("NoSuchUpload", "no such upload of this key", bucket=bucket, key=key)
        return folder

    def part_file(self, folder: Path, number: str) -> tuple[int, Path]:
        """The part number ``number`` (text from the query) and a new temporary file
        beside where it goes. Raises S3Error InvalidArgument."""
        try:
            n = int(number)
        except ValueError:
            n = 0
        if not 1 <= n <= MAX_PART_NUMBER:
            raise S3Error("InvalidArgument", f"partNumber must be 1 to {MAX_PART_NUMBER}")
        return n, folder / f".{n}.{uuid.uuid4().hex}"

    def store(self, folder: Path, number: int, temp: Path, md5: str, size: int) -> Part:
        """Keep part ``number`` from ``temp`` (replacing an earlier one of that number)."""
        part = Part(number, f'"{md5}"', size, time.time())
        os.replace(temp, folder / str(number))
        (folder / f"{number}.json").write_text(
            json.dumps({"etag": part.etag, "size": size, "modified": part.modified})
        )
        return part

    def parts(self, folder: Path) -> list[Part]:
        """The stored parts, by number."""
        out = []
        for meta in folder.glob("*.json"):
            if meta.stem.isdigit():
                m = json.loads(meta.read_text())
                out.append(Part(int(meta.stem), m["etag"], m["size"], m["modified"]))
        return sorted(out, key=lambda p: p.number)

    def joined(self, folder: Path, named: list[tuple[int, str]]) -> io.BufferedReader:
        """The parts ``named`` as (number, etag) by CompleteMultipartUpload, joined in one
        stream. Raises S3Error InvalidPart, InvalidPartOrder, EntityTooSmall."""
        if not named:
            raise S3Error("MalformedXML", "name at least one part")
        numbers = [n for n, _ in named]
        if numbers != sorted(set(numbers)):
            raise S3Error("InvalidPartOrder", "parts must be listed in ascending order")
        stored = {p.number: p for p in self.parts(folder)}
        for i, (number, etag) in enumerate(named):
            part = stored.get(number)
            if part is None or part.etag.strip('"') != etag.strip('"'):
                raise S3Error("InvalidPart", f"part {number} was not uploaded with that ETag")
            if i < len(named) - 1 and part.size < MIN_PART:
                raise S3Error("EntityTooSmall", f"part {number} is under 5 MiB")
        return io.BufferedReader(_Joined([folder / str(n) for n in numbers]), 1 << 20)

    def remove(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)


class _Joined(io.RawIOBase):
    """Files read one after another as one stream, one open at a time."""

    def __init__(self, paths: list[Path]) -> None:
        self._paths = list(paths)
        self._file: Any = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while True:
            if self._file is None:
                if not self._paths:
                    return 0
                self._file = open(self._paths.pop(0), "rb")  # noqa: SIM115 (closed at its end)
            n = self._file.readinto(buffer)
            if n:
                return int(n)
            self._file.close()
            self._file = None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        super().close()
