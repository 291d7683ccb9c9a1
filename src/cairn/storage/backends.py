"""Object store backends by URL scheme, each imported only when a URL of it is opened.

A backend is named by ``"module:Class"``, not imported here, so that opening a
``file://`` or ``memory://`` store never loads boto3 and no backend module imports
another (they share ``base.py``). A backend whose module needs an optional extra
names that extra; when its import fails, ``open_object_store`` raises
UnsupportedBackend telling the user what to install.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from urllib.parse import urlparse

from cairn.storage.base import ObjectStore
from cairn.storage.errors import UnsupportedBackend

__all__ = ["BACKENDS", "Backend", "open_object_store"]


@dataclass(frozen=True)
class Backend:
    """Where a scheme's store class lives: ``target`` is ``"module:Class"``, and the class
    has a ``from_url(url) -> ObjectStore`` classmethod. ``extra`` (with the library it
    brings, ``needs``) is the optional dependency group the module imports."""

    target: str
    extra: str | None = None
    needs: str | None = None


BACKENDS: dict[str, Backend] = {
    "file": Backend("cairn.storage.objects:LocalObjectStore"),
    "memory": Backend("cairn.storage.objects:MemoryObjectStore"),
    "s3": Backend("cairn.storage.s3:S3ObjectStore", extra="s3", needs="boto3"),
}


def open_object_store(url: str) -> ObjectStore:
    """Open the object store a URL names.

    ``file:///abs/path`` (or a plain path) and ``memory://`` are built in;
    ``file:///abs/path?fsync=false`` skips the fsync of each object (as DVC and
    ``cp`` do): a killed process still loses nothing, but a power cut may tear
    objects of the last commits;
    ``s3://bucket/prefix`` needs the ``s3`` extra (see cairn.storage.s3). Raises
    UnsupportedBackend for any other scheme, naming the ones there are, or when the
    backend's extra is not installed; StorageError for a malformed URL or a store that
    cannot be reached.
    """
    scheme = urlparse(url).scheme or "file"
    backend = BACKENDS.get(scheme)
    if backend is None:
        known = ", ".join(f"{name}://" for name in BACKENDS)
        raise UnsupportedBackend(f"no object store for {scheme}:// URLs; supported: {known}")
    module_name, _, class_name = backend.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        # Only a missing third-party library means "install the extra"; a broken cairn
        # module is a bug to surface as it is.
        if backend.extra is None or (exc.name or "").startswith("cairn"):
            raise
        raise UnsupportedBackend(
            f"{scheme}:// object stores need {backend.needs or exc.name}: "
            f"pip install 'cairn[{backend.extra}]'"
        ) from exc
    store: ObjectStore = getattr(module, class_name).from_url(url)
    return store
