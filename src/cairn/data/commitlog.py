"""CommitLog: the catalog's commit and branch rows, and the one way a tree moves.

DataStore (cairn.data.store) and its file verbs (cairn.data.files) both hold one; it
owns what they share: reading a commit row back, resolving a reference, inserting a
commit and moving its branch in one transaction, and ``update_tree``, the
compare-and-set every file verb writes through (see the store's module doc for the
commit state machine it keeps).
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, insert, select, update
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from cairn.catalog import Catalog
from cairn.catalog.rows import row_to
from cairn.catalog.schema import branches, commit_provenance, commits, repos
from cairn.data.errors import CommitStateError, DataError, NoCommitYet, NotFound
from cairn.data.models import CommitInfo, CommitState, Provenance
from cairn.data.refs import Ref, check_name
from cairn.data.subject import about
from cairn.data.tree import DirEntry, TreeStore
from cairn.storage import ChunkStore

__all__ = [
    "DEFAULT_BRANCH",
    "CommitLog",
    "NewCommit",
    "TreeChange",
    "new_commit_id",
    "repo_missing",
]

DEFAULT_BRANCH = "master"
# Compare-and-set attempts of one tree update before giving up: each lost race means
# another writer made progress, and the random exponential wait (1 ms up to 100 ms)
# spreads writers that keep colliding instead of spinning them against each other.
_CAS_ATTEMPTS = 100
_ID = re.compile(r"^[0-9a-f]{32}$")
_ID_PREFIX = re.compile(r"^[0-9a-f]{6,31}$")
# Old root tree -> new root tree (None: empty).
TreeChange = Callable[[str | None], str | None]
# The provenance columns, in the order of Provenance's fields.
_PROVENANCE_COLUMNS = ("input_name", "input_repo", "input_branch", "input_commit")


def new_commit_id() -> str:
    """A fresh commit id: 32 lowercase hex digits, like Pachyderm's."""
    return uuid.uuid4().hex


def repo_missing(name: str) -> NotFound:
    """The NotFound for a repo that does not exist, to be raised."""
    return about(NotFound(f"repo {name!r} not found"), "repo.missing", name=name)


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


@dataclass(frozen=True, slots=True)
class NewCommit:
    """A commit to add on ``repo@branch`` with root ``tree``. ``id`` is the id wished for
    (a pipeline job's): taken when the repo has no commit by that id, else a fresh one."""

    repo: str
    branch: str
    tree: str | None
    state: CommitState = CommitState.FINISHED
    origin: str = "auto"
    description: str = ""
    info: dict[str, Any] | None = None
    provenance: tuple[Provenance, ...] = ()
    id: str | None = None


class _LostRace(Exception):
    """Another writer changed the commit or the branch between our read and our write."""


