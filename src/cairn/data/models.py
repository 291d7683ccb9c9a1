"""Value objects the data layer returns. Times are UTC seconds since the epoch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "BranchInfo",
    "CommitInfo",
    "CommitState",
    "FileChange",
    "FileInfo",
    "Provenance",
    "RepoInfo",
    "to_json",
]


@dataclass(frozen=True)
class RepoInfo:
    """A repo: ``type`` is ``user`` (takes puts) or ``pipeline`` (written by its pipeline)."""

    name: str
    type: str
    description: str
    created: float
    branches: tuple[str, ...] = ()
    size: int = 0  # bytes in the head of the default branch


@dataclass(frozen=True)
class BranchInfo:
    repo: str
    name: str
    head: str | None
    created: float


@dataclass(frozen=True)
class Provenance:
    """One input of a commit: input ``name`` read ``repo@branch`` at ``commit``."""

    name: str
    repo: str
    branch: str
    commit: str


class CommitState(StrEnum):
    """A commit's state (the catalog stores the value): ``open`` while it is written,
    ``finished`` after, forever."""

    OPEN = "open"
    FINISHED = "finished"


@dataclass(frozen=True)
class CommitInfo:
    """A commit. ``tree`` is its root hash (None when empty); ``state`` is open or finished;
    ``origin`` is user (start/finish), auto (a put made it) or pipeline (a job wrote it)."""

    repo: str
    id: str
    parent: str | None
    branch: str | None
    tree: str | None
    state: CommitState
    origin: str
    description: str
    created: float
    finished: float | None
    size: int
    info: dict[str, Any] = field(default_factory=dict)
    provenance: tuple[Provenance, ...] = ()

    @property
    def finished_ok(self) -> bool:
        return self.state == CommitState.FINISHED


@dataclass(frozen=True)
class FileInfo:
    """A file or folder in a commit. ``path`` is shown the pachctl way, ``/a/b.png``."""

    repo: str
    commit: str
    path: str
    type: str  # file | dir
    size: int
    hash: str
    count: int = 1
    datum: str | None = None
    chunks: int = 0


def to_json(obj: Any) -> Any:
    """A dataclass (or list of them) as plain JSON-able data, for ``--raw`` output."""
    if isinstance(obj, list | tuple):
        return [to_json(o) for o in obj]
    return asdict(obj)


@dataclass(frozen=True)
class FileChange:
    """One line of a diff: ``status`` is added, modified or deleted; hashes/sizes are
    None on the side where the file does not exist."""

    path: str
    status: str
    old_hash: str | None
    new_hash: str | None
    old_size: int | None
    new_size: int | None
