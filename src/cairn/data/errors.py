"""Data-layer exceptions (see cairn.storage.errors for the whole tree)::

DataError
├── NotFound                 repo, branch, commit or file does not exist
├── AlreadyExists            repo or branch already exists
├── InvalidPath              ``..``, NUL, or a path that is not a file where one is needed
├── InvalidReference         ``repo@branch^2:/path`` syntax or a name that is not allowed
├── CommitStateError         writing to a finished commit, finishing a finished one
├── RepoInUse                deleting a repo that a pipeline reads
├── PathConflict             a file where a folder is, or the other way round
├── StoreDamaged             a commit's objects cannot be read (gc refuses; see fsck)
└── ArchiveError             an extract file restore cannot load, or a store not empty
"""

from __future__ import annotations

from cairn.storage.errors import CairnError

__all__ = [
    "AlreadyExists",
    "ArchiveError",
    "CommitStateError",
    "DataError",
    "InvalidPath",
    "InvalidReference",
    "NoCommitYet",
    "NotFound",
    "PathConflict",
    "ReadOnlyRef",
    "RepoInUse",
    "StoreDamaged",
]


class DataError(CairnError):
    """A repo, branch, commit or file operation failed."""


class NotFound(DataError, LookupError):
    """The repo, branch, commit or file named does not exist."""


class NoCommitYet(NotFound):
    """The branch named exists but has no commit yet (a new output branch before its
    pipeline's first job): listings of it are empty, reads of a file are NotFound."""


class AlreadyExists(DataError):
    """A repo or branch of that name exists already."""


class InvalidPath(DataError, ValueError):
    """A file path is refused: ``..`` or ``.`` components, NUL, or an empty name."""


class InvalidReference(DataError, ValueError):
    """A ``repo@branch:/path`` reference or a repo/branch name is malformed."""


class CommitStateError(DataError):
    """The commit is not in a state that allows this (e.g. it is finished)."""


class ReadOnlyRef(CommitStateError, PermissionError):
    """A write named a commit id or an ancestor (``@master^``), which never change, not a
    branch (cairn.fs). A PermissionError, as writing a read-only file is in Python."""


class RepoInUse(DataError):
    """The repo is read by a pipeline; pass force to delete it anyway."""


class PathConflict(DataError):
    """A file would sit where a folder is, or a folder where a file is."""


class StoreDamaged(DataError):
    """Objects a commit needs are missing or corrupt; ``cairn fsck`` says which."""


class ArchiveError(DataError):
    """An extract file cannot be restored (cairn.data.archive): not one, a newer version,
    or a target store that is not empty."""
