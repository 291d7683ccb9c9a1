"""data: repos, branches, commits, trees, diff and provenance. Knows commits, not pipelines.

Owns
    * ``store.py``: DataStore, the Python API of versioned data, and the commit
      state machine (open -> finished, never changed after); it is composed of a
      CommitLog and a Files, not derived from them;
    * ``commitlog.py``: commit and branch rows, reference resolution, and the
      compare-and-set through which every write moves a commit's tree;
    * ``files.py``: put / get / list / glob / inspect / diff / delete / copy;
    * ``localfiles.py``: local files read by a put (a folder walked without following
      links) and written by a get (renamed into place, never through a link);
    * ``tree.py``: content-addressed Merkle trees of folders with structural sharing;
    * ``refs.py`` / ``paths.py`` / ``glob.py``: pachctl's ``repo@branch^N:/path``
      syntax, path rules (no ``..``, no NUL), Pachyderm's glob patterns.

Invariants
    * A finished commit never changes: its row's tree is fixed at finish, and
      tree nodes and chunks are immutable objects.
    * All objects a commit needs are stored before the catalog transaction that
      makes the commit (or its new tree) visible.
    * Provenance rows (which input commits a commit was made from) are written
      in the same transaction as the commit.
    * Commit ids are shared across repos by commits of one cause, as in
      Pachyderm's commit sets: a pipeline's output commit reuses the id of the
      input commit that triggered it, when that id is free in the output repo.
"""

from typing import TYPE_CHECKING

from cairn._lazy import lazy_exports

if TYPE_CHECKING:
    from cairn.data.errors import (
        AlreadyExists,
        CommitStateError,
        DataError,
        InvalidPath,
        InvalidReference,
        NotFound,
        PathConflict,
        RepoInUse,
    )
    from cairn.data.files import Source
    from cairn.data.localfiles import Skipped, SkipReason
    from cairn.data.models import (
        BranchInfo,
        CommitInfo,
        CommitState,
        FileChange,
        FileInfo,
        Provenance,
        RepoInfo,
        to_json,
    )
    from cairn.data.refs import Ref, parse_ref
    from cairn.data.statcache import StatCache
    from cairn.data.store import DEFAULT_BRANCH, DataStore, new_commit_id
    from cairn.data.tree import DirEntry, FileEntry, TreeStore

# Each name is imported on first use: a remote client needs the value types and errors,
# not the store (SQLAlchemy, the catalog).
_HOMES = {
    "AlreadyExists": "cairn.data.errors",
    "BranchInfo": "cairn.data.models",
    "CommitInfo": "cairn.data.models",
    "CommitState": "cairn.data.models",
    "CommitStateError": "cairn.data.errors",
    "DEFAULT_BRANCH": "cairn.data.store",
    "DataError": "cairn.data.errors",
    "DataStore": "cairn.data.store",
    "DirEntry": "cairn.data.tree",
    "FileChange": "cairn.data.models",
    "FileEntry": "cairn.data.tree",
    "FileInfo": "cairn.data.models",
    "InvalidPath": "cairn.data.errors",
    "InvalidReference": "cairn.data.errors",
    "NotFound": "cairn.data.errors",
    "PathConflict": "cairn.data.errors",
    "Provenance": "cairn.data.models",
    "Ref": "cairn.data.refs",
    "RepoInUse": "cairn.data.errors",
    "RepoInfo": "cairn.data.models",
    "SkipReason": "cairn.data.localfiles",
    "Skipped": "cairn.data.localfiles",
    "Source": "cairn.data.files",
    "StatCache": "cairn.data.statcache",
    "TreeStore": "cairn.data.tree",
    "new_commit_id": "cairn.data.store",
    "parse_ref": "cairn.data.refs",
    "to_json": "cairn.data.models",
}

__all__ = [
    "DEFAULT_BRANCH",
    "AlreadyExists",
    "BranchInfo",
    "CommitInfo",
    "CommitState",
    "CommitStateError",
    "DataError",
    "DataStore",
    "DirEntry",
    "FileChange",
    "FileEntry",
    "FileInfo",
    "InvalidPath",
    "InvalidReference",
    "NotFound",
    "PathConflict",
    "Provenance",
    "Ref",
    "RepoInUse",
    "RepoInfo",
    "SkipReason",
    "Skipped",
    "Source",
    "StatCache",
    "TreeStore",
    "new_commit_id",
    "parse_ref",
    "to_json",
]


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals())
