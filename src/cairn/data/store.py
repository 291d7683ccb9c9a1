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

import dataclasses
import json
import re
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select, update
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from cairn.catalog import Catalog, CatalogPins
from cairn.catalog.rows import row_to
from cairn.catalog.schema import branches, commit_provenance, commits, repos
from cairn.data.errors import (
    AlreadyExists,
    CommitStateError,
    DataError,
    InvalidReference,
    NotFound,
)
from cairn.data.files import FileOps
from cairn.data.models import BranchInfo, CommitInfo, CommitState, Provenance, RepoInfo
from cairn.data.refs import Ref, check_name, parse_ref
from cairn.data.subject import about
from cairn.data.tree import DirEntry, TreeStore
from cairn.storage import ChunkStore

__all__ = ["DEFAULT_BRANCH", "DataStore", "new_commit_id"]

DEFAULT_BRANCH = "master"
# Compare-and-set attempts of one tree update before giving up: each lost race means
# another writer made progress, and the random exponential wait (1 ms up to 100 ms)
# spreads writers that keep colliding instead of spinning them against each other.
_CAS_ATTEMPTS = 100
_ID = re.compile(r"^[0-9a-f]{32}$")
_ID_PREFIX = re.compile(r"^[0-9a-f]{6,31}$")


def new_commit_id() -> str:
    """A fresh commit id: 32 lowercase hex digits, like Pachyderm's."""
    return uuid.uuid4().hex


def _commit_from_row(row: Any, provenance: Iterable[Any] = ()) -> CommitInfo:
    return row_to(
        CommitInfo,
        row,
        state=CommitState(row.state),
        info=json.loads(row.info),
        provenance=tuple(
            Provenance(p.input_name, p.input_repo, p.input_branch, p.input_commit)
            for p in provenance
        ),
    )


class _LostRace(Exception):
    """Another writer changed the commit or the branch between our read and our write."""


