"""Garbage collection: reclaim objects that no commit can reach.

Deleting a repo, a branch, files or a pipeline removes catalog rows only; the
chunks, packs and tree nodes stay until ``collect_garbage`` runs.

Mark
    The roots are every commit row in the catalog, open and finished (commits of
    deleted repos are gone from it). From each root tree every node and every chunk
    of every file is marked; a node already marked is not read again, so the walk
    costs O(unique nodes), however many commits share them. The marks are sets of
    32-byte digests: about 100 bytes of memory per unique node or chunk (1 GiB for
    ten million), the one memory cost that grows with the store.

Sweep
    * tree nodes and loose chunks not marked: deleted;
    * packs: a pack none of whose index rows is marked is deleted (its rows first,
      then the object, so a crash between leaves an orphan pack, not rows pointing
      nowhere); a pack with more than ``repack_ratio`` of its indexed bytes dead is
      rewritten: its live frames, as stored, go into a new pack, their rows are
      relocated, the dead rows removed, and the old pack deleted;
    * orphan packs (in the object store, no index row: a crash between a pack's
      write and its index insert) are deleted;
    * index rows that point at a missing pack are left alone for fsck to report;
    * objects that layers above own (``LiveKeys``: pipeline logs) are deleted
      when the owner says they are not live.

The grace rule (git's ``gc --prune=<date>``)
    An object modified less than ``grace`` seconds before the collection starts is
    never deleted, nor is a pack rewritten or removed while it is that young, nor
    is anything newer than ``keep_newer_than`` (the pipelines layer passes the
    start of its oldest open job, whose outputs are stored but not yet committed).
    A put stores chunks and tree nodes first and commits after; grace covers that
    interval, so a grace longer than the longest put is safe. Backends that keep
    no modification times (the in-memory store) count every object as young
    unless ``grace`` is 0.

Concurrent writers: what is and is not covered
    Just before each phase of the sweep, the commits created since the mark began
    and every open commit are read again and marked, so commits that land while the
    (long) mark phase runs are safe. The race that remains: a writer that
    deduplicates against an *old, unreachable* chunk or tree node (it finds the
    object stored, so it does not write it) and commits after that re-check, while
    the sweep deletes the object. Holding the catalog's write lock across the sweep
    would not close it, because the writer's deduplication check happens before it
    takes the lock; closing it needs writers to refresh ("freshen", as git does) the
    modification time of an object they reuse, and the sweep to re-check the time
    right before it deletes. Until cairn.storage does that, the rule is git's: run
    gc with the default grace, and ``--grace 0`` only when nothing else writes.
    ``fsck`` finds a chunk lost this way and names the commits; putting the same
    file again stores the chunk again and repairs them.

A reader that looked a chunk up in a pack just before that pack was rewritten
may find it gone; reading again finds the chunk at its new place.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cairn.data.errors import StoreDamaged
from cairn.data.inventory import (
    CHUNK_PREFIX,
    PACK_PREFIX,
    TREE_PREFIX,
    digest_of,
    object_stat,
    roots,
)
from cairn.data.subject import about
from cairn.data.tree import DirEntry, TreeStore
from cairn.storage import CorruptObject, ObjectNotFound
from cairn.storage.packs import encode_pack, read_pack_footer

if TYPE_CHECKING:
    from cairn.data.store import DataStore

__all__ = ["DEFAULT_GRACE", "DEFAULT_REPACK_RATIO", "GcReport", "LiveKeys", "collect_garbage"]

DEFAULT_GRACE = 3600.0
DEFAULT_REPACK_RATIO = 0.5
KINDS = ("tree", "chunk", "pack")


@dataclass(frozen=True, slots=True)
class LiveKeys:
    """Objects a layer above owns: every key under ``prefix`` for which ``live(key)`` is
    False is garbage (subject to the grace rule) and is reported as ``kind``."""

    kind: str
    prefix: str
    live: Callable[[str], bool]


@dataclass(slots=True)
class Tally:
    """Objects and bytes of one kind."""

    objects: int = 0
    bytes: int = 0


@dataclass(slots=True)
class GcReport:
    """What a collection removed (or, with ``dry_run``, would remove).

    ``removed`` maps a kind (``tree``, ``chunk``, ``pack`` and the kinds of LiveKeys)
    to objects and bytes deleted; a rewritten pack adds the bytes it shrank by and no
    object. ``kept_young`` counts unreachable objects spared by the grace
    rule. Times are seconds.
    """

    dry_run: bool
    grace: float
    removed: dict[str, Tally] = field(default_factory=dict)
    packs_rewritten: int = 0
    bytes_written: int = 0
    index_rows_removed: int = 0
    kept_young: int = 0
    live_nodes: int = 0
    live_chunks: int = 0
    seconds: float = 0.0

    @property
    def objects_removed(self) -> int:
        return sum(t.objects for t in self.removed.values())

    @property
    def bytes_removed(self) -> int:
        return sum(t.bytes for t in self.removed.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "grace": self.grace,
            "removed": {
                k: {"objects": t.objects, "bytes": t.bytes} for k, t in self.removed.items()
            },
            "objects_removed": self.objects_removed,
            "bytes_removed": self.bytes_removed,
            "packs_rewritten": self.packs_rewritten,
            "bytes_written": self.bytes_written,
            "index_rows_removed": self.index_rows_removed,
            "kept_young": self.kept_young,
            "live_nodes": self.live_nodes,
            "live_chunks": self.live_chunks,
            "seconds": round(self.seconds, 3),
        }


class _Marks:
    """The reachable set: tree node and chunk digests, as 32-byte keys."""

    def __init__(self, data: DataStore) -> None:
        self.data = data
        # A private tree store: the walk reads each node once, so caching would only
        # evict the nodes the DataStore's own reads are using.
        self.trees = TreeStore(data.chunks.objects, cache_entries=1)
        self.nodes: set[bytes] = set()
        self.chunks: set[bytes] = set()

    def mark_commits(self, since: float | None = None) -> None:
        for root in roots(self.data.catalog, since=since):
            try:
                self._mark(root.tree)
            except (ObjectNotFound, CorruptObject) as exc:
                damaged = StoreDamaged(
                    f"commit {root.repo}@{root.id} cannot be read ({exc}); gc deletes nothing "
                    "while a commit is damaged"
                )
                raise about(damaged, "store.damaged") from None

    def _mark(self, root: str) -> None:
        stack = [root]
        nodes, chunks = self.nodes, self.chunks
        while stack:
            node_hash = stack.pop()
            key = bytes.fromhex(node_hash)
            if key in nodes:
                continue
            node = self.trees.load(node_hash)
            nodes.add(key)
            for entry in node.values():
                if isinstance(entry, DirEntry):
                    if bytes.fromhex(entry.hash) not in nodes:
                        stack.append(entry.hash)
                else:
                    chunks.update(bytes.fromhex(c.hash) for c in entry.content.chunks)

    def has_node(self, digest: str) -> bool:
        return _raw(digest) in self.nodes

    def has_chunk(self, digest: str) -> bool:
        return _raw(digest) in self.chunks


def _raw(digest: str) -> bytes:
    try:
        return bytes.fromhex(digest)
    except ValueError:  # not a hash: nothing cairn wrote refers to it by that name
        return b""


class _Collector:
    def __init__(
        self,
        data: DataStore,
        *,
        grace: float,
        dry_run: bool,
        repack_ratio: float,
        keep_newer_than: float | None,
    ) -> None:
        self.data = data
        self.objects = data.chunks.objects
        self.index = data.chunks.index
        self.dry_run = dry_run
        self.repack_ratio = repack_ratio
        self.started = time.time()
        self.cutoff = self.started - grace
        if keep_newer_than is not None:
            self.cutoff = min(self.cutoff, keep_newer_than)
        self.trust_unknown_age = grace <= 0 and keep_newer_than is None
        self.marks = _Marks(data)
        self.report = GcReport(dry_run=dry_run, grace=grace)
        self.report.removed = {kind: Tally() for kind in KINDS}

    # -- the grace rule ------------------------------------------------------------
    def _old(self, modified: float | None) -> bool:
        if modified is None:
            return self.trust_unknown_age
        return modified < self.cutoff

    def _refresh(self) -> None:
        """Mark the commits made since the mark began, and the open ones, again."""
        self.marks.mark_commits(since=self.started - 1.0)

    def _count(self, kind: str, size: int | None, objects: int = 1) -> None:
        tally = self.report.removed.setdefault(kind, Tally())
        tally.objects += objects
        tally.bytes += size or 0

    # -- phases ----------------------------------------------------------------------
    def run(self, owned: Sequence[LiveKeys]) -> GcReport:
        self.marks.mark_commits()
        self._refresh()
        self._sweep(TREE_PREFIX, "tree", lambda key: self.marks.has_node(digest_of(key)))
        self._refresh()
        self._sweep(CHUNK_PREFIX, "chunk", lambda key: self.marks.has_chunk(digest_of(key)))
        self._refresh()
        self._packs()
        for rule in owned:
            self._sweep(rule.prefix, rule.kind, rule.live)
        self.report.live_nodes = len(self.marks.nodes)
        self.report.live_chunks = len(self.marks.chunks)
        self.report.seconds = time.time() - self.started
        return self.report

    def _sweep(self, prefix: str, kind: str, live: Callable[[str], bool]) -> None:
        for key in self.objects.list(prefix):
            if live(key):
                continue
            stat = object_stat(self.objects, key)
            if stat is None:
                continue
            if not self._old(stat.modified):
                self.report.kept_young += 1
                continue
            self._count(kind, stat.size)
            if not self.dry_run:
                self.objects.delete(key)

    def _packs(self) -> None:
        # Per pack: [live bytes, dead bytes, live rows, dead rows], from one index scan.
        usage: dict[str, list[int]] = {}
        for loc in self.index.scan():
            counts = usage.setdefault(loc.pack, [0, 0, 0, 0])
            live = self.marks.has_chunk(loc.hash)
            counts[0 if live else 1] += loc.length
            counts[2 if live else 3] += 1
        doomed: dict[str, int] = {}
        rewrite: list[str] = []
        for key in self.objects.list(PACK_PREFIX):
            found = usage.get(key)
            if found is not None and not found[3]:
                continue  # every row live
            stat = object_stat(self.objects, key)
            if stat is None:
                continue
            if not self._old(stat.modified):
                self.report.kept_young += 1
                continue
            if found is None:  # orphan: no index row
                self._count("pack", stat.size)
                if not self.dry_run:
                    self.objects.delete(key)
            elif not found[2]:
                doomed[key] = found[3]
            elif found[1] > self.repack_ratio * (found[0] + found[1]):
                rewrite.append(key)
        self._refresh()
        self._delete_packs(doomed)
        for key in rewrite:
            self._rewrite(key, usage[key][2] + usage[key][3])

    def _delete_packs(self, doomed: dict[str, int]) -> None:
        """Remove dead packs: their index rows first, then the objects."""
        if not doomed:
            return
        rows: dict[str, list[str]] = {key: [] for key in doomed}
        spared: set[str] = set()
        for loc in self.index.scan():
            if loc.pack in rows:
                rows[loc.pack].append(loc.hash)
                if self.marks.has_chunk(loc.hash):  # a commit made meanwhile uses it
                    spared.add(loc.pack)
        for key, hashes in rows.items():
            if key in spared or len(hashes) != doomed[key]:
                continue  # changed since the first scan: leave it to the next collection
            stat = object_stat(self.objects, key)
            self._count("pack", stat.size if stat else 0)
            self.report.index_rows_removed += len(hashes)
            if not self.dry_run:
                self.index.remove(hashes)
                self.objects.delete(key)

    def _rewrite(self, key: str, indexed_rows: int) -> None:
        """Copy a pack's live frames into a new pack, move their rows, drop the old one."""
        try:
            body = self.objects.get(key)
            footer = read_pack_footer(key, body)
        except (ObjectNotFound, CorruptObject):
            return  # fsck reports it; gc touches nothing it cannot read
        rows = self.index.find([loc.hash for loc in footer])
        here = {h: loc for h, loc in rows.items() if loc.pack == key}
        if len(here) != indexed_rows:
            return  # rows that the footer does not list: damaged, leave it for fsck
        keep = [loc for loc in footer if loc.hash in here and self.marks.has_chunk(loc.hash)]
        dead = [h for h in here if not self.marks.has_chunk(h)]
        if not keep:
            self._delete_packs({key: indexed_rows})
            return
        frames = [(loc.hash, body[loc.offset : loc.offset + loc.length], loc.size) for loc in keep]
        new_key, new_body, locations = encode_pack(frames)
        self.report.packs_rewritten += 1
        self.report.bytes_written += len(new_body)
        self._count("pack", len(body) - len(new_body), objects=0)
        self.report.index_rows_removed += len(dead)
        if self.dry_run:
            return
        self.objects.put(new_key, new_body)
        self.index.relocate(locations)
        self.index.remove(dead)
        if new_key != key:
            self.objects.delete(key)


