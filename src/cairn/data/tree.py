"""Content-addressed trees: the index of a commit's paths.

A tree is a Merkle tree of folders, as in git. Each folder is one node object
``trees/<h[:2]>/<h>``, where ``h`` is the BLAKE3 hash of the node's canonical
encoding: a JSON object (keys sorted, no spaces) from child name to entry,

    file    {"t": "f", "h": content hash, "s": size, "c": [[chunk hash, size], …], "d": datum}
    folder  {"t": "d", "h": node hash, "s": total size, "n": file count}

framed as one codec byte (``0x01`` zstd) and the compressed JSON. ``d`` is the
hash of the pipeline datum that wrote the file (absent for files a user put):
file-level lineage travels with the tree.

Structural sharing: a commit that changes k files rewrites only the folders
on their paths, and ``diff`` skips every sub-tree whose hash is unchanged, so
both cost O(k · depth) node reads and writes, not O(total files). Empty
folders do not exist: removing a folder's last file removes the folder.

A node that is stored already is not written again (a put of its key is a no-op),
so writing a node may mean reusing one that no commit reaches. With ``pins`` every
node's key is pinned before it is put (cairn.storage.pins): a garbage collection
then either spares it or has deleted it already, and the put writes it again.

A folder with very many direct children is one big node; splitting nodes by
content-defined boundaries (a prolly tree) is the planned fix for the
million-file target and changes only this module.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import blake3
import zstandard

from cairn.data.errors import PathConflict
from cairn.data.paths import join
from cairn.storage import ChunkRef, Content, CorruptObject, ObjectStore
from cairn.storage.pins import Pins

__all__ = ["DirEntry", "Entry", "FileEntry", "TreeStore"]


@dataclass(frozen=True, slots=True)
class FileEntry:
    """A file in a tree: its content and, for pipeline output, the datum hash that wrote it."""

    content: Content
    datum: str | None = None

    @property
    def hash(self) -> str:
        return self.content.hash

    @property
    def size(self) -> int:
        return self.content.size


@dataclass(frozen=True, slots=True)
class DirEntry:
    """A folder in a tree: its node hash, total bytes and number of files below it."""

    hash: str
    size: int
    count: int


Entry = FileEntry | DirEntry
Node = dict[str, Entry]


def _encode_entry(entry: Entry) -> dict[str, object]:
    if isinstance(entry, DirEntry):
        return {"t": "d", "h": entry.hash, "s": entry.size, "n": entry.count}
    out: dict[str, object] = {
        "t": "f",
        "h": entry.content.hash,
        "s": entry.content.size,
        "c": [[c.hash, c.size] for c in entry.content.chunks],
    }
    if entry.datum is not None:
        out["d"] = entry.datum
    return out


def _decode_entry(raw: dict) -> Entry:
    if raw["t"] == "d":
        return DirEntry(raw["h"], raw["s"], raw["n"])
    chunks = tuple(ChunkRef(h, s) for h, s in raw["c"])
    return FileEntry(Content(raw["h"], raw["s"], chunks), raw.get("d"))


class TreeStore:
    """Reads and writes tree nodes in an object store, with a small cache of decoded nodes.

    A root of ``None`` is the empty tree. Paths are normalized repo paths
    (cairn.data.paths): ``""`` is the root, ``a/b.png`` a file. ``pins`` records the
    nodes a write relies on (see the module doc); None for read-only use.
    """

    def __init__(
        self, objects: ObjectStore, *, cache_entries: int = 100_000, pins: Pins | None = None
    ) -> None:
        self.objects = objects
        self.pins = pins
        self._cache: OrderedDict[str, Node] = OrderedDict()
        # Bounded by entries, not nodes: a folder of 1,000 files is 1,000 entries (~0.5 MiB
        # decoded), so a node count alone would let memory grow with the store.
        self._cache_entries = cache_entries
        self._cached = 0
        self._lock = threading.Lock()

    # -- nodes ---------------------------------------------------------------
    def load(self, node_hash: str) -> Node:
        """The decoded folder node ``node_hash``. Raises ObjectNotFound, CorruptObject."""
        with self._lock:
            node = self._cache.get(node_hash)
            if node is not None:
                self._cache.move_to_end(node_hash)
                return node
        blob = self.objects.get(f"trees/{node_hash[:2]}/{node_hash}")
        if blob[:1] != b"\x01":
            raise CorruptObject(f"tree node {node_hash} has an unknown codec byte")
        try:
            raw = zstandard.ZstdDecompressor().decompress(blob[1:])
        except zstandard.ZstdError as exc:
            raise CorruptObject(f"tree node {node_hash} is not a valid zstd frame") from exc
        if blake3.blake3(raw).hexdigest() != node_hash:
            raise CorruptObject(f"tree node {node_hash} does not match its hash")
        node = {name: _decode_entry(e) for name, e in json.loads(raw).items()}
        self._remember(node_hash, node)
        return node

    def save(
        self, node: Mapping[str, Entry], sink: list[tuple[str, bytes]] | None = None
    ) -> DirEntry:
        """Store a folder node; return the entry its parent holds for it.

        With ``sink`` the encoded object is appended there instead of written, so that a
        whole ``apply`` writes its nodes together (``_write_all``)."""
        encoded = {name: _encode_entry(e) for name, e in node.items()}
        raw = json.dumps(encoded, sort_keys=True, separators=(",", ":")).encode()
        digest = blake3.blake3(raw).hexdigest()
        key = f"trees/{digest[:2]}/{digest}"
        blob = b"\x01" + zstandard.compress(raw, 3)
        if sink is None:
            self._write_all([(key, blob)])
        else:
            sink.append((key, blob))
        self._remember(digest, dict(node))
        size = sum(e.size for e in node.values())
        count = sum(e.count if isinstance(e, DirEntry) else 1 for e in node.values())
        return DirEntry(digest, size, count)

    def _write_all(self, sink: list[tuple[str, bytes]]) -> None:
        """Write nodes in parallel: each local write ends in an fsync, and the disk
        handles many at once far faster than one after another. All their keys are
        pinned first, in one batch."""
        if self.pins is not None and sink:
            self.pins.pin([key for key, _ in sink])
        if len(sink) <= 2:
            for key, blob in sink:
                self.objects.put(key, blob)
            return
        with ThreadPoolExecutor(min(16, len(sink))) as pool:
            list(pool.map(lambda item: self.objects.put(*item), sink))

    def _remember(self, digest: str, node: Node) -> None:
        with self._lock:
            old = self._cache.pop(digest, None)
            if old is not None:
                self._cached -= len(old) + 1
            self._cache[digest] = node
            self._cached += len(node) + 1
            while self._cached > self._cache_entries and len(self._cache) > 1:
                _, gone = self._cache.popitem(last=False)
                self._cached -= len(gone) + 1

    # -- reading -------------------------------------------------------------
    def lookup(self, root: str | None, path: str) -> Entry | None:
        """The entry at ``path`` (a file or folder), or None. ``""`` is the root folder."""
        if root is None:
            return None
        if not path:
            node = self.load(root)
            return DirEntry(
                root,
                sum(e.size for e in node.values()),
                sum(e.count if isinstance(e, DirEntry) else 1 for e in node.values()),
            )
        entry: Entry = DirEntry(root, 0, 0)
        for part in path.split("/"):
            if not isinstance(entry, DirEntry):
                return None
            found = self.load(entry.hash).get(part)
            if found is None:
                return None
            entry = found
        return entry

    def children(self, root: str | None, path: str) -> list[tuple[str, Entry]]:
        """The direct children of folder ``path`` as (full path, entry), sorted by name."""
        entry = self.lookup(root, path)
        if not isinstance(entry, DirEntry):
            return []
        return [(join(path, name), e) for name, e in sorted(self.load(entry.hash).items())]

    def walk(self, root: str | None, path: str = "") -> Iterator[tuple[str, FileEntry]]:
        """Every file at or under ``path`` as (full path, entry), in path order."""
        entry = self.lookup(root, path)
        if isinstance(entry, FileEntry):
            yield path, entry
        elif isinstance(entry, DirEntry):
            yield from self._walk_node(entry.hash, path)

    def _walk_node(self, node_hash: str, prefix: str) -> Iterator[tuple[str, FileEntry]]:
        for name, entry in sorted(self.load(node_hash).items()):
            full = join(prefix, name)
            if isinstance(entry, DirEntry):
                yield from self._walk_node(entry.hash, full)
            else:
                yield full, entry

    def walk_all(self, root: str | None) -> Iterator[tuple[str, Entry]]:
        """Every folder and file as (full path, entry), pre-order in path order."""
        if root is not None:
            yield from self._walk_all(root, "")

    def _walk_all(self, node_hash: str, prefix: str) -> Iterator[tuple[str, Entry]]:
        for name, entry in sorted(self.load(node_hash).items()):
            full = join(prefix, name)
            yield full, entry
            if isinstance(entry, DirEntry):
                yield from self._walk_all(entry.hash, full)

    # -- writing -------------------------------------------------------------
    def apply(self, root: str | None, changes: Mapping[str, FileEntry | None]) -> str | None:
        """A new root with ``changes`` applied: path -> entry puts a file, path -> None removes
        the file or whole folder at that path (absent paths are ignored).

        Raises PathConflict when a file would replace a folder or sit below a file.
        """
        if not changes:
            return root
        sink: list[tuple[str, bytes]] = []
        new = self._apply(root, dict(changes), "", sink)
        self._write_all(sink)
        return None if new is None else new.hash

    def _apply(
        self,
        node_hash: str | None,
        changes: dict[str, FileEntry | None],
        prefix: str,
        sink: list[tuple[str, bytes]],
    ) -> DirEntry | None:
        original: Node = self.load(node_hash) if node_hash else {}
        node: Node = dict(original)
        nested: dict[str, dict[str, FileEntry | None]] = {}
        puts: dict[str, FileEntry] = {}
        # Order: removals here, then changes below (which may empty a folder), then puts
        # here, so that replacing a folder by a file and a file by a folder both work.
        for path, entry in changes.items():
            head, sep, rest = path.partition("/")
            if sep:
                nested.setdefault(head, {})[rest] = entry
            elif entry is None:
                node.pop(head, None)
            else:
                puts[head] = entry
        for head, sub in nested.items():
            existing = node.get(head)
            if isinstance(existing, FileEntry):
                if all(e is None for e in sub.values()):
                    continue
                raise PathConflict(
                    f"cannot put a file under /{join(prefix, head)}: it is a file, not a folder"
                )
            new = self._apply(existing.hash if existing else None, sub, join(prefix, head), sink)
            if new is None:
                node.pop(head, None)
            else:
                node[head] = new
        for head, entry in puts.items():
            if isinstance(node.get(head), DirEntry):
                raise PathConflict(f"cannot put file /{join(prefix, head)}: a folder is there")
            node[head] = entry
        return self._finish(node_hash, original, node, sink)

    def _finish(
        self, node_hash: str | None, original: Node, node: Node, sink: list[tuple[str, bytes]]
    ) -> DirEntry | None:
        """The entry for ``node``: None when empty, the old entry when nothing changed (no
        encoding, no write), else a newly saved node."""
        if not node:
            return None
        if node_hash is not None and node == original:
            return DirEntry(
                node_hash,
                sum(e.size for e in node.values()),
                sum(e.count if isinstance(e, DirEntry) else 1 for e in node.values()),
            )
        return self.save(node, sink)

    def overlay(self, base: str | None, delta: str | None) -> str | None:
        """``base`` with every file of the tree ``delta`` put on top (delta wins).

        A folder of ``delta`` that ``base`` lacks is taken whole, by hash, so the cost
        follows the folders both trees hold, not the files ``delta`` adds. Raises
        PathConflict where a file of one tree meets a folder of the other.
        """
        if delta is None or base == delta:
            return base
        if base is None:
            return delta
        sink: list[tuple[str, bytes]] = []
        new = self._overlay(base, delta, "", sink)
        self._write_all(sink)
        return None if new is None else new.hash

    def _overlay(
        self, base: str, delta: str, prefix: str, sink: list[tuple[str, bytes]]
    ) -> DirEntry | None:
        original = self.load(base)
        node: Node = dict(original)
        for name, entry in self.load(delta).items():
            existing = node.get(name)
            where = join(prefix, name)
            if isinstance(entry, DirEntry):
                if existing is None:
                    node[name] = entry
                elif isinstance(existing, FileEntry):
                    raise PathConflict(f"cannot put a file under /{where}: it is a file")
                elif existing.hash != entry.hash:
                    merged = self._overlay(existing.hash, entry.hash, where, sink)
                    if merged is not None:
                        node[name] = merged
            else:
                if isinstance(existing, DirEntry):
                    raise PathConflict(f"cannot put file /{where}: a folder is there")
                node[name] = entry
        return self._finish(base, original, node, sink)

    # -- comparing -----------------------------------------------------------
    def diff(
        self, old: str | None, new: str | None, path: str = "", old_path: str | None = None
    ) -> Iterator[tuple[str, FileEntry | None, FileEntry | None]]:
        """Files that differ between two trees as (path, old entry, new entry), in path order.

        Compares ``path`` of ``new`` with ``old_path`` (default: the same path) of ``old``;
        paths are reported as they are under ``path``. Added files have ``old`` None,
        deleted ones ``new`` None. Equal sub-trees are skipped by hash, so the cost follows
        the size of the change.
        """
        a = self.lookup(old, path if old_path is None else old_path)
        b = self.lookup(new, path)
        yield from self._diff_entries(path, a, b)

    def _diff_entries(
        self, path: str, a: Entry | None, b: Entry | None
    ) -> Iterator[tuple[str, FileEntry | None, FileEntry | None]]:
        if isinstance(a, DirEntry) and isinstance(b, DirEntry):
            if a.hash == b.hash:
                return
            na, nb = self.load(a.hash), self.load(b.hash)
            for name in sorted(na.keys() | nb.keys()):
                yield from self._diff_entries(join(path, name), na.get(name), nb.get(name))
            return
        if isinstance(a, FileEntry) and isinstance(b, FileEntry):
            if a != b:
                yield path, a, b
            return
        # A file at ``path`` sorts before anything below the folder that replaces it.
        if isinstance(a, FileEntry):
            yield path, a, None
        if isinstance(b, FileEntry):
            yield path, None, b
        if isinstance(a, DirEntry):
            for p, e in self._walk_node(a.hash, path):
                yield p, e, None
        if isinstance(b, DirEntry):
            for p, e in self._walk_node(b.hash, path):
                yield p, None, e