class CommitLog:
    """Commit and branch rows in ``catalog``; the trees they name in ``trees``, whose chunks
    ``chunks`` stores (its pack buffer is flushed before a tree becomes visible)."""

    def __init__(self, catalog: Catalog, chunks: ChunkStore, trees: TreeStore) -> None:
        self.catalog = catalog
        self.chunks = chunks
        self.trees = trees

    # -- reading -------------------------------------------------------------------
    def load(self, conn: Connection, repo: str, commit_id: str) -> CommitInfo | None:
        """The commit ``repo@commit_id`` with its provenance, or None."""
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
            info = dataclasses.replace(info, size=self.tree_size(info.tree))
        return info

    def resolve(self, ref: Ref) -> CommitInfo:
        """The commit ``ref`` names: a branch head (default ``master``), an id or a unique id
        prefix, then ``ancestry`` steps back along parents.

        Raises NotFound (no such repo, branch, commit, or no commit yet on the branch).
        """
        name = ref.commit or DEFAULT_BRANCH
        with self.catalog.read() as conn:
            if not conn.execute(select(repos.c.name).where(repos.c.name == ref.repo)).first():
                raise repo_missing(ref.repo)
            head = conn.execute(
                select(branches.c.head).where(branches.c.repo == ref.repo, branches.c.name == name)
            ).first()
            commit_id: str | None
            if head is not None:
                commit_id = head.head
                if commit_id is None:
                    raise NoCommitYet(f"branch {ref.repo}@{name} has no commits yet")
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
            info = self.load(conn, ref.repo, commit_id)
            if info is None:
                raise NotFound(f"commit {ref.repo}@{commit_id} not found")
            for _ in range(ref.ancestry):
                parent = self.load(conn, ref.repo, info.parent) if info.parent else None
                if parent is None:
                    raise NotFound(f"{ref}: the history is not that long")
                info = parent
        return info

    def head(self, conn: Connection, repo: str, branch: str) -> CommitInfo | None:
        """The commit ``repo@branch`` points at; None for a new or empty branch. Raises
        NotFound for a missing repo."""
        if not conn.execute(select(repos.c.name).where(repos.c.name == repo)).first():
            raise about(NotFound(f"repo {repo!r} not found"), "repo.create", name=repo)
        row = conn.execute(
            select(branches.c.head).where(branches.c.repo == repo, branches.c.name == branch)
        ).first()
        if row is None or row.head is None:
            return None
        return self.load(conn, repo, row.head)

    def branch_exists(self, conn: Connection, repo: str, name: str) -> bool:
        return (
            conn.execute(
                select(branches.c.name).where(branches.c.repo == repo, branches.c.name == name)
            ).first()
            is not None
        )

    def tree_size(self, tree: str | None) -> int:
        """Bytes of the files under root ``tree``."""
        entry = self.trees.lookup(tree, "")
        return entry.size if isinstance(entry, DirEntry) else 0

    def check_writable(self, repo: str) -> None:
        """Raises NotFound for a missing repo, DataError for a pipeline's output repo (a
        spout's output takes puts: its process writes it)."""
        with self.catalog.read() as conn:
            kind = conn.execute(select(repos.c.type).where(repos.c.name == repo)).scalar()
        if kind is None:
            raise repo_missing(repo)
        if kind not in ("user", "spout"):
            raise DataError(
                f"repo {repo!r} is a pipeline's output; only its pipeline's jobs write to it"
            )

    # -- writing -------------------------------------------------------------------
    def set_branch(self, conn: Connection, repo: str, name: str, head: str | None) -> None:
        """Create branch ``name`` or move it to ``head``."""
        if self.branch_exists(conn, repo, name):
            conn.execute(
                update(branches)
                .where(branches.c.repo == repo, branches.c.name == name)
                .values(head=head)
            )
        else:
            conn.execute(
                insert(branches).values(repo=repo, name=name, head=head, created=time.time())
            )

    def advance(self, conn: Connection, parent: CommitInfo | None, new: NewCommit) -> str:
        """Insert ``new`` as a child of ``parent`` with its provenance rows, and point its
        branch at it, inside the caller's transaction. Returns its id. A finished commit's
        size is its tree's; an open one's is worked out when it is read."""
        commit_id = new.id if new.id and self.load(conn, new.repo, new.id) is None else None
        commit_id = commit_id or new_commit_id()
        now = time.time()
        finished = new.state == CommitState.FINISHED
        conn.execute(
            insert(commits).values(
                repo=new.repo,
                id=commit_id,
                parent=parent.id if parent else None,
                branch=new.branch,
                tree=new.tree,
                state=new.state,
                origin=new.origin,
                description=new.description,
                created=now,
                finished=now if finished else None,
                size=self.tree_size(new.tree) if finished else 0,
                info=json.dumps(new.info or {}, sort_keys=True),
            )
        )
        rows = [
            {
                "repo": new.repo,
                "commit": commit_id,
                **dict(zip(_PROVENANCE_COLUMNS, p, strict=True)),
            }
            for p in map(dataclasses.astuple, new.provenance)
        ]
        if rows:
            conn.execute(insert(commit_provenance), rows)
        self.set_branch(conn, new.repo, new.branch, commit_id)
        return commit_id

    @staticmethod
    def change_open(
        conn: Connection, repo: str, commit_id: str, *also: ColumnElement[bool], **values: Any
    ) -> bool:
        """Set ``values`` on commit ``repo@commit_id`` if it is still open (and ``also``
        holds); False when it was not (another writer got there first)."""
        done = conn.execute(
            update(commits)
            .where(
                commits.c.repo == repo,
                commits.c.id == commit_id,
                commits.c.state == CommitState.OPEN,
                *also,
            )
            .values(**values)
        )
        return bool(done.rowcount == 1)

    def update_tree(
        self, repo: str, target: str | None, change: TreeChange, description: str = ""
    ) -> CommitInfo:
        """Apply ``change`` (old root -> new root) to the open commit ``target`` names (a
        branch whose head is open, or an open commit id), or else make a new finished commit
        on branch ``target``. Compare-and-set; retried if another writer got there first.

        Raises NotFound, DataError (a pipeline's output repo), CommitStateError (a finished
        commit id, or a hundred lost races in a row), InvalidReference (a bad branch name).
        """
        self.check_writable(repo)
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
        return self.resolve(Ref(repo, commit_id))

    def _try_update_tree(self, repo: str, name: str, change: TreeChange, description: str) -> str:
        """One compare-and-set of ``update_tree``: the commit id written; raises _LostRace
        when another writer moved the commit or the branch between the read and the write."""
        with self.catalog.read() as conn:
            head = None
            if _ID.match(name) and not self.branch_exists(conn, repo, name):
                head = self.load(conn, repo, name)
                if head is None:
                    raise NotFound(f"commit {repo}@{name} not found")
                if head.state != CommitState.OPEN:
                    raise CommitStateError(
                        f"commit {repo}@{name} is finished; finished commits never change"
                    )
            else:
                check_name(name, "branch")
                head = self.head(conn, repo, name)
        new_tree = change(head.tree if head else None)
        # Packed chunks the new tree refers to must be stored before it is visible.
        self.chunks.flush()
        with self.catalog.write() as conn:
            if head is not None and head.state == CommitState.OPEN:
                same_tree = (
                    commits.c.tree.is_(None) if head.tree is None else commits.c.tree == head.tree
                )
                if self.change_open(conn, repo, head.id, same_tree, tree=new_tree):
                    return head.id
                raise _LostRace
            now_head = self.head(conn, repo, name)
            if (now_head.id if now_head else None) != (head.id if head else None):
                raise _LostRace
            return self.advance(
                conn, head, NewCommit(repo, name, new_tree, description=description)
            )
