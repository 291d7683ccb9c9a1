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

Concurrent writers: pins and leases (cairn.catalog.pins)
    A writer that finds a chunk or tree node stored already does not write it
    again, so a put may be about to commit a reference to an object that no commit
    reaches yet. Every cairn writer holds a lease from before it stores anything
    until after its commit, and pins each chunk, tree node and pack key before it
    checks whether the object is stored or writes it. A collection opens its own
    lease and takes a floor epoch before it marks anything; it then deletes tree
    nodes and loose chunks, and removes the index rows of packed chunks, only
    inside a catalog write transaction that finds no pin of theirs at or above
    the floor, and deletes those objects before the transaction ends. Pinning and
    deleting are thus ordered by the catalog's write lock: either the pin comes
    first and the object is kept (reported as ``kept_pinned``), or the deletion
    does and the writer, checking after its pin, finds the object gone and writes
    it again. No timing is involved, so a collection with ``grace`` 0 is safe
    beside any number of puts, deletes, copies and pipeline jobs (pins.py gives the
    argument). A pack whose dead rows a writer pins while the pack is being
    rewritten is left for the next collection.

    Writers pay for it with a catalog transaction per batch of pins (one per
    flush of the pack buffer, per tree write and per loose chunk), and writers
    wait while a collection deletes a batch of objects under the lock. A lease
    not renewed for a day (its writer died) is dropped (``leases_expired``).

The grace rule (git's ``gc --prune=<date>``)
    An object modified less than ``grace`` seconds before the collection starts is
    never deleted, nor is a pack rewritten or removed while it is that young, nor
    is anything newer than ``keep_newer_than`` (the pipelines layer passes the
    start of its oldest open job). With pins, the grace is no longer what keeps a
    writer's objects: it protects writers that take no lease (code that writes to
    the object store without a DataStore) and leaves recent garbage for a while,
    as git does. Backends that keep no modification times (the in-memory store)
    count every object as young unless ``grace`` is 0. Just before each phase of
    the sweep, the commits created since the mark began and every open commit are
    read again and marked, which also keeps what lease-less writers committed.

A reader that looked a chunk up in a pack just before that pack was rewritten
may find it gone; reading again finds the chunk at its new place.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cairn.catalog.pins import Sweep
from cairn.data.errors import StoreDamaged
from cairn.data.inventory import (
    CHUNK_PREFIX,
    PACK_PREFIX,
    TREE_PREFIX,
    ObjectStat,
    digest_of,
    object_stat,
    roots,
)
from cairn.data.subject import about
from cairn.data.tree import DirEntry, TreeStore
from cairn.storage import CorruptObject, ObjectNotFound
from cairn.storage.chunks import chunk_key
from cairn.storage.packs import ChunkLocation, encode_pack, read_pack_footer

if TYPE_CHECKING:
    from cairn.data.store import DataStore

__all__ = ["DEFAULT_GRACE", "DEFAULT_REPACK_RATIO", "GcReport", "LiveKeys", "collect_garbage"]

