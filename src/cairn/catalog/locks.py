"""Named locks that every process sharing a catalog sees: ``Catalog.lock(name)``.

Work that must run in one place at a time among all the processes that share a catalog
(``propagate``: two runners must never both run one job) takes such a lock. A lock file
in a store folder is not enough: processes on other machines have other folders.

Backends, chosen by the catalog's URL:

* PostgreSQL: a session-level ``pg_advisory_lock`` on a connection kept for the block
  (in autocommit, so no transaction stays open while the block runs), released by
  ``pg_advisory_unlock`` at its end. The key is :func:`lock_key`, a hash of the name
  alone, so every machine computes the same one; advisory locks are per database, so
  two catalogs on one server never block each other. PostgreSQL drops a session's locks
  when its connection closes, so a holder that dies (even by SIGKILL) releases the lock
  as soon as the server sees the connection close. A machine that vanishes without
  closing its TCP connection (power loss, a cut network) holds the lock until the
  server notices: set the server's ``tcp_keepalives_idle`` (or, PostgreSQL 14 and
  later, ``client_connection_check_interval``) to bound that.
* SQLite file: an ``flock`` on ``<database>-locks/<name>`` beside the database file.
  SQLite is one machine by nature (its own locks need a local file system), and the
  kernel drops an ``flock`` when its holder dies.
* SQLite in memory: a lock in this process, as the database lives only here.

Locks are not re-entrant: a second ``lock(name)`` in the same process waits for the
first, as one on another machine does. ``lock(name, wait=False)`` does not wait: its
block runs either way, and the value it yields says whether the lock is held (a runner
that finds a spout's lock taken leaves that spout to the runner holding it).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

from sqlalchemy import Engine, text

__all__ = ["FileLocks", "Locks", "PostgresLocks", "ProcessLocks", "check_name", "lock_key"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")

_PG_LOCK = text("SELECT pg_advisory_lock(:key)")
_PG_UNLOCK = text("SELECT pg_advisory_unlock(:key)")
_PG_TRY_LOCK = text("SELECT pg_try_advisory_lock(:key)")


def check_name(name: str) -> str:
    """``name`` if it is a lock name: 1 to 100 letters, digits, ``_``, ``.`` or ``-``, not
    starting with ``.`` or ``-`` (it names a file on SQLite). Raises ValueError."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"not a lock name: {name!r} (letters, digits, '_', '.', '-')")
    return name


def lock_key(name: str) -> int:
    """The PostgreSQL advisory lock key of ``name``: the first 8 bytes of its BLAKE2b
    hash (personalized ``cairn.lock``), read as a signed big-endian 64-bit integer, the
    type ``pg_advisory_lock(bigint)`` takes. The same on every machine and every run."""
    digest = hashlib.blake2b(name.encode(), digest_size=8, person=b"cairn.lock").digest()
    return int.from_bytes(digest, "big", signed=True)


class Locks(Protocol):
    def hold(self, name: str, wait: bool = True) -> AbstractContextManager[bool]:
        """A context manager holding lock ``name`` (a checked name) for its block; it
        yields True, or with ``wait=False`` False when another holder has it."""
        ...


class PostgresLocks:
    """Session-level advisory locks, one connection of ``engine``'s pool per held lock."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def hold(self, name: str, wait: bool = True) -> Iterator[bool]:
        key = lock_key(name)
        conn = self.engine.connect()
        try:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            if wait:
                conn.execute(_PG_LOCK, {"key": key})
            elif not conn.execute(_PG_TRY_LOCK, {"key": key}).scalar():
                conn.close()
                yield False
                return
        except BaseException:
            # Interrupted while waiting (Ctrl-C) or a lost connection: the lock may have
            # been granted all the same, so close the session, which drops it.
            conn.invalidate()
            conn.close()
            raise
        try:
            yield True
        finally:
            try:
                conn.execute(_PG_UNLOCK, {"key": key})
            except BaseException:
                conn.invalidate()
                raise
            finally:
                conn.close()


class FileLocks:
    """``flock`` on one file per name in ``folder`` (created on first use)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @contextmanager
    def hold(self, name: str, wait: bool = True) -> Iterator[bool]:
        self.folder.mkdir(parents=True, exist_ok=True)
        # Read-only is enough for flock, so a store shared by several OS users works
        # with the usual umask; the descriptor is not inherited by transforms (PEP 446).
        fd = os.open(self.folder / name, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                held = False
            else:
                held = True
            yield held
        finally:
            os.close(fd)  # closing the only descriptor of the file releases the flock


class ProcessLocks:
    """Locks of this process, for a catalog only this process can open."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    @contextmanager
    def hold(self, name: str, wait: bool = True) -> Iterator[bool]:
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        if not lock.acquire(blocking=wait):
            yield False
            return
        try:
            yield True
        finally:
            lock.release()
