"""ListObjects over one repo: the keys ``REF/PATH`` below a prefix, grouped by a
delimiter into CommonPrefixes, in S3's order (by key, UTF-8 byte order, which is Python's
``str`` order), cut into pages.

A prefix without ``/`` names no ref yet: its keys are those of every branch whose name
starts with it (commit ids are never listed, only read). A prefix ``REF/rest`` reads one
ref: with delimiter ``/``, one ``files.list`` of the folder holding ``rest``; otherwise
one ``files.glob`` of everything below that folder. Each page lists again and skips to
the token (the last key or common prefix of the previous page), so a page of a branch
that moved shows its new head.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cairn.data.errors import NotFound
from cairn.gateway.multipart import BRANCH_PREFIX

if TYPE_CHECKING:
    from cairn.api.protocol import ClientProtocol
    from cairn.data import FileInfo

__all__ = ["Entry", "Page", "list_page"]


@dataclass(frozen=True)
class Entry:
    """One object of a listing: its ``key``, ``size`` (bytes), content ``hash`` and the
    ``modified`` time (seconds: when its ref's commit was made)."""

    key: str
    size: int
    hash: str
    modified: float


@dataclass(frozen=True)
class Page:
    """One page: ``contents`` and ``prefixes`` (CommonPrefixes), both in key order, and
    ``next_marker`` (the last key or prefix of the page) when more follow."""

    contents: list[Entry]
    prefixes: list[str]
    next_marker: str | None


def list_page(
    client: ClientProtocol,
    repo: str,
    *,
    prefix: str = "",
    delimiter: str = "",
    after: str = "",
    max_keys: int = 1000,
) -> Page:
    """The page of ``repo``'s keys below ``prefix`` that starts past ``after``, holding at
    most ``max_keys`` objects and common prefixes together. Raises NotFound (no repo)."""
    entries: dict[str, Entry | None] = {}  # key or common prefix -> entry (None: prefix)
    for entry in _objects(client, repo, prefix, delimiter):
        rest = entry.key[len(prefix) :]
        cut = rest.find(delimiter) if delimiter else -1
        if cut >= 0:
            entries[prefix + rest[: cut + len(delimiter)]] = None
        else:
            entries[entry.key] = entry
    keys = sorted(k for k in entries if k > after)
    page = keys[:max_keys] if max_keys > 0 else []
    more = len(keys) > len(page)
    return Page(
        contents=[e for k in page if (e := entries[k]) is not None],
        prefixes=[k for k in page if entries[k] is None],
        next_marker=page[-1] if more and page else None,
    )


def _objects(client: ClientProtocol, repo: str, prefix: str, delimiter: str) -> list[Entry]:
    """The objects below ``prefix``; with delimiter ``/``, only those one folder deep
    plus one stand-in per deeper folder (its key ends in ``/``, which the caller groups)."""
    if "/" not in prefix:
        branches = client.branches.list(repo)
        refs = [
            b.name
            for b in branches
            if b.head is not None
            and b.name.startswith(prefix)
            and not b.name.startswith(BRANCH_PREFIX)  # a multipart upload's parts
        ]
        if delimiter == "/":  # each branch is one common prefix: no need to read it
            return [Entry(f"{b}/", 0, "", 0.0) for b in refs]
        return [e for ref in refs for e in _below(client, repo, ref, "", "")]
    ref, _, rest = prefix.partition("/")
    return _below(client, repo, ref, rest, delimiter)


def _below(client: ClientProtocol, repo: str, ref: str, rest: str, delimiter: str) -> list[Entry]:
    folder = rest.rpartition("/")[0]
    try:
        commit = client.commits.get(f"{repo}@{ref}")
        at = f"{repo}@{commit.id}:/{folder}"
        if delimiter == "/":
            found = client.files.list(at)
        else:
            found = client.files.glob(f"{repo}@{commit.id}:/", f"/{folder}/**" if folder else "/**")
    except NotFound:
        client.repos.get(repo)  # a missing ref holds nothing; a missing repo raises
        return []
    when = commit.finished or commit.created
    out = []
    for f in found:
        key = f"{ref}/{f.path.strip('/')}"
        if _is_file(f):
            out.append(Entry(key, f.size, f.hash, when))
        elif delimiter == "/":
            out.append(Entry(key + "/", 0, "", when))
    return [e for e in out if e.key.startswith(f"{ref}/{rest}")]


def _is_file(f: FileInfo) -> bool:
    return f.type == "file"