DEFAULT_GRACE = 3600.0
DEFAULT_REPACK_RATIO = 0.5
KINDS = ("tree", "chunk", "pack")
# Objects deleted per catalog write transaction: writers wait for the lock meanwhile.
_DELETE_BATCH = 500


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
    rule, ``kept_pinned`` those (and packs) spared because a writer at work pinned them,
    ``leases_expired`` the leases of dead writers dropped. Times are seconds.
    """

    dry_run: bool
    grace: float
    removed: dict[str, Tally] = field(default_factory=dict)
    packs_rewritten: int = 0
    bytes_written: int = 0
    index_rows_removed: int = 0
    kept_young: int = 0
    kept_pinned: int = 0
    leases_expired: int = 0
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
            "kept_pinned": self.kept_pinned,
            "leases_expired": self.leases_expired,
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
        self.pins = data.pins
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
        self.sweep = Sweep(None, 0, 0)

    # -- the grace rule ------------------------------------------------------------
    def _old(self, modified: float | None) -> bool:
        if modified is None:
            return self.trust_unknown_age
        return modified < self.cutoff

    def _doomed(self, key: str) -> ObjectStat | None:
        """``key``'s stat if the grace rule lets it go; None if it is gone or young (counted
        in ``kept_young``)."""
        stat = object_stat(self.objects, key)
        if stat is None:
            return None
        if not self._old(stat.modified):
            self.report.kept_young += 1
            return None
        return stat

    def _refresh(self) -> None:
        """Mark the commits made since the mark began, and the open ones, again."""
        self.marks.mark_commits(since=self.started - 1.0)

    def _count(self, kind: str, size: int | None, objects: int = 1) -> None:
        tally = self.report.removed.setdefault(kind, Tally())
        tally.objects += objects
        tally.bytes += size or 0

    # -- phases ----------------------------------------------------------------------
    def run(self, owned: Sequence[LiveKeys]) -> GcReport:
        # Before the mark: a commit the mark misses then comes from a writer whose lease
        # the floor covers (cairn.catalog.pins).
        self.sweep = self.pins.begin_sweep(dry_run=self.dry_run)
        try:
            self.report.leases_expired = self.sweep.expired
            self.marks.mark_commits()
            self._refresh()
            self._sweep(TREE_PREFIX, "tree", lambda key: self.marks.has_node(digest_of(key)))
            self._refresh()
            self._sweep(CHUNK_PREFIX, "chunk", lambda key: self.marks.has_chunk(digest_of(key)))
            self._refresh()
            self._packs()
            for rule in owned:
                self._sweep(rule.prefix, rule.kind, rule.live, pinned=False)
        finally:
            self.pins.end_sweep(self.sweep)
        self.report.live_nodes = len(self.marks.nodes)
        self.report.live_chunks = len(self.marks.chunks)
        self.report.seconds = time.time() - self.started
        return self.report

    def _sweep(
        self, prefix: str, kind: str, live: Callable[[str], bool], *, pinned: bool = True
    ) -> None:
        doomed: dict[str, int | None] = {}
        for key in self.objects.list(prefix):
            stat = None if live(key) else self._doomed(key)
            if stat is None:
                continue
            doomed[key] = stat.size
            if len(doomed) >= _DELETE_BATCH:
                self._delete(kind, doomed, pinned)
                doomed = {}
        self._delete(kind, doomed, pinned)

    def _delete(self, kind: str, doomed: dict[str, int | None], pinned: bool) -> None:
        """Delete ``doomed`` (key -> size) but what writers pinned, in one guarded
        transaction (``pinned`` False: objects that take no pins, deleted as they are)."""
        if not doomed:
            return
        if not pinned:
            spared: set[str] = set()
            if not self.dry_run:
                self.objects.delete_many(list(doomed))
        elif self.dry_run:
            spared = self.pins.pinned(list(doomed), self.sweep)
        else:
            with self.pins.guard(self.sweep) as guard:
                spared = guard.pinned(list(doomed))
                self.objects.delete_many([key for key in doomed if key not in spared])
        self.report.kept_pinned += len(spared)
        for key, size in doomed.items():
            if key not in spared:
                self._count(kind, size)

    def _packs(self) -> None:
        # Per pack: [live bytes, dead bytes, live rows, dead rows], from one index scan.
        usage: dict[str, list[int]] = {}
        for loc in self.index.scan():
            counts = usage.setdefault(loc.pack, [0, 0, 0, 0])
            live = self.marks.has_chunk(loc.hash)
            counts[0 if live else 1] += loc.length
            counts[2 if live else 3] += 1
        doomed: dict[str, int] = {}
        orphans: dict[str, int | None] = {}
        rewrite: list[str] = []
        for key in self.objects.list(PACK_PREFIX):
            found = usage.get(key)
            if found is not None and not found[3]:
                continue  # every row live
            stat = self._doomed(key)
            if stat is None:
                continue
            if found is None:  # orphan: no index row (a writer pins a pack before its rows)
                orphans[key] = stat.size
            elif not found[2]:
                doomed[key] = found[3]
            elif found[1] > self.repack_ratio * (found[0] + found[1]):
                rewrite.append(key)
        for batch in _slices(list(orphans.items()), _DELETE_BATCH):
            self._delete("pack", dict(batch), pinned=True)
        self._refresh()
        self._delete_packs(doomed)
        for key in rewrite:
            self._rewrite(key, usage[key][2] + usage[key][3])

    def _delete_packs(self, doomed: dict[str, int]) -> None:
        """Remove dead packs: their index rows first, then the objects. A pack with a row
        that a commit made meanwhile uses, or that a writer pinned, is kept."""
        if not doomed:
            return
        rows: dict[str, list[str]] = {key: [] for key in doomed}
        spared: set[str] = set()
        for loc in self.index.scan():
            if loc.pack in rows:
                rows[loc.pack].append(loc.hash)
                if self.marks.has_chunk(loc.hash):
                    spared.add(loc.pack)
        for key, hashes in rows.items():
            if key in spared or len(hashes) != doomed[key]:
                continue  # changed since the first scan: leave it to the next collection
            if not self._remove_rows(hashes):
                self.report.kept_pinned += 1
                continue
            stat = object_stat(self.objects, key)
            self._count("pack", stat.size if stat else 0)
            self.report.index_rows_removed += len(hashes)
            if not self.dry_run:
                # No row points here any more, so no writer can come to rely on it.
                self.objects.delete(key)

    def _remove_rows(self, hashes: list[str], relocate: Sequence[ChunkLocation] = ()) -> bool:
        """Remove the index rows of ``hashes`` (and move ``relocate`` rows) in one guarded
        transaction, unless a writer pinned one of those chunks: then change nothing and
        return False."""
        keys = [chunk_key(h) for h in hashes]
        if self.dry_run:
            return not self.pins.pinned(keys, self.sweep)
        with self.pins.guard(self.sweep) as guard:
            if guard.pinned(keys):
                return False
            guard.relocate_rows(self.index, relocate)
            guard.remove_rows(self.index, hashes)
        return True

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
        pinned = {digest_of(k) for k in self.pins.pinned([chunk_key(h) for h in here], self.sweep)}
        kept = {h for h in here if self.marks.has_chunk(h) or h in pinned}
        keep = [loc for loc in footer if loc.hash in kept]
        dead = [h for h in here if h not in kept]
        if not keep:
            self._delete_packs({key: indexed_rows})
            return
        frames = [(loc.hash, body[loc.offset : loc.offset + loc.length], loc.size) for loc in keep]
        new_key, new_body, locations = encode_pack(frames)
        if self.dry_run:
            self._count_rewrite(body, new_body, dead)
            return
        self.pins.pin([new_key])  # an orphan to a collection beside this one until indexed
        self.objects.put(new_key, new_body)
        if not self._remove_rows(dead, locations):
            # A writer pinned a dead chunk meanwhile: it relies on the old pack's row.
            if new_key != key:
                self.objects.delete(new_key)
            self.report.kept_pinned += 1
            return
        self._count_rewrite(body, new_body, dead)
        if new_key != key:
            self.objects.delete(key)

    def _count_rewrite(self, body: bytes, new_body: bytes, dead: list[str]) -> None:
        self.report.packs_rewritten += 1
        self.report.bytes_written += len(new_body)
        self._count("pack", len(body) - len(new_body), objects=0)
        self.report.index_rows_removed += len(dead)


def _slices(items: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


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
