"""The data half of the face (cairn.api.protocol re-exports these): repos, branches,
commits and files, each named by the strings of cairn.api.refs. The rules of
cairn.api.protocol's doc hold here: plain values in and out, cairn's errors."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from cairn.api.refs import RefLike
    from cairn.api.types import CommitLineage, FileLineage
    from cairn.data import BranchInfo, CommitInfo, FileChange, FileInfo, RepoInfo, Skipped
    from cairn.pipelines import JobInfo

__all__ = ["BranchesProtocol", "CommitsProtocol", "FilesProtocol", "ReposProtocol"]


@runtime_checkable
class ReposProtocol(Protocol):
    """Repos: named, versioned collections of files."""

    def list(self) -> builtins.list[RepoInfo]:
        """Every repo, by name."""
        ...

    def get(self, name: str) -> RepoInfo:
        """The repo, its branches and the size (bytes) of master's head. Raises NotFound."""
        ...

    def create(self, name: str, description: str = "") -> RepoInfo:
        """An empty user repo. Raises AlreadyExists, InvalidReference (a bad name)."""
        ...

    def delete(self, name: str, *, force: bool = False) -> None:
        """Delete a repo (a pipeline's output repo goes with its pipeline). Raises
        NotFound, RepoInUse while a pipeline reads it, unless ``force``."""
        ...


@runtime_checkable
class BranchesProtocol(Protocol):
    """Branches: movable names for commits, named ``repo@branch``."""

    def list(self, repo: str) -> builtins.list[BranchInfo]:
        """The branches of ``repo``, by name. Raises NotFound."""
        ...

    def get(self, ref: str) -> BranchInfo:
        """Branch ``repo@branch`` (its ``head`` is None before the first commit). Raises
        NotFound, InvalidReference."""
        ...

    def create(self, ref: str, head: str | None = None) -> BranchInfo:
        """Create or move branch ``repo@branch`` to ``head`` (``other^``, a commit id, or
        ``repo@other``; None: no commit yet). Raises NotFound, InvalidReference."""
        ...

    def delete(self, ref: str) -> None:
        """Remove branch ``repo@branch``; its commits stay reachable by id. Raises NotFound."""
        ...


@runtime_checkable
class CommitsProtocol(Protocol):
    """Commits: immutable snapshots, ``open`` while written, ``finished`` after."""

    def list(self, ref: str, *, limit: int = 0) -> builtins.list[CommitInfo]:
        """Newest first: the history of ``repo@branch`` (following parents), or every
        commit of ``repo``; ``limit`` > 0 keeps that many. Raises NotFound."""
        ...

    def get(self, ref: RefLike) -> CommitInfo:
        """The commit ``repo@branch-or-id[^N]`` names (``repo`` alone: master's head).
        Raises NotFound, InvalidReference."""
        ...

    def start(self, ref: str, description: str = "") -> CommitInfo:
        """Open a commit on ``repo@branch`` (default master; the branch is created if
        missing). Raises CommitStateError if one is open there, DataError for a
        pipeline's output repo, NotFound."""
        ...

    def finish(self, ref: RefLike) -> CommitInfo:
        """Finish the open commit ``ref`` names, then run the pipelines downstream.
        Raises CommitStateError if it is finished already, NotFound."""
        ...

    def wait(self, ref: RefLike, timeout: float | None = None) -> CommitInfo:
        """Block until the commit is finished (``timeout`` in seconds, None: forever); for
        a pipeline's output repo, a commit id not there yet is waited for and the output
        commit that covers it is returned. Raises TimeoutError, PipelineError (its job
        failed), NotFound."""
        ...

    def wait_jobs(self, ref: RefLike, timeout: float | None = None) -> builtins.list[JobInfo]:
        """Block until the commit is finished and the jobs it starts downstream are done
        (``timeout`` in seconds, in all); return its job set (the jobs sharing its id,
        oldest first), failed ones included. Against
        a server, the jobs its worker has yet to start are waited for too. Raises
        TimeoutError, NotFound."""
        ...

    def lineage(self, ref: RefLike) -> CommitLineage:
        """What the commit came from and what came from it. Raises NotFound."""
        ...

    def delete(self, ref: RefLike) -> builtins.list[CommitInfo]:
        """Delete a commit no commit has as parent (a branch head), and the commits made
        from it (pipelines' outputs, with their jobs), as pachctl delete commit: branches
        at them move to their parents. Returns what was deleted. Raises NotFound,
        CommitStateError (a commit with children: deleting it would cut their history)."""
        ...

    def squash(self, ref: RefLike) -> builtins.list[CommitInfo]:
        """Remove a finished commit from inside its history, and the commits made from it,
        as pachctl squash commit: children take its parent and keep their own data.
        Returns what was squashed. Raises NotFound, CommitStateError (open, a branch head,
        or no child to squash into)."""
        ...


