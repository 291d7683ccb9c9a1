"""fsck: verify every hash and every reference of a store, and change nothing.

Three passes, each streaming (one pack, one object or one tree node in memory at a
time, plus the sets below):

1. packs: each pack's bytes hash to its name, its footer parses, every frame
   it lists decodes to bytes that hash to the chunk's name and have its size, and
   every index row that points at the pack agrees with the footer;
   then one scan of the chunk index: rows pointing at packs that do not exist,
   and rows the footers do not account for (re-checked pack by pack);
2. loose chunks: each decodes and hashes to its name;
3. commits: from every commit's root, every tree node loads and matches its
   hash, every chunk a file refers to can be read (loose, or through the index
   from its pack) and hashes to its name, and every file's chunks hash to its
   content hash. Shared sub-trees and contents are checked once.

Problems found in passes 1 and 2 are tied to the commits that reach the damaged
object in pass 3. Memory: the digests of the unique tree nodes and contents seen
(about 100 bytes each), one counter per pack, and the problems found.

Problem kinds: ``missing-tree``, ``corrupt-tree``, ``missing-chunk``,
``corrupt-chunk``, ``corrupt-content``, ``missing-pack``, ``corrupt-pack``,
``bad-index-row``. fsck reads a store that others may be writing; a pack written
while it runs can show as index rows it has not accounted for, so run it on a
quiet store to be sure.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import blake3

from cairn.data.inventory import CHUNK_PREFIX, PACK_PREFIX, decode_frame, digest_of, roots
from cairn.data.tree import DirEntry, TreeStore
from cairn.storage import ChunkLocation, ChunkRef, Content, CorruptObject, ObjectNotFound
from cairn.storage.packs import read_pack_footer

if TYPE_CHECKING:
    from cairn.data.store import DataStore

__all__ = ["PROBLEM_KINDS", "FsckReport", "Problem", "check_store"]

PROBLEM_KINDS = (
    "missing-tree",
    "corrupt-tree",
    "missing-chunk",
    "corrupt-chunk",
    "corrupt-content",
    "missing-pack",
    "corrupt-pack",
    "bad-index-row",
)
_NONE: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong: its ``kind`` (PROBLEM_KINDS), the ``object`` (an object key, or
    ``content <hash>``), a ``detail`` for people, and the ``commits`` (``repo@id``) that
    reach it."""

    kind: str
    object: str
    detail: str
    commits: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "object": self.object,
            "detail": self.detail,
            "commits": list(self.commits),
        }


@dataclass(slots=True)
class FsckReport:
    """The problems found (empty when the store is sound) and what was checked: counts
    of objects and rows, ``bytes_read`` and ``seconds``."""

    problems: list[Problem] = field(default_factory=list)
    commits: int = 0
    tree_nodes: int = 0
    contents: int = 0
    chunks_read: int = 0
    loose_chunks: int = 0
    packs: int = 0
    index_rows: int = 0
    bytes_read: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "problems": [p.to_json() for p in self.problems],
            "checked": {
                "commits": self.commits,
                "tree_nodes": self.tree_nodes,
                "contents": self.contents,
                "chunks_read": self.chunks_read,
                "loose_chunks": self.loose_chunks,
                "packs": self.packs,
                "index_rows": self.index_rows,
                "bytes_read": self.bytes_read,
            },
            "seconds": round(self.seconds, 3),
        }


def chunk_name(digest: str) -> str:
    return f"{CHUNK_PREFIX}{digest[:2]}/{digest}"