def collect_garbage(
    data: DataStore,
    *,
    grace: float = DEFAULT_GRACE,
    dry_run: bool = False,
    repack_ratio: float = DEFAULT_REPACK_RATIO,
    keep_newer_than: float | None = None,
    owned: Iterable[LiveKeys] = (),
) -> GcReport:
    """Delete the objects of ``data`` that no commit reaches (see the module doc).

    ``grace`` (seconds) spares objects modified less than that before the collection
    started; ``keep_newer_than`` (UTC seconds since the epoch) spares everything
    modified after it as well. ``repack_ratio`` is the share of a pack's indexed bytes
    that must be dead before the pack is rewritten (0.5: more than half). ``owned``
    adds objects that layers above own. ``dry_run`` deletes and writes nothing and
    reports what would go.

    Raises StoreDamaged (and deletes nothing) when a commit's tree cannot be read,
    ValueError for a negative grace or a ratio outside [0, 1], StorageError and
    CatalogError when the stores fail.
    """
    if grace < 0:
        raise ValueError(f"grace must be 0 or more seconds, not {grace}")
    if not 0 <= repack_ratio <= 1:
        raise ValueError(f"repack_ratio must be between 0 and 1, not {repack_ratio}")
    # Chunks this process still buffers are not committed anywhere yet; writing them
    # out first keeps what the collection sees and what the index holds in step.
    data.chunks.flush()
    collector = _Collector(
        data,
        grace=grace,
        dry_run=dry_run,
        repack_ratio=repack_ratio,
        keep_newer_than=keep_newer_than,
    )
    return collector.run(list(owned))
