"""Opening the catalog database by URL and running transactions on it.

Two backends: SQLite (embedded) and PostgreSQL through psycopg 3 (the ``postgres``
extra). Both serialize writers the same way: SQLite's ``BEGIN IMMEDIATE`` takes the
database's write lock when a write transaction starts; on PostgreSQL every write
transaction starts with ``pg_advisory_xact_lock`` on one key, held until commit or
rollback. Readers never wait for it (MVCC).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Table,
    TextClause,
    create_engine,
    event,
    inspect,
    make_url,
    text,
)
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import StaticPool
from sqlalchemy.schema import CreateColumn

from cairn.catalog.errors import CatalogError
from cairn.catalog.locks import FileLocks, Locks, PostgresLocks, ProcessLocks, check_name
from cairn.catalog.schema import metadata

__all__ = ["Catalog", "open_catalog"]

POSTGRES_HINT = "pip install 'cairn[postgres]'"

# The key of the one advisory lock that every write transaction on PostgreSQL takes
# (any constant; this is b"cairnwri" read as a signed 64-bit integer).
_PG_WRITE_LOCK_KEY = int.from_bytes(b"cairnwri", "big", signed=True)
_PG_WRITE_LOCK = text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=_PG_WRITE_LOCK_KEY)


class Catalog:
    """The metadata database: an SQLAlchemy engine plus cairn's tables.

    ``write()`` opens a transaction that takes the write lock at once
    (SQLite ``BEGIN IMMEDIATE``, PostgreSQL's advisory lock; see the module doc),
    so two processes never both read a branch head and both move it; ``read()``
    opens a plain one. ``lock(name)`` holds a named lock that every process sharing the
    catalog sees (cairn.catalog.locks).
    """

    def __init__(self, engine: Engine) -> None:
        """Create cairn's tables if they are missing, and the columns added to them since
        an older cairn created them (see ``_add_missing_columns``). Raises CatalogError."""
        self.engine = engine
        self.url = engine.url.render_as_string(hide_password=True)
        # PostgreSQL's advisory lock; SQLite's BEGIN IMMEDIATE comes from the "begin" event.
        self._write_lock: TextClause | None = (
            _PG_WRITE_LOCK if engine.dialect.name == "postgresql" else None
        )
        self._locks = _locks_for(engine)
        try:
            metadata.create_all(engine)
            self._add_missing_columns()
        except SQLAlchemyError as exc:
            reason = _reason(exc, engine.url)
            raise CatalogError(f"cannot open catalog {self.url}: {reason}") from None

    def _missing_columns(self, conn: Connection) -> list[tuple[Table, Column[Any]]]:
        added = [(t, c) for t in metadata.sorted_tables for c in t.columns if c.info.get("added")]
        found = inspect(conn)
        have = {t.name: {c["name"] for c in found.get_columns(t.name)} for t, _ in added}
        return [(t, c) for t, c in added if c.name not in have[t.name]]

    def _add_missing_columns(self) -> None:
        """The schema's migration path: ``create_all`` makes missing tables only, so a
        column added to a table after catalogs were created with it (marked
        ``info={"added": True}`` in ``schema.py``, nullable or with a server default) is
        added here to a catalog an older cairn created, its rows taking the default. Only
        marked columns are looked at, so opening a catalog stays one cheap query. Checked
        without the write lock, then added under it after checking again, so two processes
        opening one old catalog add each column once."""
        with self.read() as conn:
            if not self._missing_columns(conn):
                return
        with self.write() as conn:
            for table, column in self._missing_columns(conn):
                table_name = conn.dialect.identifier_preparer.format_table(table)
                spec = CreateColumn(column).compile(dialect=conn.dialect)
                conn.execute(text(f"ALTER TABLE {table_name} ADD COLUMN {spec}"))

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A read-write transaction, committed when the block ends without error; it
        holds the catalog's write lock from its first statement to its end."""
        with self.engine.begin() as conn:
            if self._write_lock is not None:
                conn.execute(self._write_lock)
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only view (rolled back at the end). On SQLite it takes no write lock, so a
        long streamed read (fsck, gc, an index scan) never blocks writers."""
        with self.engine.connect() as conn:
            conn.execution_options(cairn_read_only=True)
            yield conn

    def lock(self, name: str, *, wait: bool = True) -> AbstractContextManager[bool]:
        """Hold the lock ``name`` for a ``with`` block, waiting as long as another process
        (on any machine, for PostgreSQL) or thread holds it; released when the block ends
        or the holding process dies. The block gets True; with ``wait=False`` it does not
        wait, and gets False when another holder has the lock. See cairn.catalog.locks for
        each backend. Raises ValueError for a name that is not 1 to 100 of
        ``[A-Za-z0-9_.-]`` starting with a letter or digit, CatalogError for a dialect
        without such locks (neither SQLite nor PostgreSQL), and SQLAlchemy's errors for a
        database that cannot be reached."""
        check_name(name)
        if self._locks is None:
            raise CatalogError(
                f"catalog {self.url}: no lock shared between processes on "
                f"{self.engine.dialect.name}; use SQLite or PostgreSQL"
            )
        return self._locks.hold(name, wait)

    def dispose(self) -> None:
        self.engine.dispose()


def _locks_for(engine: Engine) -> Locks | None:
    """The named locks of the catalog behind ``engine`` (cairn.catalog.locks)."""
    if engine.dialect.name == "postgresql":
        return PostgresLocks(engine)
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if database in (None, "", ":memory:"):
        return ProcessLocks()
    db = Path(database).resolve()
    return FileLocks(db.with_name(db.name + "-locks"))


def _sqlite_engine(url: str) -> Engine:
    in_memory = make_url(url).database in (None, "", ":memory:")
    engine = create_engine(
        url,
        connect_args={"timeout": 60, "check_same_thread": False},
        # One shared connection, or every thread would see its own empty in-memory database.
        **({"poolclass": StaticPool} if in_memory else {}),
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy issue BEGIN itself (pysqlite's implicit BEGIN is deferred).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")  # in-memory databases keep "memory"; fine
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers lock at BEGIN (so two never both read a head and move it); readers see a
        # snapshot (WAL) and take no lock.
        read_only = conn.get_execution_options().get("cairn_read_only", False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _postgres_engine(url: URL) -> Engine:
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.drivername == "postgresql+psycopg" and importlib.util.find_spec("psycopg") is None:
        raise CatalogError(f"a PostgreSQL catalog needs psycopg 3: {POSTGRES_HINT}")
    connect_args = {} if "connect_timeout" in url.query else {"connect_timeout": 10}
    return create_engine(
        url,
        pool_pre_ping=True,
        # The write lock relies on READ COMMITTED: each statement after the lock sees what
        # the writer before committed. REPEATABLE READ would keep the snapshot taken before
        # the lock was granted, and two writers could both move one branch head.
        isolation_level="READ COMMITTED",
        connect_args=connect_args,
    )


def _reason(exc: BaseException, url: URL | None) -> str:
    """One line saying why, without the URL's password (drivers may echo the DSN)."""
    orig = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    reason = f"{type(orig).__name__}: {lines[0]}" if lines else type(orig).__name__
    if url is not None and url.password:
        reason = reason.replace(str(url.password), "***")
    return reason


def open_catalog(url: str) -> Catalog:
    """Open (creating tables if needed) the catalog at ``url``.

    ``sqlite:///path/to/catalog.db`` is the embedded default and ``sqlite://`` an
    in-memory database for tests. ``postgresql://user:password@host:port/database``
    (or ``postgres://``) opens PostgreSQL through psycopg 3 (the ``postgres`` extra);
    other SQLAlchemy URLs are passed to SQLAlchemy as they are. Raises CatalogError
    for an unknown dialect, a missing driver or a database that cannot be reached,
    in one line that never shows the password.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise CatalogError("cannot open catalog: not a database URL (<unparseable URL>)") from None
    shown = parsed.render_as_string(hide_password=True)
    try:
        if parsed.drivername.startswith("sqlite"):
            return Catalog(_sqlite_engine(url))
        if parsed.drivername.split("+")[0] in ("postgresql", "postgres"):
            return Catalog(_postgres_engine(parsed))
        return Catalog(create_engine(parsed, pool_pre_ping=True))
    except (SQLAlchemyError, ImportError) as exc:
        raise CatalogError(f"cannot open catalog {shown}: {_reason(exc, parsed)}") from None