class _Problems:
    """Problems by (kind, object), each with the set of commits that reach it."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], int] = {}
        self._rows: list[tuple[str, str, str, set[str]]] = []

    def add(self, kind: str, obj: str, detail: str) -> int:
        key = (kind, obj)
        found = self._ids.get(key)
        if found is None:
            found = self._ids[key] = len(self._rows)
            self._rows.append((kind, obj, detail, set()))
        return found

    def find(self, kind: str, obj: str) -> int | None:
        return self._ids.get((kind, obj))

    def reach(self, ids: frozenset[int], commit: str) -> None:
        for i in ids:
            self._rows[i][3].add(commit)

    def listing(self) -> list[Problem]:
        order = {kind: n for n, kind in enumerate(PROBLEM_KINDS)}
        rows = sorted(self._rows, key=lambda r: (order.get(r[0], len(order)), r[1]))
        return [Problem(kind, obj, detail, tuple(sorted(c))) for kind, obj, detail, c in rows]


class _Checker:
    def __init__(self, data: DataStore) -> None:
        self.data = data
        self.objects = data.chunks.objects
        self.index = data.chunks.index
        self.trees = TreeStore(self.objects, cache_entries=1)
        self.problems = _Problems()
        self.report = FsckReport()
        self.packs: set[str] = set()
        self.rows_agreeing: dict[str, int] = {}
        self.unreadable_footers: set[str] = set()
        self.nodes: dict[bytes, frozenset[int]] = {}
        self.contents: dict[bytes, frozenset[int]] = {}

    def run(self) -> FsckReport:
        started = time.monotonic()
        self._check_packs()
        self._check_index()
        self._check_loose()
        self._check_commits()
        self.report.problems = self.problems.listing()
        self.report.seconds = time.monotonic() - started
        return self.report

    # -- pass 1: packs and the index -----------------------------------------------
    def _check_packs(self) -> None:
        for key in self.objects.list(PACK_PREFIX):
            try:
                body = self.objects.get(key)
            except ObjectNotFound:
                continue  # deleted while we listed
            self.packs.add(key)
            self.report.packs += 1
            self.report.bytes_read += len(body)
            if blake3.blake3(body).hexdigest() != digest_of(key):
                self.problems.add("corrupt-pack", key, "the pack's bytes do not match its name")
            try:
                footer = read_pack_footer(key, body)
            except CorruptObject as exc:
                self.unreadable_footers.add(key)
                self.problems.add("corrupt-pack", key, str(exc))
                continue
            for loc in footer:
                self._check_frame(key, body, loc)
            self.rows_agreeing[key] = self._check_rows(key, footer)

    def _check_frame(self, key: str, body: bytes, loc: ChunkLocation) -> None:
        frame = body[loc.offset : loc.offset + loc.length]
        where = f"its frame in pack {key} at byte {loc.offset}"
        try:
            raw = decode_frame(frame, f"chunk {loc.hash} in pack {key}")
        except CorruptObject as exc:
            self.problems.add("corrupt-chunk", chunk_name(loc.hash), str(exc))
            return
        if len(raw) != loc.size or blake3.blake3(raw).hexdigest() != loc.hash:
            self.problems.add(
                "corrupt-chunk", chunk_name(loc.hash), f"{where} does not match the chunk's hash"
            )

    def _check_rows(self, key: str, footer: list[ChunkLocation]) -> int:
        """Index rows that point at this pack and agree with its footer; the others are
        problems."""
        agreeing = 0
        for start in range(0, len(footer), 2000):
            part = footer[start : start + 2000]
            rows = self.index.find([loc.hash for loc in part])
            for loc in part:
                row = rows.get(loc.hash)
                if row is None or row.pack != key:
                    continue
                if (row.offset, row.length, row.size) == (loc.offset, loc.length, loc.size):
                    agreeing += 1
                else:
                    self.problems.add(
                        "bad-index-row",
                        chunk_name(loc.hash),
                        f"the chunk index says pack {key} bytes {row.offset}+{row.length} "
                        f"(size {row.size}); the pack's footer says {loc.offset}+{loc.length} "
                        f"(size {loc.size})",
                    )
        return agreeing

    def _check_index(self) -> None:
        per_pack: Counter[str] = Counter()
        missing: Counter[str] = Counter()
        for loc in self.index.scan():
            self.report.index_rows += 1
            if loc.pack in self.packs:
                per_pack[loc.pack] += 1
            elif loc.pack in missing or not self.objects.exists(loc.pack):
                missing[loc.pack] += 1
        for pack, n in missing.items():
            self.problems.add("missing-pack", pack, f"{n} chunk index row(s) point at it")
        suspects = {
            pack
            for pack, n in per_pack.items()
            if pack not in self.unreadable_footers and n > self.rows_agreeing.get(pack, 0)
        }
        if suspects:
            self._recheck_rows(suspects)

    def _recheck_rows(self, suspects: set[str]) -> None:
        """Rows pointing at a pack whose footer does not list the chunk (rare: damage)."""
        listed: dict[str, set[str]] = {}
        for pack in suspects:
            try:
                listed[pack] = {loc.hash for loc in read_pack_footer(pack, self.objects.get(pack))}
            except (ObjectNotFound, CorruptObject):
                continue
        for loc in self.index.scan():
            if loc.pack in listed and loc.hash not in listed[loc.pack]:
                self.problems.add(
                    "bad-index-row",
                    chunk_name(loc.hash),
                    f"the chunk index points at pack {loc.pack}, whose footer does not list it",
                )

    # -- pass 2: loose chunks --------------------------------------------------------
    def _check_loose(self) -> None:
        for key in self.objects.list(CHUNK_PREFIX):
            try:
                blob = self.objects.get(key)
            except ObjectNotFound:
                continue
            self.report.loose_chunks += 1
            self.report.bytes_read += len(blob)
            try:
                raw = decode_frame(blob, f"loose chunk {key}")
            except CorruptObject as exc:
                self.problems.add("corrupt-chunk", key, str(exc))
                continue
            if blake3.blake3(raw).hexdigest() != digest_of(key):
                self.problems.add("corrupt-chunk", key, "the loose object does not match its name")

    # -- pass 3: commits -------------------------------------------------------------
    def _check_commits(self) -> None:
        for root in roots(self.data.catalog):
            self.report.commits += 1
            found = self._node(root.tree)
            if found:
                self.problems.reach(found, f"{root.repo}@{root.id}")

    def _node(self, node_hash: str) -> frozenset[int]:
        key = _raw(node_hash)
        if key in self.nodes:
            return self.nodes[key]
        self.nodes[key] = _NONE  # a cycle cannot happen (hashes), but never loop on one
        self.report.tree_nodes += 1
        name = f"trees/{node_hash[:2]}/{node_hash}"
        try:
            node = self.trees.load(node_hash)
        except ObjectNotFound:
            found = frozenset({self.problems.add("missing-tree", name, "the tree node is missing")})
        except CorruptObject as exc:
            found = frozenset({self.problems.add("corrupt-tree", name, str(exc))})
        else:
            ids: set[int] = set()
            # One index query for the chunks of all the node's files, not one per file: a
            # folder of thousands of small files was thousands of catalog round trips.
            wanted = {
                r.hash
                for e in node.values()
                if not isinstance(e, DirEntry)
                for r in e.content.chunks
            }
            where = self.index.find(wanted)
            for entry in node.values():
                if isinstance(entry, DirEntry):
                    ids |= self._node(entry.hash)
                else:
                    ids |= self._content(entry.content, where)
            found = frozenset(ids)
        # Healthy nodes keep the shared empty set: the memory per node is the key.
        self.nodes[key] = found or _NONE
        return found

    def _content(self, content: Content, where: dict[str, ChunkLocation]) -> frozenset[int]:
        """The problems of one file's content; ``where``: the index rows of its chunks
        (a chunk absent from it is not in the index)."""
        ident = blake3.blake3(
            content.hash.encode() + b"".join(r.hash.encode() for r in content.chunks)
        ).digest()
        memo = self.contents.get(ident)
        if memo is not None:
            return memo
        self.report.contents += 1
        ids: set[int] = set()
        whole = blake3.blake3()
        size = 0
        readable = True
        for data, problem in self._read(content.chunks, where):
            if problem is not None:
                ids.add(problem)
            if data is None:
                readable = False
            elif readable:
                whole.update(data)
                size += len(data)
        if readable and not ids and (whole.hexdigest(), size) != (content.hash, content.size):
            ids.add(
                self.problems.add(
                    "corrupt-content",
                    f"content {content.hash}",
                    f"its {len(content.chunks)} chunk(s) hash to {whole.hexdigest()}",
                )
            )
        found = frozenset(ids)
        self.contents[ident] = found or _NONE
        return found

    def _read(
        self, refs: tuple[ChunkRef, ...], where: dict[str, ChunkLocation]
    ) -> Iterator[tuple[bytes | None, int | None]]:
        """Each chunk's bytes (None when unreadable) and the problem it has, if any."""
        chunks = self.data.chunks
        for ref in refs:
            name = chunk_name(ref.hash)
            known = self.problems.find("bad-index-row", name)
            if known is None:
                known = self.problems.find("corrupt-chunk", name)
            loc = where.get(ref.hash)
            try:
                data = chunks.read_chunk(ref, loc)
            except ObjectNotFound:
                if loc is not None:
                    pack = self.problems.find("missing-pack", loc.pack)
                    yield (
                        None,
                        pack
                        if pack is not None
                        else self.problems.add(
                            "missing-chunk", name, f"its pack {loc.pack} is missing"
                        ),
                    )
                else:
                    yield (
                        None,
                        self.problems.add(
                            "missing-chunk",
                            name,
                            "neither a loose object nor in the chunk index",
                        ),
                    )
                continue
            except CorruptObject as exc:
                yield (
                    None,
                    known
                    if known is not None
                    else self.problems.add("corrupt-chunk", name, str(exc)),
                )
                continue
            self.report.chunks_read += 1
            self.report.bytes_read += len(data)
            if blake3.blake3(data).hexdigest() != ref.hash:
                yield (
                    None,
                    known
                    if known is not None
                    else self.problems.add(
                        "corrupt-chunk", name, "its bytes do not match its hash"
                    ),
                )
                continue
            yield data, None


def _raw(digest: str) -> bytes:
    try:
        return bytes.fromhex(digest)
    except ValueError:
        return digest.encode()


def check_store(data: DataStore) -> FsckReport:
    """Verify every object and reference of ``data`` (see the module doc); change nothing.

    Returns the report; its ``problems`` are empty when the store is sound. Raises
    StorageError or CatalogError only when the stores themselves fail (not for damage,
    which is reported).
    """
    return _Checker(data).run()
