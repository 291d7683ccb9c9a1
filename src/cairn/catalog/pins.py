"""Pins, leases and epochs: how writers and garbage collection agree on what may go.

The race (issue 20): a writer that finds a chunk or tree node stored already does
not write it; if no commit reaches that object, a collection may delete it between
the writer's check and its commit, and the commit then names a missing object.
Timing rules (git's grace period) narrow that window; this closes it.

State, in three tables (cairn.catalog.schema):

* ``gc_state.epoch``, a counter that only grows: each collection moves it when it
  starts, and each lease moves it when it closes;
* ``leases``: who is at work, since which epoch. A writer opens one before it
  stores or reuses anything and closes it after its commit (or its failure); a
  collection holds one while it runs;
* ``pins``: object keys that writers pinned, each with the epoch of its last pin.

Protocol. Every step is one catalog write transaction, so all of them are ordered
by the catalog's one write lock.

* A writer pins a key (cairn.storage.pins) before it checks whether the object is
  stored and before it writes it, and it pins only while its lease is open.
* A collection, when it starts, moves the epoch to ``E`` and takes as its
  ``floor`` the least of ``E`` and the epochs of the open leases. It then marks
  what the commits reach, and deletes an unmarked object only inside a write
  transaction that finds no pin of its key at or above the floor, deleting the
  object (or, for packed chunks, their index rows) before that transaction ends.

Why no commit loses an object. Take a commit that names object X, made by a writer
with lease L, and a collection that deletes X. If the commit was in the catalog
when the mark read it, X is marked and kept. Otherwise L was still open when the
collection started, so ``L.epoch >= floor``, or opened later, so ``L.epoch >= E >=
floor``; the writer pinned X after L opened, so that pin's epoch is at least the
floor. Either the pin came before the deleting transaction, which then sees it and
keeps X, or after: X was gone before the writer checked, so the writer wrote it
again (for a packed chunk: found no index row and packed it again). Objects a
writer reuses without pinning (the unchanged parts of the tree it builds on, the
chunks of a file it appends to) belong to its base commit, which the commit's
compare-and-set proves still current; a base that appeared after the mark began
was built the same way, by a writer under a lease.

Cleanup. A pin below the least epoch of every open lease (collections' included)
can matter to no collection, now or later; closing a lease moves the epoch and
drops such pins, so the table holds about what the writers at work pinned, not
everything ever written. A lease not renewed for ``LEASE_TIMEOUT`` seconds (a
writer that died without closing it) is dropped then too; a live writer renews
its leases whenever it pins, at most once a minute.

Cost per put: one transaction to open the lease and one to close it, one per batch
of pins (a flush of the pack buffer, a tree write, a loose chunk), and the pins'
rows, which live until the lease closes.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, delete, func, insert, select, union_all, update

from cairn.catalog.chunk_index import CatalogChunkIndex, batches, relocate_rows, remove_rows
from cairn.catalog.engine import Catalog
from cairn.catalog.schema import gc_state, leases, pins
from cairn.storage import ChunkIndex, ChunkLocation
from cairn.storage.pins import Pins

__all__ = ["LEASE_TIMEOUT", "CatalogPins", "Guard", "Sweep"]

LEASE_TIMEOUT = 24 * 3600.0
_RENEW_EVERY = 60.0


# The current epoch as a scalar subquery (0 before the first lease closes).
_CURRENT = select(func.coalesce(func.max(gc_state.c.epoch), 0)).scalar_subquery()
# The least epoch that any open lease, or the current epoch, names: pins below it are
# honoured by no collection, now or later.
_EPOCHS = union_all(
    select(gc_state.c.epoch.label("e")).where(gc_state.c.id == 0),
    select(leases.c.epoch.label("e")),
).subquery()
_FLOOR = select(func.coalesce(func.min(_EPOCHS.c.e), 0))
# Statements built once: building them costs more than SQLite takes to run them.
_ADVANCE = update(gc_state).where(gc_state.c.id == 0).values(epoch=gc_state.c.epoch + 1)
_FIRST = insert(gc_state).values(id=0, epoch=1)
_DROP_PINS = delete(pins).where(pins.c.epoch < _FLOOR.scalar_subquery())
_OPEN = insert(leases).values(epoch=_CURRENT)
_CLOSE = delete(leases).where(leases.c.id == bindparam("lease"))
_EXPIRE = delete(leases).where(leases.c.seen < bindparam("before"))


def _epoch(conn: Connection) -> int:
    return int(conn.execute(select(_CURRENT)).scalar_one())


def _advance(conn: Connection) -> None:
    if conn.execute(_ADVANCE).rowcount != 1:  # a store's first: the row does not exist yet
        conn.execute(_FIRST)


def _floor(conn: Connection) -> int:
    return int(conn.execute(_FLOOR).scalar_one())


@dataclass(frozen=True, slots=True)
class Sweep:
    """A collection's standing: its ``lease`` (None for a dry run, which writes nothing),
    the ``floor`` epoch at or above which pins are honoured, and how many dead leases
    it dropped (``expired``)."""

    lease: str | None
    floor: int
    expired: int


class Guard:
    """A write transaction of a collection: what it deletes inside one is ordered against
    every pin (see the module doc). ``conn`` is the transaction's connection."""

    def __init__(self, conn: Connection, floor: int) -> None:
        self.conn = conn
        self.floor = floor

    def pinned(self, keys: Collection[str]) -> set[str]:
        """Those ``keys`` pinned at or above the floor."""
        return _pinned(self.conn, keys, self.floor)

    def remove_rows(self, index: ChunkIndex, hashes: Collection[str]) -> None:
        """Remove chunk index rows inside this transaction (the catalog's index) or while
        it holds the lock (any other index)."""
        if isinstance(index, CatalogChunkIndex):
            remove_rows(self.conn, hashes)
        else:
            index.remove(hashes)

    def relocate_rows(self, index: ChunkIndex, locations: Collection[ChunkLocation]) -> None:
        """Point chunk index rows at new locations, as ``remove_rows`` does."""
        if isinstance(index, CatalogChunkIndex):
            relocate_rows(self.conn, locations)
        else:
            index.relocate(locations)


