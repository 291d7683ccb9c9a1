"""catalog: the metadata database (SQLite embedded, PostgreSQL at scale).

Owns the table definitions of every layer above (``schema.py``) and how to
open them by URL (``engine.py``). Holds small rows only: repos, branches,
commit headers and their provenance, pipelines and their spec versions, jobs
and datums, the index of packed chunks (``chunk_index.py``), and the pins and
leases by which writers and garbage collection agree on what may be deleted
(``pins.py``), and tokens and role bindings (``auth.py``; events name their actor, set
per request through ``actor.py``). File contents and trees live in the object store. It
also holds the named locks that every process sharing the catalog sees (``locks.py``,
``Catalog.lock``): a PostgreSQL advisory lock, so runners on several machines take
turns; an ``flock`` beside a SQLite file.

Invariants
    * Every change to a branch head or a commit's tree happens in one write
      transaction, guarded by compare-and-set on the old value, so concurrent
      writers never lose an update and a crash never shows half a commit.
    * SQLite write transactions start with ``BEGIN IMMEDIATE``; WAL mode lets
      readers proceed while one process writes. PostgreSQL write transactions
      (psycopg 3, READ COMMITTED) start with ``pg_advisory_xact_lock`` on one
      key: the same one-writer-at-a-time rule, readers never blocked.
"""

from typing import TYPE_CHECKING

from cairn._lazy import lazy_exports

if TYPE_CHECKING:
    from cairn.catalog import schema
    from cairn.catalog.chunk_index import CatalogChunkIndex
    from cairn.catalog.engine import Catalog, open_catalog
    from cairn.catalog.errors import CatalogError
    from cairn.catalog.pins import CatalogPins

# Each name is imported on first use: the error classes (what a remote client raises)
# load without SQLAlchemy and the engine.
_HOMES = {
    "Catalog": "cairn.catalog.engine",
    "CatalogChunkIndex": "cairn.catalog.chunk_index",
    "CatalogError": "cairn.catalog.errors",
    "CatalogPins": "cairn.catalog.pins",
    "open_catalog": "cairn.catalog.engine",
}

__all__ = [
    "Catalog",
    "CatalogChunkIndex",
    "CatalogError",
    "CatalogPins",
    "open_catalog",
    "schema",
]


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals(), submodules=("schema",))