@runtime_checkable
class FilesProtocol(Protocol):
    """Files: bytes at ``repo@commit:/path``. A write names a branch (a new finished
    commit, then the pipelines downstream run) or an open commit (added to it)."""

    def put(
        self,
        ref: RefLike,
        data: bytes | IO[bytes] | Mapping[str, bytes | IO[bytes]],
        *,
        append: bool = False,
        description: str = "",
    ) -> CommitInfo:
        """Write ``data`` at ``repo@branch:/path``, or each ``{relative path: data}`` of a
        mapping below that path, in one commit; ``append`` adds to existing files.
        Raises InvalidPath, NotFound, CommitStateError, DataError."""
        ...

    def upload(
        self,
        ref: RefLike,
        sources: Sequence[str | Path],
        *,
        recursive: bool = False,
        append: bool = False,
        description: str = "",
        progress: Callable[[int], None] | None = None,
        on_plan: Callable[[int | None, int], None] | None = None,
        on_stored: Callable[[], None] | None = None,
        on_skipped: Callable[[builtins.list[Skipped]], None] | None = None,
    ) -> CommitInfo:
        """Put local files, or folders with ``recursive``, or standard input (``["-"]``)
        at ``repo@branch:/path`` in one commit, as ``cairn put file`` does (a folder's
        files keep their relative paths below the path; a file lands at the path, or
        below it when the path ends with ``/``). Called back, all in this process:
        ``on_skipped(entries)`` with the folder entries left out (links out of it, pipes,
        devices), then ``on_plan(total bytes or None for a stream, file count)``, then
        ``progress(bytes)`` per piece read, ``on_stored()`` once stored, before the
        pipelines downstream run. Raises InvalidPath, NotFound, NotRegularFile (a file
        changed under the put; nothing committed), DataError."""
        ...

    def download(
        self,
        ref: RefLike,
        output: str | Path,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> builtins.list[Path]:
        """Write a file, or every file below a folder, to local ``output``; return the
        local paths written (each written beside, then renamed); ``progress(bytes)`` per
        piece. Memory stays one chunk whatever the sizes. Raises NotFound, InvalidPath."""
        ...

    def read(self, ref: RefLike) -> bytes:
        """The whole content of one file. Raises NotFound, InvalidPath (a folder)."""
        ...

    def open(self, ref: RefLike) -> IO[bytes]:
        """A binary stream over one file's content, read chunk by chunk (close it when
        done). Raises NotFound, InvalidPath (a folder)."""
        ...

    def read_range(self, ref: RefLike, start: int, end: int | None = None) -> bytes:
        """Bytes ``start`` to ``end`` (exclusive; None or past the size: to the end of the
        file) of one file, reading only the chunks that hold them (a 1 MiB read of a
        1 GiB file reads about 1 MiB). Raises NotFound, InvalidPath (a folder),
        FieldError (a negative offset)."""
        ...

    def get(self, ref: RefLike) -> FileInfo:
        """The file or folder at the path (size in bytes, content hash). Raises NotFound."""
        ...

    def list(self, ref: RefLike) -> builtins.list[FileInfo]:
        """The children of a folder (or the file itself), by path. Raises NotFound."""
        ...

    def glob(self, ref: RefLike, pattern: str) -> builtins.list[FileInfo]:
        """Files and folders of the commit whose paths match ``pattern`` (Pachyderm's
        glob: ``/*``, ``/**/*.png``). Raises NotFound."""
        ...

    def diff(self, new: RefLike, old: RefLike | None = None) -> builtins.list[FileChange]:
        """Files added, modified and deleted from ``old`` (default: ``new``'s parent) to
        ``new``, by path. Raises NotFound."""
        ...

    def copy(self, src: RefLike, dst: RefLike) -> CommitInfo:
        """Copy a file or folder to ``repo@branch:/path`` without copying bytes. Raises
        NotFound, InvalidPath."""
        ...

    def delete(self, ref: RefLike, *more: RefLike) -> CommitInfo:
        """Delete files or folders, all of one ``repo@branch``, in one commit. Raises
        NotFound, InvalidReference (paths of different commits)."""
        ...

    def lineage(self, ref: RefLike) -> FileLineage:
        """The pipeline, job, datum and exact input files that wrote one file. Raises
        NotFound, InvalidPath (a folder)."""
        ...
