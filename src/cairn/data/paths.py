"""File paths inside a commit.

A path is stored as ``a/b/c.png``: no leading slash, ``/``-separated, every
component non-empty. Users write paths the way pachctl does, ``/a/b/c.png``
(the leading slash means the repo root, not the host's root), and both forms
name the same file. Refused, with InvalidPath: NUL bytes, ``.`` and ``..``
components, so no path can name anything outside its repo when it is written
out under a local folder.
"""

from __future__ import annotations

from cairn.data.errors import InvalidPath

__all__ = ["display", "join", "normalize", "parent_and_name"]


def normalize(path: str, *, allow_root: bool = True) -> str:
    """Canonical form of a repo path; ``""`` is the root.

    Raises InvalidPath for NUL, ``.`` or ``..`` components, or the root where
    ``allow_root`` is False.
    """
    if "\x00" in path:
        raise InvalidPath(f"path {path!r} contains a NUL byte")
    parts = [p for p in path.split("/") if p]
    for part in parts:
        if part in (".", ".."):
            raise InvalidPath(f"path {path!r} has a {part!r} component; paths stay inside the repo")
    norm = "/".join(parts)
    if not norm and not allow_root:
        raise InvalidPath("a file path is needed here, not the repo root")
    return norm


def join(*parts: str) -> str:
    """Join already-normalized path pieces."""
    return "/".join(p for p in parts if p)


def display(path: str) -> str:
    """The pachctl form of a stored path: ``/a/b``."""
    return "/" + path


def parent_and_name(path: str) -> tuple[str, str]:
    """Split ``a/b/c`` into (``a/b``, ``c``)."""
    head, _, tail = path.rpartition("/")
    return head, tail