def _pinned(conn: Connection, keys: Collection[str], floor: int) -> set[str]:
    found: set[str] = set()
    for batch in batches(set(keys)):
        found.update(
            conn.execute(
                select(pins.c.key).where(pins.c.key.in_(batch), pins.c.epoch >= floor)
            ).scalars()
        )
    return found


class CatalogPins(Pins):
    """Pins and leases in a catalog (see the module doc). Thread-safe; one per process
    is enough, and each process renews only the leases it opened. Raises CatalogError
    (via the engine) when the database cannot be reached."""

    def __init__(self, catalog: Catalog, *, lease_timeout: float = LEASE_TIMEOUT) -> None:
        self.catalog = catalog
        self.lease_timeout = lease_timeout
        self._mine: set[str] = set()
        self._renewed = 0.0
        self._lock = threading.Lock()

    # -- writers ---------------------------------------------------------------------
    def pin(self, keys: Collection[str]) -> None:
        if not keys:
            return
        now = time.time()
        with self._lock:
            renew = list(self._mine) if now - self._renewed > _RENEW_EVERY else []
            if renew:
                self._renewed = now
        with self.catalog.write() as conn:
            mark = "%s" if conn.dialect.name == "postgresql" else "?"
            # A plain executemany, as the chunk index's inserts: a flush pins tens of
            # thousands of keys. A pin already at the current epoch is left as it is.
            sql = (
                f"INSERT INTO pins (key, epoch) VALUES ({mark},"
                " (SELECT coalesce(max(epoch), 0) FROM gc_state))"
                " ON CONFLICT (key) DO UPDATE SET epoch = excluded.epoch"
                " WHERE pins.epoch < excluded.epoch"
            )
            for batch in batches(set(keys)):
                conn.exec_driver_sql(sql, [(key,) for key in batch])
            if renew:
                conn.execute(update(leases).where(leases.c.id.in_(renew)).values(seen=now))

    @contextmanager
    def lease(self) -> Iterator[str]:
        """Hold a writer's lease for the block (yields its id): open it before storing
        or reusing anything, leave the block after the commit."""
        lease_id = self._open("write")
        try:
            yield lease_id
        finally:
            self._close(lease_id)

    def _open(self, kind: str) -> str:
        lease_id = uuid.uuid4().hex
        now = time.time()
        with self.catalog.write() as conn:
            conn.execute(_OPEN, {"id": lease_id, "kind": kind, "opened": now, "seen": now})
        with self._lock:
            self._mine.add(lease_id)
        return lease_id

    def _close(self, lease_id: str) -> None:
        with self._lock:
            self._mine.discard(lease_id)
        with self.catalog.write() as conn:
            conn.execute(_CLOSE, {"lease": lease_id})
            self._expire(conn, time.time())
            _advance(conn)
            conn.execute(_DROP_PINS)

    def _expire(self, conn: Connection, now: float) -> int:
        gone = conn.execute(_EXPIRE, {"before": now - self.lease_timeout})
        return int(gone.rowcount or 0)

    # -- collections -----------------------------------------------------------------
    def begin_sweep(self, *, dry_run: bool = False) -> Sweep:
        """Start a collection: move the epoch, take the floor and (unless ``dry_run``) a
        lease at it. Call ``end_sweep`` when the collection ends, however it ends."""
        now = time.time()
        if dry_run:
            with self.catalog.read() as conn:
                alive = select(func.min(leases.c.epoch)).where(
                    leases.c.seen >= now - self.lease_timeout
                )
                low = conn.execute(alive).scalar()
                epoch = _epoch(conn) + 1
            return Sweep(None, epoch if low is None else min(epoch, int(low)), 0)
        lease_id = uuid.uuid4().hex
        with self.catalog.write() as conn:
            expired = self._expire(conn, now)
            _advance(conn)
            floor = _floor(conn)
            conn.execute(
                insert(leases).values(id=lease_id, kind="gc", epoch=floor, opened=now, seen=now)
            )
        with self._lock:
            self._mine.add(lease_id)
        return Sweep(lease_id, floor, expired)

    def end_sweep(self, sweep: Sweep) -> None:
        """Close the collection's lease and drop the pins no one needs any more."""
        if sweep.lease is not None:
            self._close(sweep.lease)

    @contextmanager
    def guard(self, sweep: Sweep) -> Iterator[Guard]:
        """A write transaction to delete in (see Guard). Keep it short: writers wait."""
        with self.catalog.write() as conn:
            yield Guard(conn, sweep.floor)

    def pinned(self, keys: Collection[str], sweep: Sweep) -> set[str]:
        """Those ``keys`` pinned at or above the sweep's floor, read without the lock
        (what a dry run reports)."""
        with self.catalog.read() as conn:
            return _pinned(conn, keys, sweep.floor)