class DataStore(FileOps):
    """Versioned data: the Python API of repos, branches, commits and files.

    All methods raise subclasses of cairn.data.errors.DataError for bad
    input (NotFound, AlreadyExists, InvalidPath, …).
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
                raise about(NotFound(f"repo {name!r} not found"), "repo.missing", name=name)
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
            self._set_branch(conn, repo, name, target)
        return self.inspect_branch(repo, name)

    def _set_branch(self, conn: Connection, repo: str, name: str, head: str | None) -> None:
        found = conn.execute(
            select(branches.c.name).where(branches.c.repo == repo, branches.c.name == name)
        ).first()
        if found:
            conn.execute(
                update(branches)
                .where(branches.c.repo == repo, branches.c.name == name)
                .values(head=head)
            )
        else:
            conn.execute(
                insert(branches).values(repo=repo, name=name, head=head, created=time.time())
            )

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
    def _load_commit(self, conn: Connection, repo: str, commit_id: str) -> CommitInfo | None:
        row = conn.execute(
            select(commits).where(commits.c.repo == repo, commits.c.id == commit_id)
        ).first()
        if row is None:
            return None
        prov = conn.execute(
            select(commit_provenance)
            .where(commit_provenance.c.repo == repo, commit_provenance.c.commit == commit_id)
            .order_by(commit_provenance.c.input_name)
        ).all()
        info = _commit_from_row(row, prov)
        if info.state == CommitState.OPEN:  # an open commit's size is fixed only when it finishes
            info = dataclasses.replace(info, size=self._tree_size(info.tree))
        return info

    def resolve(self, ref: Ref) -> CommitInfo:
        """The commit ``ref`` names: a branch head (default ``master``), an id or a unique id
        prefix, then ``ancestry`` steps back along parents.

        Raises NotFound (no such repo, branch, commit, or no commit yet on the branch).
        """
        name = ref.commit or DEFAULT_BRANCH
        with self.catalog.read() as conn:
            if not conn.execute(select(repos.c.name).where(repos.c.name == ref.repo)).first():
                missing = NotFound(f"repo {ref.repo!r} not found")
                raise about(missing, "repo.missing", name=ref.repo)
            head = conn.execute(
                select(branches.c.head).where(branches.c.repo == ref.repo, branches.c.name == name)
            ).first()
            commit_id: str | None
            if head is not None:
                commit_id = head.head
                if commit_id is None:
                    raise NotFound(f"branch {ref.repo}@{name} has no commits yet")
            elif _ID.match(name):
                commit_id = name
            elif _ID_PREFIX.match(name):
                found = list(
                    conn.execute(
                        select(commits.c.id)
                        .where(commits.c.repo == ref.repo, commits.c.id.startswith(name))
                        .limit(2)
                    ).scalars()
                )
                if len(found) != 1:
                    raise NotFound(
                        f"{ref.repo}@{name}: "
                        + ("ambiguous commit id prefix" if found else "no such branch or commit")
                    )
                commit_id = found[0]
            else:
                raise NotFound(f"{ref.repo}@{name}: no such branch or commit")
            info = self._load_commit(conn, ref.repo, commit_id)
            if info is None:
                raise NotFound(f"commit {ref.repo}@{commit_id} not found")
            for _ in range(ref.ancestry):
                if info.parent is None:
                    raise NotFound(f"{ref}: the history is not that long")
                parent = self._load_commit(conn, ref.repo, info.parent)
                if parent is None:
                    raise NotFound(f"{ref}: the history is not that long")
                info = parent
        return info

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
                    info = self._load_commit(conn, repo, info.parent) if info.parent else None
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
            return [c for c in (self._load_commit(conn, repo, i) for i in ids) if c]

    def start_commit(
        self, repo: str, branch: str = DEFAULT_BRANCH, description: str = ""
    ) -> CommitInfo:
        """Open a new commit on ``branch`` (created if missing), parented on its head.

        Raises CommitStateError if the branch's head is still open, DataError for
        pipeline output repos.
        """
        check_name(branch, "branch")
        self._check_writable(repo)
        commit_id = new_commit_id()
        with self.catalog.write() as conn:
            head = self._head(conn, repo, branch)
            if head is not None and head.state == CommitState.OPEN:
                raise CommitStateError(
                    f"{repo}@{branch} has an open commit {head.id}; finish it first"
                )
            self._insert_commit(
                conn,
                repo,
                commit_id,
                head,
                branch,
                head.tree if head else None,
                state=CommitState.OPEN,
                origin="user",
                description=description,
            )
            self._set_branch(conn, repo, branch, commit_id)
        return self.inspect_commit(repo, commit_id)

    def finish_commit(self, repo: str, commitish: str | None = None) -> CommitInfo:
        """Finish an open commit (a branch whose head is open, or an id). Raises
        CommitStateError if it is finished already."""
        info = self.inspect_commit(repo, commitish)
        if info.state != CommitState.OPEN:
            raise CommitStateError(f"commit {repo}@{info.id} is already finished")
        size = self._tree_size(info.tree)
        with self.catalog.write() as conn:
            done = conn.execute(
                update(commits)
                .where(
                    commits.c.repo == repo,
                    commits.c.id == info.id,
                    commits.c.state == CommitState.OPEN,
                )
                .values(state=CommitState.FINISHED, finished=time.time(), size=size)
            )
            if done.rowcount != 1:
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
        commit_id = commit_id or new_commit_id()
        size = self._tree_size(tree)
        self.chunks.flush()
        with self.catalog.write() as conn:
            head = self._head(conn, repo, branch)
            if (head.id if head else None) != expected_head:
                raise CommitStateError(f"{repo}@{branch} moved while the commit was written")
            if self._load_commit(conn, repo, commit_id) is not None:
                commit_id = new_commit_id()
            self._insert_commit(
                conn,
                repo,
                commit_id,
                head,
                branch,
                tree,
                state=CommitState.FINISHED,
                origin=origin,
                description=description,
                size=size,
                info=info,
            )
            for p in provenance:
                conn.execute(
                    insert(commit_provenance).values(
                        repo=repo,
                        commit=commit_id,
                        input_name=p.name,
                        input_repo=p.repo,
                        input_branch=p.branch,
                        input_commit=p.commit,
                    )
                )
            self._set_branch(conn, repo, branch, commit_id)
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

    # -- internals shared with FileOps -------------------------------------------
    def _insert_commit(
        self,
        conn: Connection,
        repo: str,
        commit_id: str,
        parent: CommitInfo | None,
        branch: str,
        tree: str | None,
        *,
        state: CommitState,
        origin: str,
        description: str = "",
        size: int = 0,
        info: dict[str, Any] | None = None,
    ) -> None:
        now = time.time()
        conn.execute(
            insert(commits).values(
                repo=repo,
                id=commit_id,
                parent=parent.id if parent else None,
                branch=branch,
                tree=tree,
                state=state,
                origin=origin,
                description=description,
                created=now,
                finished=now if state == CommitState.FINISHED else None,
                size=size,
                info=json.dumps(info or {}, sort_keys=True),
            )
        )

    def _head(self, conn: Connection, repo: str, branch: str) -> CommitInfo | None:
        if not conn.execute(select(repos.c.name).where(repos.c.name == repo)).first():
            raise about(NotFound(f"repo {repo!r} not found"), "repo.create", name=repo)
        row = conn.execute(
            select(branches.c.head).where(branches.c.repo == repo, branches.c.name == branch)
        ).first()
        if row is None or row.head is None:
            return None
        return self._load_commit(conn, repo, row.head)

    def _tree_size(self, tree: str | None) -> int:
        entry = self.trees.lookup(tree, "")
        return entry.size if isinstance(entry, DirEntry) else 0

    def _check_writable(self, repo: str) -> None:
        if self.inspect_repo(repo).type != "user":
            raise DataError(
                f"repo {repo!r} is a pipeline's output; only its pipeline's jobs write to it"
            )

    def _update_tree(
        self,
        repo: str,
        target: str | None,
        change: Callable[[str | None], str | None],
        description: str = "",
    ) -> CommitInfo:
        """Apply ``change`` (old root -> new root) to the open commit ``target`` names (a
        branch whose head is open, or an open commit id), or else make a new finished commit
        on branch ``target``. Compare-and-set; retried if another writer got there first."""
        self._check_writable(repo)
        name = target or DEFAULT_BRANCH
        try:
            for attempt in Retrying(
                retry=retry_if_exception_type(_LostRace),
                stop=stop_after_attempt(_CAS_ATTEMPTS),
                wait=wait_random_exponential(multiplier=0.001, max=0.1),
                reraise=True,
            ):
                with attempt:
                    commit_id = self._try_update_tree(repo, name, change, description)
        except _LostRace:
            raise CommitStateError(
                f"{repo}@{name}: too many concurrent writers, try again"
            ) from None
        return self.inspect_commit(repo, commit_id)

    def _try_update_tree(
        self,
        repo: str,
        name: str,
        change: Callable[[str | None], str | None],
        description: str,
    ) -> str:
        """One compare-and-set of ``_update_tree``: the commit id written; raises _LostRace
        when another writer moved the commit or the branch between the read and the write."""
        with self.catalog.read() as conn:
            head = None
            if _ID.match(name) and not self._branch_exists(conn, repo, name):
                head = self._load_commit(conn, repo, name)
                if head is None:
                    raise NotFound(f"commit {repo}@{name} not found")
                if head.state != CommitState.OPEN:
                    raise CommitStateError(
                        f"commit {repo}@{name} is finished; finished commits never change"
                    )
            else:
                check_name(name, "branch")
                head = self._head(conn, repo, name)
        new_tree = change(head.tree if head else None)
        # Packed chunks the new tree refers to must be stored before it is visible.
        self.chunks.flush()
        with self.catalog.write() as conn:
            if head is not None and head.state == CommitState.OPEN:
                done = conn.execute(
                    update(commits)
                    .where(
                        commits.c.repo == repo,
                        commits.c.id == head.id,
                        commits.c.state == CommitState.OPEN,
                        commits.c.tree.is_(None)
                        if head.tree is None
                        else commits.c.tree == head.tree,
                    )
                    .values(tree=new_tree)
                )
                if done.rowcount == 1:
                    return head.id
                raise _LostRace
            now_head = self._head(conn, repo, name)
            if (now_head.id if now_head else None) != (head.id if head else None):
                raise _LostRace
            commit_id = new_commit_id()
            self._insert_commit(
                conn,
                repo,
                commit_id,
                head,
                name,
                new_tree,
                state=CommitState.FINISHED,
                origin="auto",
                description=description,
                size=self._tree_size(new_tree),
            )
            self._set_branch(conn, repo, name, commit_id)
            return commit_id

    def _branch_exists(self, conn: Connection, repo: str, name: str) -> bool:
        return (
            conn.execute(
                select(branches.c.name).where(branches.c.repo == repo, branches.c.name == name)
            ).first()
            is not None
        )
