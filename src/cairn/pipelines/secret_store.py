"""Secrets: named sets of key -> value that transforms receive as environment variables.

A spec refers to a value (``transform.secrets``: ``name``, ``key``, ``env_var``, as in
Pachyderm); the value itself is never part of a spec, the catalog, a log or a commit.
Pachyderm keeps the values in Kubernetes secrets. cairn has no Kubernetes, so a file in the
store folder takes their place, and ``cairn create secret NAME --from-literal KEY=VALUE`` /
``--from-file KEY=PATH`` fill it the way ``kubectl create secret generic`` does.

On disk: ``<home>/secrets.json``, mode 0600, ``{"<name>": {"<key>": "<value>", ...}}``,
replaced whole (temporary file, fsync, rename) while ``secrets.json.lock`` is held. A file
that other users may read is refused, as ssh refuses such a key: ``chmod 600`` it.

When a job has datums to run, ``resolve`` reads the values its transform names and they are
added to the datums' environment. ``Masker`` then replaces each value, and each line of a
multi-line value, with ``***`` in the datums' logs and errors before they are stored, so
``cairn logs`` and ``inspect job`` do not show them. Values shorter than ``MIN_MASKED``
characters are not masked: hiding every "1" would make the logs unreadable.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cairn.data import AlreadyExists, InvalidReference, NotFound
from cairn.data.subject import about
from cairn.pipelines.errors import SecretError
from cairn.pipelines.spec import SecretRef

__all__ = ["MIN_MASKED", "MASK", "Masker", "SecretInfo", "SecretStore"]

MIN_MASKED = 4
MASK = "***"
# The rules of transform.secrets[].name and .key (cairn.pipelines.spec).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
_KEY = re.compile(r"[-._A-Za-z0-9]{1,253}")


@dataclass(frozen=True)
class SecretInfo:
    """A secret as listed: its name and its keys, never its values."""

    name: str
    keys: tuple[str, ...]


class SecretStore:
    """The secrets file at ``path`` (see the module doc). Nothing is read until used."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def create(self, name: str, values: Mapping[str, str]) -> SecretInfo:
        """Store secret ``name`` with ``values`` (key -> value, at least one).

        Raises InvalidReference (a bad name or key), AlreadyExists (delete it first),
        SecretError (the file is unsafe or unreadable).
        """
        if not _NAME.fullmatch(name):
            raise InvalidReference(
                f"secret name {name!r}: use 1-63 letters, digits, '_' or '-', "
                "starting with a letter or digit"
            )
        if not values:
            raise InvalidReference(f"secret {name!r}: give at least one KEY=VALUE")
        for key, value in values.items():
            if not _KEY.fullmatch(key):
                raise InvalidReference(
                    f"secret {name!r}: key {key!r} must be letters, digits, '-', '_' or '.'"
                )
            if not isinstance(value, str) or "\0" in value:
                raise InvalidReference(
                    f"secret {name!r}: the value of {key!r} must be text without NUL bytes "
                    "(it becomes an environment variable)"
                )
        with self._locked():
            secrets = self._read()
            if name in secrets:
                raise about(AlreadyExists(f"secret {name!r} exists"), "secret.exists", name=name)
            secrets[name] = dict(values)
            self._write(secrets)
        return SecretInfo(name, tuple(sorted(values)))

    def delete(self, name: str) -> None:
        """Remove secret ``name``. Raises NotFound, SecretError."""
        with self._locked():
            secrets = self._read()
            if name not in secrets:
                raise about(NotFound(f"secret {name!r} not found"), "secret.missing", name=name)
            del secrets[name]
            self._write(secrets)

    def list(self) -> list[SecretInfo]:
        """Every secret, by name, with its keys. Raises SecretError."""
        return [SecretInfo(n, tuple(sorted(v))) for n, v in sorted(self._read().items())]

    def resolve(self, refs: Sequence[SecretRef]) -> dict[str, str]:
        """``env_var`` -> value for each reference. Raises NotFound (a secret or key that is
        not stored, naming it and the command that stores it), SecretError."""
        secrets = self._read() if refs else {}
        env: dict[str, str] = {}
        for ref in refs:
            stored = secrets.get(ref.name)
            if stored is None:
                missing = NotFound(f"secret {ref.name!r} not found")
                raise about(missing, "secret.unset", name=ref.name, key=ref.key)
            if ref.key not in stored:
                raise NotFound(
                    f"secret {ref.name!r} has no key {ref.key!r} (it has: "
                    f"{', '.join(sorted(stored))})"
                )
            env[ref.env_var] = stored[ref.key]
        return env

    def masker(self) -> Masker:
        """A Masker for every value stored, for output that may hold one. Raises
        SecretError."""
        return Masker(v for values in self._read().values() for v in values.values())

    # -- the file ----------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.with_name(self.path.name + ".lock")
        with open(lock, "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise SecretError(f"cannot read {self.path}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise SecretError(
                    f"{self.path} may be read by other users (mode {stat.S_IMODE(mode):o}); "
                    f"`chmod 600 {self.path}` to use it"
                )
            raw = f.read()
        try:
            data: Any = json.loads(raw)
        except (ValueError, RecursionError):
            data = None
        if not isinstance(data, dict) or not all(
            isinstance(v, dict) and all(isinstance(x, str) for x in v.values())
            for v in data.values()
        ):
            raise SecretError(
                f"{self.path} is not a JSON object of name -> {{key: value}}; fix or remove it"
            )
        return data

    def _write(self, secrets: Mapping[str, Mapping[str, str]]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                os.fchmod(f.fileno(), 0o600)  # O_CREAT's mode does not apply to an old file
                json.dump(secrets, f, indent=2, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)


class Masker:
    """Replaces secret values with ``***`` in text and bytes.

    Each value and each line of a multi-line value with at least ``MIN_MASKED`` characters
    is masked, longest first, so a value that contains another is masked whole.
    """

    def __init__(self, values: Iterable[str]) -> None:
        needles = set()
        for value in values:
            for piece in (value, *value.splitlines()):
                if len(piece.strip()) >= MIN_MASKED:
                    needles.add(piece)
        ordered = sorted(needles, key=len, reverse=True)
        self.needles: tuple[str, ...] = tuple(ordered)
        """What is masked: each value and line long enough, longest first."""
        self._text = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        self._bytes = (
            re.compile(b"|".join(re.escape(n.encode("utf-8")) for n in ordered))
            if ordered
            else None
        )

    def __bool__(self) -> bool:
        return self._text is not None

    def text(self, value: str) -> str:
        """``value`` with every secret replaced by ``***``."""
        return self._text.sub(MASK, value) if self._text is not None else value

    def bytes(self, value: bytes) -> bytes:
        """``value`` (UTF-8 or not) with every secret's UTF-8 bytes replaced by ``***``."""
        return self._bytes.sub(MASK.encode(), value) if self._bytes is not None else value
