"""Transactions: branch moves and commit finishes that pipelines see at once.

As ``pachctl start transaction`` / ``finish transaction``: while a transaction is open,
``create branch``, ``delete branch`` and ``finish commit`` are recorded in it instead of
done; ``finish`` does them all, in order, while holding the pipelines' lock (the catalog
lock that every propagation takes), so no job starts between two of them, and the jobs
that follow see every change together: one job per pipeline, whose provenance holds all
the new heads. ``delete`` drops a transaction and what it recorded.

What cairn groups, and how it differs from Pachyderm:

* recorded: ``create branch`` (a move too), ``delete branch``, ``finish commit``. Each is
  checked when recorded and its commitish resolved then to a commit id (``--head
  master^`` names the commit that was ``master^`` when the command ran), so a mistake
  fails at once, not at ``finish``;
* not recorded: ``start commit`` and ``put file`` happen at once (a put needs its commit),
  and pipeline changes; a pipeline whose input commit is open waits anyway, so the
  commits of one transaction are finished together by recording their ``finish commit``;
* atomic for jobs, not for readers: the changes are made one after the other under the
  lock, so a ``list file`` may see the first change before the last; a change that fails
  at ``finish`` (the commit was finished meanwhile) stops there, the ones before it stay
  done, and the error names it;
* one open transaction per store (Pachyderm keeps one active per context); it lives in
  the catalog, so every process of the store and a team server's clients share it.

State machine::

    open ──finish──► finished (its changes made)
         └─delete──► (gone)
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, insert, select, update

from cairn.catalog.schema import transactions
from cairn.data import (
    AlreadyExists,
    CommitState,
    CommitStateError,
    DataStore,
    InvalidReference,
    NotFound,
    Ref,
)
from cairn.data.refs import parse_ref

__all__ = ["Request", "RequestKind", "TransactionInfo", "Transactions"]


class RequestKind(StrEnum):
    CREATE_BRANCH = "create_branch"
    DELETE_BRANCH = "delete_branch"
    FINISH_COMMIT = "finish_commit"


@dataclass(frozen=True)
class Request:
    """One recorded change: ``repo``, the branch ``name`` (branch requests) and ``commit``
    (the resolved id: the new head, or the commit to finish; None for a branch with no
    head)."""

    kind: RequestKind
    repo: str
    name: str = ""
    commit: str | None = None

    def describe(self) -> str:
        if self.kind == RequestKind.FINISH_COMMIT:
            return f"finish commit {self.repo}@{self.commit}"
        if self.kind == RequestKind.DELETE_BRANCH:
            return f"delete branch {self.repo}@{self.name}"
        return f"create branch {self.repo}@{self.name} --head {self.commit or '-'}"


@dataclass(frozen=True)
class TransactionInfo:
    """A transaction: ``id`` (32 hex), ``created`` (epoch seconds), ``state`` (``open`` or
    ``finished``) and its ``requests`` in the order recorded."""

    id: str
    created: float
    state: str
    requests: tuple[Request, ...]


def _info(row: Any) -> TransactionInfo:
    requests = tuple(
        Request(RequestKind(r["kind"]), r["repo"], r["name"], r["commit"])
        for r in json.loads(row.requests)
    )
    return TransactionInfo(row.id, row.created, row.state, requests)


class Transactions:
    """The store's transactions. ``pipelines`` is a :class:`cairn.pipelines.service.
    Pipelines`, whose lock ``finish`` holds."""

    def __init__(self, pipelines: Any) -> None:
        self.pipelines = pipelines
        self.data: DataStore = pipelines.data
        self.catalog = pipelines.catalog

    def start(self) -> TransactionInfo:
        """Open a transaction. Raises AlreadyExists while one is open."""
        with self.catalog.write() as conn:
            found = conn.execute(
                select(transactions.c.id).where(transactions.c.state == "open")
            ).first()
            if found is not None:
                raise AlreadyExists(f"transaction {found.id} is open; finish or delete it first")
            tid = secrets.token_hex(16)
            conn.execute(
                insert(transactions).values(
                    id=tid, created=time.time(), state="open", requests="[]"
                )
            )
        return self.inspect(tid)

    def active(self) -> TransactionInfo | None:
        """The open transaction, if there is one."""
        with self.catalog.read() as conn:
            row = conn.execute(select(transactions).where(transactions.c.state == "open")).first()
        return None if row is None else _info(row)

    def inspect(self, tid: str) -> TransactionInfo:
        """Raises NotFound."""
        with self.catalog.read() as conn:
            row = conn.execute(select(transactions).where(transactions.c.id == tid)).first()
        if row is None:
            raise NotFound(f"transaction {tid!r} not found")
        return _info(row)

    def list(self) -> list[TransactionInfo]:
        """Every transaction, oldest first."""
        with self.catalog.read() as conn:
            rows = conn.execute(select(transactions).order_by(transactions.c.created)).all()
        return [_info(r) for r in rows]

    def create_branch(self, repo: str, name: str, head: str | None) -> Request:
        """Record a branch creation or move in the open transaction; ``head`` is resolved
        now. Raises NotFound (no open transaction, no such repo or commit)."""
        self.data.inspect_repo(repo)
        commit = None
        if head:
            ref = parse_ref(head) if "@" in head else Ref.parse(repo, head)
            if ref.repo != repo:
                raise InvalidReference(f"--head {head}: a branch of {repo} must point into {repo}")
            commit = self.data.resolve(ref).id
        return self._add(Request(RequestKind.CREATE_BRANCH, repo, name, commit))

    def delete_branch(self, repo: str, name: str) -> Request:
        """Record a branch deletion. Raises NotFound (no transaction, no such branch)."""
        self.data.inspect_branch(repo, name)
        return self._add(Request(RequestKind.DELETE_BRANCH, repo, name))

    def finish_commit(self, repo: str, commitish: str | None) -> Request:
        """Record finishing an open commit (resolved now). Raises NotFound,
        CommitStateError (already finished)."""
        info = self.data.inspect_commit(repo, commitish)
        if info.state != CommitState.OPEN:
            raise CommitStateError(f"commit {repo}@{info.id} is already finished")
        return self._add(Request(RequestKind.FINISH_COMMIT, repo, "", info.id))

    def _add(self, request: Request) -> Request:
        with self.catalog.write() as conn:
            row = conn.execute(select(transactions).where(transactions.c.state == "open")).first()
            if row is None:
                raise NotFound("no transaction is open")
            body = json.loads(row.requests)
            body.append(
                {
                    "kind": str(request.kind),
                    "repo": request.repo,
                    "name": request.name,
                    "commit": request.commit,
                }
            )
            conn.execute(
                update(transactions)
                .where(transactions.c.id == row.id)
                .values(requests=json.dumps(body))
            )
        return request

    def finish(self, tid: str | None = None) -> TransactionInfo:
        """Make the changes of transaction ``tid`` (default: the open one) while no job can
        start, and mark it finished. The caller then runs the pipelines (``propagate``).
        Raises NotFound (no such open transaction) and what a change raises (see the
        module doc: the changes before it stay made)."""
        info = self._open(tid)
        with self.pipelines.holding():
            try:
                for request in info.requests:
                    self._apply(request)
            finally:
                with self.catalog.write() as conn:
                    conn.execute(
                        update(transactions)
                        .where(transactions.c.id == info.id)
                        .values(state="finished")
                    )
        return self.inspect(info.id)

    def delete(self, tid: str | None = None) -> None:
        """Drop transaction ``tid`` (default: the open one) and what it recorded. Raises
        NotFound."""
        info = self._open(tid) if tid is None else self.inspect(tid)
        with self.catalog.write() as conn:
            conn.execute(delete(transactions).where(transactions.c.id == info.id))

    def _open(self, tid: str | None) -> TransactionInfo:
        info = self.active() if tid is None else self.inspect(tid)
        if info is None or info.state != "open":
            raise NotFound("no transaction is open" if tid is None else f"{tid} is finished")
        return info

    def _apply(self, request: Request) -> None:
        if request.kind == RequestKind.CREATE_BRANCH:
            self.data.create_branch(request.repo, request.name, request.commit)
        elif request.kind == RequestKind.DELETE_BRANCH:
            self.data.delete_branch(request.repo, request.name)
        else:
            self.data.finish_commit(request.repo, request.commit)
