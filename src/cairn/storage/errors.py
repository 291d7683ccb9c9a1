"""Exceptions of cairn, rooted here because storage is the lowest layer.

Every layer adds its own subclasses in its own ``errors`` module::

    CairnError
    ├── FieldError                   a value given for a named field, flag or setting
    │   └── ConfigError              a setting (environment, config.toml) cairn cannot use
    ├── StorageError                 (cairn.storage)
    │   ├── ObjectNotFound           a key the store does not hold
    │   ├── CorruptObject            bytes that fail their hash or framing
    │   ├── NotRegularFile           a local path to store is a link, pipe, device or another file
    │   └── UnsupportedBackend       a URL scheme with no backend, or a missing extra
    ├── CatalogError                 (cairn.catalog)
    ├── DataError                    (cairn.data)
    └── PipelineError                (cairn.pipelines)

Catch ``CairnError`` to catch anything cairn raises on purpose; ``cairn.api.errors`` draws
the whole tree and exports every class.
"""

from __future__ import annotations

__all__ = [
    "CairnError",
    "ConfigError",
    "CorruptObject",
    "FieldError",
    "NotRegularFile",
    "ObjectNotFound",
    "StorageError",
    "UnsupportedBackend",
]


class CairnError(Exception):
    """Base of every error cairn raises on purpose."""


class FieldError(CairnError, ValueError):
    """A value given for a named field is invalid: a document's field (its dotted path,
    ``input.pfs.glob``), a flag (``--grace``) or a setting (``CAIRN_AUTO_RUN``).

    ``field`` names the first bad field ("" when the whole value is bad), ``problems``
    lists every (field, message). A ``ValueError``, so pydantic validators may raise it.
    """

    def __init__(
        self, message: str, field: str = "", problems: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.field = field
        self.problems = list(problems) if problems is not None else []


class ConfigError(FieldError):
    """A setting cannot be used: an environment variable or a ``config.toml`` key holding
    a value of the wrong kind, an unknown key, or an unreadable file. ``field`` names the
    variable or the key (``store.objects``)."""


class StorageError(CairnError):
    """An object store or the chunk store failed."""


class ObjectNotFound(StorageError, KeyError):
    """The object store holds no object under this key."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the message as is
        return str(self.args[0]) if self.args else "object not found"


class CorruptObject(StorageError):
    """An object's bytes do not match its hash or its framing."""


class NotRegularFile(StorageError):
    """A local file to store is not the regular file expected: a pipe, socket or device,
    a link where links are not followed, or another file than the one expected (it was
    replaced after it was listed). Nothing was read from it."""


class UnsupportedBackend(StorageError):
    """No backend serves this URL scheme, or its optional dependency is missing."""
