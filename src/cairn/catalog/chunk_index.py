"""The chunk index in the catalog: chunk hash -> pack location (cairn.storage.packs).

One row per packed chunk in the ``chunks`` table, so the index is shared by
every process and machine that shares the catalog, and a lookup is one
indexed query for many hashes, whatever the number of chunks stored.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select, update

from cairn.catalog.engine import Catalog
from cairn.catalog.schema import chunks
from cairn.storage import ChunkIndex, ChunkLocation

__all__ = ["CatalogChunkIndex", "batches", "relocate_rows", "remove_rows"]

# Host parameters per statement: well under SQLite's limit (32766) and PostgreSQL's.
_BATCH = 2000


def batches(items: Collection[Any]) -> Iterator[list[Any]]:
    """``items`` in lists short enough for one statement's host parameters."""
    items = list(items)
    for i in range(0, len(items), _BATCH):
        yield items[i : i + _BATCH]


def remove_rows(conn: Connection, hashes: Collection[str]) -> None:
    """Delete the rows of these chunks in the transaction of ``conn``."""
    for batch in batches(hashes):
        conn.execute(delete(chunks).where(chunks.c.hash.in_(batch)))


def relocate_rows(conn: Connection, locations: Collection[ChunkLocation]) -> None:
    """Point existing rows at new locations in the transaction of ``conn``."""
    stmt = (
        update(chunks)
        .where(chunks.c.hash == bindparam("h"))
        .values(pack=bindparam("p"), start=bindparam("o"), length=bindparam("n"))
    )
    for batch in batches(locations):
        rows = [{"h": x.hash, "p": x.pack, "o": x.offset, "n": x.length} for x in batch]
        conn.execute(stmt, rows)


def _location(row: Any) -> ChunkLocation:
    return ChunkLocation(row.hash, row.pack, row.start, row.length, row.size)


class CatalogChunkIndex(ChunkIndex):
    """The ``chunks`` table of a catalog, as a ChunkIndex. Raises CatalogError (via the
    engine) when the database cannot be reached."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def find(self, hashes: Collection[str]) -> dict[str, ChunkLocation]:
        found: dict[str, ChunkLocation] = {}
        if not hashes:
            return found
        with self.catalog.read() as conn:
            for batch in batches(set(hashes)):
                for row in conn.execute(select(chunks).where(chunks.c.hash.in_(batch))):
                    found[row.hash] = _location(row)
        return found

    def contains(self, hashes: Collection[str]) -> set[str]:
        found: set[str] = set()
        with self.catalog.read() as conn:
            for batch in batches(set(hashes)):
                found.update(
                    conn.execute(select(chunks.c.hash).where(chunks.c.hash.in_(batch))).scalars()
                )
        return found

    def add(self, locations: Collection[ChunkLocation]) -> None:
        if not locations:
            return
        rows = [(x.hash, x.pack, x.offset, x.length, x.size) for x in locations]
        with self.catalog.write() as conn:
            # A plain DB-API executemany: tens of thousands of rows per pack, and the
            # compiled-statement path of SQLAlchemy costs more than the database here.
            if conn.dialect.name == "postgresql":
                sql = (
                    "INSERT INTO chunks (hash, pack, start, length, size)"
                    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (hash) DO NOTHING"
                )
            else:
                sql = (
                    "INSERT INTO chunks (hash, pack, start, length, size)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (hash) DO NOTHING"
                )
            for batch in batches(rows):
                conn.exec_driver_sql(sql, batch)

    def remove(self, hashes: Collection[str]) -> None:
        with self.catalog.write() as conn:
            remove_rows(conn, hashes)

    def relocate(self, locations: Collection[ChunkLocation]) -> None:
        if not locations:
            return
        with self.catalog.write() as conn:
            relocate_rows(conn, locations)

    def scan(self) -> Iterator[ChunkLocation]:
        with self.catalog.read() as conn:
            result = conn.execution_options(yield_per=10_000).execute(select(chunks))
            for row in result:
                yield _location(row)
