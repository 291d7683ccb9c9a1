"""Opening the catalog database by URL and running transactions on it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from cairn.catalog.errors import CatalogError
from cairn.catalog.schema import metadata

__all__ = ["Catalog", "open_catalog"]


class Catalog:
    """The metadata database: an SQLAlchemy engine plus cairn's tables.

    ``write()`` opens a transaction that takes the write lock at once
    (SQLite ``BEGIN IMMEDIATE``), so two processes never both read a branch
    head and both move it; ``read()`` opens a plain one.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.url = engine.url.render_as_string(hide_password=True)
        try:
            metadata.create_all(engine)
        except SQLAlchemyError as exc:
            raise CatalogError(f"cannot open catalog {self.url}: {exc}") from exc

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A read-write transaction, committed when the block ends without error."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only view (rolled back at the end)."""
        with self.engine.connect() as conn:
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()


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
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def open_catalog(url: str) -> Catalog:
    """Open (creating tables if needed) the catalog at ``url``.

    ``sqlite:///path/to/catalog.db`` is the embedded default and
    ``sqlite://`` an in-memory database for tests. Other SQLAlchemy URLs
    (``postgresql://…``) are passed to SQLAlchemy as they are. Raises CatalogError.
    """
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except (SQLAlchemyError, ValueError):
        shown = "<unparseable URL>"
    try:
        if url.startswith("sqlite"):
            return Catalog(_sqlite_engine(url))
        return Catalog(create_engine(url, pool_pre_ping=True))
    except (SQLAlchemyError, ImportError) as exc:
        raise CatalogError(f"cannot open catalog {shown}: {type(exc).__name__}") from exc
