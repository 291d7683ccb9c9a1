"""A whole store in one file and back (pachctl's ``extract`` / ``restore``).

The file is a gzip-compressed POSIX tar, written deterministically (entries sorted, every
time 0, owner 0, mode 0644, no gzip name or time), so the same store always gives the
same bytes. Its entries:

* ``cairn-extract.json``: ``{"format": "cairn-extract", "version": 1, "tables": [...]}``;
* ``catalog/<table>.jsonl``: one JSON object per row (column -> value), rows sorted by
  primary key, for every catalog table except ``pins`` and ``leases`` (a running
  writer's protection from garbage collection, meaningless in another store);
* ``objects/<key>``: the bytes of every object (chunks, packs, tree nodes, logs,
  environment fingerprints), by key.

Not in it: the secrets file (``transform.secrets`` values stay where they are), the code
folders pipelines run in (a spec names its folder by path) and the datums' scratch space.
Restoring needs an empty store (no row in any table), the one ``cairn init`` makes.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Iterator
from typing import IO, Any

from sqlalchemy import insert, select

from cairn.catalog import Catalog
from cairn.catalog.schema import metadata
from cairn.data.errors import ArchiveError
from cairn.storage import ObjectStore

__all__ = ["ArchiveError", "extract_store", "restore_store"]

FORMAT = "cairn-extract"
VERSION = 1
_SKIPPED = frozenset({"pins", "leases"})


def _tables() -> list[Any]:
    return [t for t in metadata.sorted_tables if t.name not in _SKIPPED]


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def _rows(catalog: Catalog, table: Any) -> Iterator[dict[str, Any]]:
    order = list(table.primary_key.columns) or list(table.columns)
    with catalog.read() as conn:
        for row in conn.execute(select(table).order_by(*order)):
            yield dict(row._mapping)


def extract_store(catalog: Catalog, objects: ObjectStore, out: IO[bytes]) -> dict[str, int]:
    """Write the store (``catalog`` rows and every object of ``objects``) to ``out`` in the
    format above. Returns ``{"rows": n, "objects": n, "bytes": n}`` (object bytes)."""
    counts = {"rows": 0, "objects": 0, "bytes": 0}
    tables = _tables()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        header = {"format": FORMAT, "version": VERSION, "tables": [t.name for t in tables]}
        _add(tar, "cairn-extract.json", json.dumps(header, sort_keys=True).encode())
        for table in tables:
            lines = [json.dumps(r, sort_keys=True) + "\n" for r in _rows(catalog, table)]
            counts["rows"] += len(lines)
            _add(tar, f"catalog/{table.name}.jsonl", "".join(lines).encode())
        for key in sorted(objects.list("")):
            data = objects.get(key)
            counts["objects"] += 1
            counts["bytes"] += len(data)
            _add(tar, f"objects/{key}", data)
    return counts


def restore_store(catalog: Catalog, objects: ObjectStore, src: IO[bytes]) -> dict[str, int]:
    """Load an extract file from ``src`` into an empty store. Returns the counts as
    ``extract_store``. Raises ArchiveError (not an extract, a newer version, a store with
    rows already)."""
    tables = {t.name: t for t in _tables()}
    with catalog.read() as conn:
        used = [n for n, t in tables.items() if conn.execute(select(t).limit(1)).first()]
    if used:
        raise ArchiveError(
            f"restore needs an empty store; this one has {', '.join(sorted(used)[:3])} rows"
        )
    counts = {"rows": 0, "objects": 0, "bytes": 0}
    try:
        tar = tarfile.open(fileobj=src, mode="r:gz")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ArchiveError(f"not a cairn extract file: {exc}") from None
    with tar:
        loaded: dict[str, list[dict[str, Any]]] = {}
        header: dict[str, Any] | None = None
        for member in tar:
            if not member.isfile():
                continue
            f = tar.extractfile(member)
            data = f.read() if f is not None else b""
            if member.name == "cairn-extract.json":
                header = json.loads(data)
                if header.get("format") != FORMAT or int(header.get("version", 0)) > VERSION:
                    raise ArchiveError(f"not a cairn extract file this cairn reads: {header}")
            elif member.name.startswith("catalog/") and member.name.endswith(".jsonl"):
                name = member.name[len("catalog/") : -len(".jsonl")]
                if name not in tables:
                    raise ArchiveError(f"the extract has a table this cairn lacks: {name}")
                loaded[name] = [json.loads(line) for line in data.decode().splitlines()]
            elif member.name.startswith("objects/"):
                objects.put(member.name[len("objects/") :], data)
                counts["objects"] += 1
                counts["bytes"] += len(data)
        if header is None:
            raise ArchiveError("not a cairn extract file: no cairn-extract.json")
    with catalog.write() as conn:
        for name, table in tables.items():  # parents before children (sorted_tables)
            rows = loaded.get(name, [])
            if rows:
                conn.execute(insert(table), rows)
                counts["rows"] += len(rows)
    return counts
