"""DataStore: repos, branches and commits over a catalog and an object store.

State machine of a commit::

    start_commit ──► open ──finish_commit──► finished (never changes again)
    put file with no open commit ──────────► finished in one step (origin "auto")
    pipeline job success ──────────────────► finished in one step (origin "pipeline")

A branch head moves to a commit when it is started (as in Pachyderm, readers
of ``repo@branch`` see the open commit) or, for one-step commits, when it is
written. Every move is a compare-and-set on the old head inside one catalog
transaction; all chunks (the pack buffer is flushed first) and tree nodes
are written before it, so a crash
before the move leaves only unreferenced objects, never a partial commit.
Writers hold a lease and pin what they store or reuse (cairn.catalog.pins), so a
garbage collection running meanwhile never deletes what their commits name.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any, Unpack

from sqlalchemy import and_, delete, insert, select, update

from cairn.catalog import Catalog, CatalogPins
from cairn.catalog.schema import branches, commit_provenance, commits, repos
from cairn.data.commitlog import DEFAULT_BRANCH, CommitLog, NewCommit, new_commit_id, repo_missing
from cairn.data.errors import AlreadyExists, CommitStateError, InvalidReference, NotFound
from cairn.data.files import Files, PutOptions, Source
from cairn.data.models import (
    BranchInfo,
    CommitInfo,
    CommitState,
    FileChange,
    FileInfo,
    Provenance,
    RepoInfo,
)
from cairn.data.refs import Ref, check_name, parse_ref
from cairn.data.tree import FileEntry, TreeStore
from cairn.storage import ChunkStore

__all__ = ["DEFAULT_BRANCH", "DataStore", "new_commit_id"]


class DataStore:
    """Versioned data: the Python API of repos, branches, commits and files.

    All methods raise subclasses of cairn.data.errors.DataError for bad
    input (NotFound, AlreadyExists, InvalidPath, …). It is composed of a ``commit_log``
    (commit and branch rows, cairn.data.commitlog) and ``files`` (the file verbs,
    cairn.data.files), whose verbs it offers as its own.
    """

    def __init__(self, catalog: Catalog, chunks: ChunkStore) -> None:
        """``chunks`` is used as given, except that a chunk store without pins gets the
        catalog's (cairn.catalog.pins): every write of a DataStore pins what it relies on,
        so that garbage collection can run beside it."""
        self.catalog = catalog
        self.chunks = chunks
        self.pins = chunks.pins if isinstance(chunks.pins, CatalogPins) else CatalogPins(catalog)
        if chunks.pins is None:
            chunks.pins = self.pins
        self.trees = TreeStore(chunks.objects, pins=self.pins)
        self.commit_log = CommitLog(catalog, chunks, self.trees)
        self.files = Files(self.commit_log, chunks, self.trees, self.pins)

    # -- repos ---------------------------------------------------------------
    def create_repo(self, name: str, description: str = "", *, type: str = "user") -> RepoInfo:
        """Create an empty repo with no branches. Raises AlreadyExists, InvalidReference."""
        check_name(name)
        with self.catalog.write() as conn:
            if conn.execute(select(repos.c.name).where(repos.c.name == name)).first():
                raise AlreadyExists(f"repo {name!r} already exists")
            conn.execute(
                insert(repos).values(
                    name=name, type=type, description=description, created=time.time()
                )
            )
        return self.inspect_repo(name)

    def inspect_repo(self, name: str) -> RepoInfo:
        """The repo, its branches, and the size of its default branch's head. Raises NotFound."""
        with self.catalog.read() as conn:
            row = conn.execute(select(repos).where(repos.c.name == name)).first()
            if row is None:
                raise repo_missing(name)
            names = tuple(
                conn.execute(
                    select(branches.c.name).where(branches.c.repo == name).order_by(branches.c.name)
                ).scalars()
            )
            head = conn.execute(
                select(commits.c.size)
                .select_from(
                    branches.join(
                        commits,
                        and_(commits.c.repo == branches.c.repo, commits.c.id == branches.c.head),
                    )
                )
                .where(branches.c.repo == name, branches.c.name == DEFAULT_BRANCH)
            ).scalar()
            size = head or 0
        return RepoInfo(row.name, row.type, row.description, row.created, names, size)

    def list_repos(self) -> list[RepoInfo]:
        """Every repo, by name."""
        with self.catalog.read() as conn:
            names = list(conn.execute(select(repos.c.name).order_by(repos.c.name)).scalars())
        return [self.inspect_repo(n) for n in names]

    def delete_repo(self, name: str) -> None:
        """Delete a repo, its branches and commits. Its chunks stay until garbage collection.

        Raises NotFound. (Refusing repos that pipelines read is the caller's job: the
        data layer does not know pipelines.)
        """
        self.inspect_repo(name)
        with self.catalog.write() as conn:
            conn.execute(delete(commit_provenance).where(commit_provenance.c.repo == name))
            conn.execute(delete(branches).where(branches.c.repo == name))
            conn.execute(delete(commits).where(commits.c.repo == name))
            conn.execute(delete(repos).where(repos.c.name == name))

    # -- branches ------------------------------------------------------------
    def create_branch(self, repo: str, name: str, head: str | None = None) -> BranchInfo:
        """Create (or move) branch ``name``; ``head`` is a commitish (``other^``, an id, or
        pachctl's ``repo@other^``) or None. Raises InvalidReference for another repo's commit."""
        check_name(name, "branch")
        self.inspect_repo(repo)
        target = None
        if head:
            ref = parse_ref(head) if "@" in head else Ref.parse(repo, head)
            if ref.repo != repo:
                raise InvalidReference(f"--head {head}: a branch of {repo} must point into {repo}")
            target = self.resolve(ref).id
        with self.catalog.write() as conn:
            self.commit_log.set_branch(conn, repo, name, target)
        return self.inspect_branch(repo, name)

    def inspect_branch(self, repo: str, name: str) -> BranchInfo:
        """Raises NotFound."""
        with self.catalog.read() as conn:
            row = conn.execute(
                select(branches).where(branches.c.repo == repo, branches.c.name == name)
            ).first()
        if row is None:
            self.inspect_repo(repo)
            raise NotFound(f"branch {name!r} not found in repo {repo!r}")
        return BranchInfo(row.repo, row.name, row.head, row.created)

    def list_branches(self, repo: str) -> list[BranchInfo]:
        """The branches of ``repo``, by name. Raises NotFound."""
        self.inspect_repo(repo)
        with self.catalog.read() as conn:
            rows = conn.execute(
                select(branches).where(branches.c.repo == repo).order_by(branches.c.name)
            ).all()
        return [BranchInfo(r.repo, r.name, r.head, r.created) for r in rows]

    def delete_branch(self, repo: str, name: str) -> None:
        """Remove the name; the commits stay reachable by id."""
        self.inspect_branch(repo, name)
        with self.catalog.write() as conn:
            conn.execute(delete(branches).where(branches.c.repo == repo, branches.c.name == name))

    # -- commits -------------------------------------------------------------
    def resolve(self, ref: Ref) -> CommitInfo:
        """The commit ``ref`` names: a branch head (default ``master``), an id or a unique id
        prefix, then ``ancestry`` steps back along parents.

        Raises NotFound (no such repo, branch, commit, or no commit yet on the branch).
        """
        return self.commit_log.resolve(ref)

    def inspect_commit(self, repo: str, commitish: str | None = None) -> CommitInfo:
        """Shorthand for ``resolve(Ref.parse(repo, commitish))``."""
        return self.resolve(Ref.parse(repo, commitish))

    def list_commits(
        self, repo: str, branch: str | None = None, limit: int = 0
    ) -> list[CommitInfo]:
        """Commits newest first: a branch's history (following parents) or, with no
        branch, every commit of the repo."""
        self.inspect_repo(repo)
        out: list[CommitInfo] = []
        if branch is not None:
            try:
                info: CommitInfo | None = self.resolve(Ref(repo, branch))
            except NotFound:
                self.inspect_branch(repo, branch)
                return []
            with self.catalog.read() as conn:
                while info is not None and (not limit or len(out) < limit):
                    out.append(info)
                    info = self.commit_log.load(conn, repo, info.parent) if info.parent else None
            return out
        with self.catalog.read() as conn:
            query = (
                select(commits.c.id)
                .where(commits.c.repo == repo)
                .order_by(commits.c.created.desc())
            )
            if limit:
                query = query.limit(limit)
            ids = list(conn.execute(query).scalars())
            return [c for c in (self.commit_log.load(conn, repo, i) for i in ids) if c]

    def start_commit(
        self, repo: str, branch: str = DEFAULT_BRANCH, description: str = ""
    ) -> CommitInfo:
        """Open a new commit on ``branch`` (created if missing), parented on its head.

        Raises CommitStateError if the branch's head is still open, DataError for
        pipeline output repos.
        """
        check_name(branch, "branch")
        self.commit_log.check_writable(repo)
        with self.catalog.write() as conn:
            head = self.commit_log.head(conn, repo, branch)
            if head is not None and head.state == CommitState.OPEN:
                raise CommitStateError(
                    f"{repo}@{branch} has an open commit {head.id}; finish it first"
                )
            tree = head.tree if head else None
            opened = NewCommit(repo, branch, tree, CommitState.OPEN, "user", description)
            commit_id = self.commit_log.advance(conn, head, opened)
        return self.inspect_commit(repo, commit_id)

    def finish_commit(self, repo: str, commitish: str | None = None) -> CommitInfo:
        """Finish an open commit (a branch whose head is open, or an id). Raises
        CommitStateError if it is finished already."""
        info = self.inspect_commit(repo, commitish)
        if info.state != CommitState.OPEN:
            raise CommitStateError(f"commit {repo}@{info.id} is already finished")
        size = self.commit_log.tree_size(info.tree)
        with self.catalog.write() as conn:
            finished = CommitState.FINISHED
            if not self.commit_log.change_open(
                conn, repo, info.id, state=finished, finished=time.time(), size=size
            ):
                raise CommitStateError(f"commit {repo}@{info.id} was finished by someone else")
        return self.inspect_commit(repo, info.id)

    def wait_commit(
        self,
        repo: str,
        commitish: str | None = None,
        timeout: float | None = None,
        poll: float = 0.2,
    ) -> CommitInfo:
        """Block until the commit is finished; return it. Raises TimeoutError."""
        deadline = None if timeout is None else time.monotonic() + timeout
        info = self.inspect_commit(repo, commitish)
        while info.state != CommitState.FINISHED:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"commit {repo}@{info.id} still open after {timeout}s")
            time.sleep(poll)
            info = self.inspect_commit(repo, info.id)
        return info

    def write_commit(
        self,
        repo: str,
        branch: str,
        tree: str | None,
        *,
        expected_head: str | None,
        commit_id: str | None = None,
        origin: str = "pipeline",
        description: str = "",
        provenance: Iterable[Provenance] = (),
        info: dict[str, Any] | None = None,
    ) -> CommitInfo:
        """Write a finished commit with root ``tree`` on ``branch`` in one transaction.

        The branch must still point at ``expected_head``; otherwise CommitStateError
        (somebody else moved it) and nothing is written.
        """
        check_name(branch, "branch")
        new = NewCommit(
            repo,
            branch,
            tree,
            origin=origin,
            description=description,
            info=info,
            provenance=tuple(provenance),
            id=commit_id,
        )
        self.chunks.flush()
        with self.catalog.write() as conn:
            head = self.commit_log.head(conn, repo, branch)
            if (head.id if head else None) != expected_head:
                raise CommitStateError(f"{repo}@{branch} moved while the commit was written")
            commit_id = self.commit_log.advance(conn, head, new)
        return self.inspect_commit(repo, commit_id)

    def subvenance(self, repo: str, commit_id: str) -> list[tuple[str, str, str]]:
        """Commits that read ``repo@commit_id`` as (repo, commit id, input name)."""
        with self.catalog.read() as conn:
            rows = conn.execute(
                select(commit_provenance).where(
                    commit_provenance.c.input_repo == repo,
                    commit_provenance.c.input_commit == commit_id,
                )
            ).all()
        return [(r.repo, r.commit, r.input_name) for r in rows]

    # -- rewriting history: pachctl's delete commit and squash commit ---------------------
    def _downstream(self, repo: str, commit_id: str) -> list[CommitInfo]:
        """``repo@commit_id`` and every commit made from it, transitively, upstream first."""
        found: list[CommitInfo] = []
        seen: set[tuple[str, str]] = set()
        todo = [(repo, commit_id)]
        while todo:
            r, c = todo.pop(0)
            if (r, c) in seen:
                continue
            seen.add((r, c))
            try:
                found.append(self.inspect_commit(r, c))
            except NotFound:
                continue
            todo += [(child, cid) for child, cid, _ in sorted(self.subvenance(r, c))]
        return found

    def _children(self, conn: Any, repo: str, commit_id: str) -> list[str]:
        return list(
            conn.execute(
                select(commits.c.id).where(commits.c.repo == repo, commits.c.parent == commit_id)
            ).scalars()
        )

    def _heads_at(self, conn: Any, repo: str, commit_id: str) -> list[str]:
        return list(
            conn.execute(
                select(branches.c.name).where(branches.c.repo == repo, branches.c.head == commit_id)
            ).scalars()
        )

    def _drop(self, conn: Any, c: CommitInfo) -> None:
        conn.execute(
            delete(commit_provenance).where(
                commit_provenance.c.repo == c.repo, commit_provenance.c.commit == c.id
            )
        )
        conn.execute(delete(commits).where(commits.c.repo == c.repo, commits.c.id == c.id))

    def delete_commit(self, repo: str, commitish: str) -> list[CommitInfo]:
        """Delete a commit that no commit has as parent, and the commits made from it
        (pipelines' outputs, transitively), as pachctl delete commit does: each branch
        whose head one of them is moves to its parent (or to no commit). The data stays
        until garbage collection. Returns the deleted commits, upstream first.

        Raises NotFound, CommitStateError (one of them has a child commit: deleting it
        would cut that history; ``squash`` removes a commit from within a history)."""
        gone = self._downstream(repo, self.inspect_commit(repo, commitish).id)
        with self.catalog.write() as conn:
            for c in gone:
                children = self._children(conn, c.repo, c.id)
                if children:
                    raise CommitStateError(
                        f"cannot delete {c.repo}@{c.id}: commit {children[0]} has it as parent"
                        + (f" (it was made from {repo}@{gone[0].id})" if c is not gone[0] else "")
                        + "; only a commit with no children can be deleted, squash keeps "
                        "its children's data"
                    )
            for c in reversed(gone):
                for name in self._heads_at(conn, c.repo, c.id):
                    self.commit_log.set_branch(conn, c.repo, name, c.parent)
                self._drop(conn, c)
        return gone

    def squash_commit(self, repo: str, commitish: str) -> list[CommitInfo]:
        """Remove a finished commit from within its history, as pachctl squash commit does:
        its children take its parent as theirs and keep their own data (every commit is a
        whole snapshot), and so do the commits made from it (pipelines' outputs), which are
        squashed with it. Returns the squashed commits, upstream first.

        Raises NotFound, CommitStateError (an open commit, a branch head, or a commit with
        no child: there is nothing to squash it into; ``delete`` removes a head)."""
        gone = self._downstream(repo, self.inspect_commit(repo, commitish).id)
        with self.catalog.write() as conn:
            for c in gone:
                heads = self._heads_at(conn, c.repo, c.id)
                why = (
                    "it is open"
                    if c.state is not CommitState.FINISHED
                    else f"it is the head of {c.repo}@{heads[0]}"
                    if heads
                    else "no commit has it as parent"
                    if not self._children(conn, c.repo, c.id)
                    else ""
                )
                if why:
                    made = f" (made from {repo}@{gone[0].id})" if c is not gone[0] else ""
                    raise CommitStateError(
                        f"cannot squash {c.repo}@{c.id}{made}: {why}; a squashed commit's "
                        "data lives on in its children, so it needs one (delete a head instead)"
                    )
            for c in gone:
                conn.execute(
                    update(commits)
                    .where(commits.c.repo == c.repo, commits.c.parent == c.id)
                    .values(parent=c.parent)
                )
                self._drop(conn, c)
        return gone

    # -- files: the verbs of cairn.data.files, offered here as the store's own ----------
    def put_files(
        self,
        repo: str,
        target: str | None,
        items: Iterable[tuple[str, Source]],
        **options: Unpack[PutOptions],
    ) -> CommitInfo:
        """See :meth:`cairn.data.files.Files.put_files`."""
        return self.files.put_files(repo, target, items, **options)

    def delete_files(self, repo: str, target: str | None, paths: Iterable[str]) -> CommitInfo:
        """See :meth:`cairn.data.files.Files.delete_files`."""
        return self.files.delete_files(repo, target, paths)

    def copy_file(self, src: Ref, repo: str, target: str | None, dst_path: str) -> CommitInfo:
        """See :meth:`cairn.data.files.Files.copy_file`."""
        return self.files.copy_file(src, repo, target, dst_path)

    def inspect_file(self, ref: Ref) -> FileInfo:
        """See :meth:`cairn.data.files.Files.inspect_file`."""
        return self.files.inspect_file(ref)

    def list_file(self, ref: Ref) -> list[FileInfo]:
        """See :meth:`cairn.data.files.Files.list_file`."""
        return self.files.list_file(ref)

    def glob_file(self, ref: Ref, pattern: str) -> list[FileInfo]:
        """See :meth:`cairn.data.files.Files.glob_file`."""
        return self.files.glob_file(ref, pattern)

    def walk_files(self, ref: Ref) -> Iterator[tuple[str, FileEntry]]:
        """See :meth:`cairn.data.files.Files.walk_files`."""
        return self.files.walk_files(ref)

    def read_file(self, ref: Ref) -> Iterator[bytes]:
        """See :meth:`cairn.data.files.Files.read_file`."""
        return self.files.read_file(ref)

    def read_file_range(self, ref: Ref, start: int, end: int | None = None) -> Iterator[bytes]:
        """See :meth:`cairn.data.files.Files.read_file_range`."""
        return self.files.read_file_range(ref, start, end)

    def diff_file(self, new: Ref, old: Ref | None = None) -> list[FileChange]:
        """See :meth:`cairn.data.files.Files.diff_file`."""
        return self.files.diff_file(new, old)
