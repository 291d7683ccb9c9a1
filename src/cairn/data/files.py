"""File operations on commits: put, get, list, glob, inspect, diff, delete, copy.

DataStore (cairn.data.store) holds one and offers its verbs as its own; every verb
that writes goes through the CommitLog's compare-and-set (cairn.data.commitlog). Puts
stream: each file is cut into chunks as it is read, so memory
does not grow with file size, and every chunk is stored before the commit's
tree moves, so a put killed half way leaves the commit as it was.

Every verb that writes holds a writer's lease (cairn.catalog.pins) from before it
stores or reuses anything until after its commit, so a garbage collection running
beside it spares every object it pins (the chunk and tree stores pin what they
write or find stored).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO, TypedDict

from cairn.catalog import CatalogPins
from cairn.data.commitlog import CommitLog, TreeChange
from cairn.data.errors import InvalidPath, NoCommitYet, NotFound
from cairn.data.glob import compile_glob
from cairn.data.localfiles import LocalFile
from cairn.data.models import CommitInfo, FileChange, FileInfo
from cairn.data.paths import display, join, normalize
from cairn.data.refs import Ref
from cairn.data.statcache import StatCache
from cairn.data.tree import DirEntry, Entry, FileEntry, TreeStore
from cairn.storage import ChunkRef, ChunkStore, Content, CorruptObject
from cairn.storage.chunks import chunk_key

__all__ = ["BulkStore", "Files", "PutOptions", "Source"]

# What a put reads: a binary stream, or the path of a local file (a LocalFile from a walk is
# read only while it is the file the walk saw, without following a link), or the Content of
# chunks a remote client sent already (cairn server's chunk-aware upload).
Source = BinaryIO | str | os.PathLike[str] | Content
# Files gathered per tree batch, files in flight in the put's thread pool, and its threads
# (reads, BLAKE3 and zstd release the GIL, so threads use every core).
_TREE_BATCH = 10_000
_WINDOW = 256
_WORKERS = min(8, 2 * (os.cpu_count() or 1))
# Files a put must read before it hands them to ``bulk`` rather than to its threads.
BULK_MIN = 5_000
# Stores many local files at once, given (name, (device, inode) the file must have or None
# to follow links as open() does), yielding (name, Content, stat) in any order, and returns
# once every chunk is stored and indexed (cairn.data.ingest.ProcessIngest).
BulkStore = Callable[
    [list[tuple[str, tuple[int, int] | None]]], Iterator[tuple[str, Content, os.stat_result]]
]
# A stored file: its normalized path, its Content, and its source when the Content came
# from the stat cache (to be checked again: see ``_recheck``).
Stored = tuple[str, Content, Source | None]


class PutOptions(TypedDict, total=False):
    """The keyword options of :meth:`Files.put_files`, for the verbs that pass them on."""

    append: bool
    progress: Callable[[int], None] | None
    description: str
    cache: StatCache | None
    bulk: BulkStore | None


class Files:
    """The file verbs over the commits of ``commit_log``: bytes go to ``chunks``, trees to
    ``trees``, and every verb that writes holds a lease of ``pins`` while it works."""

    def __init__(
        self, commit_log: CommitLog, chunks: ChunkStore, trees: TreeStore, pins: CatalogPins
    ) -> None:
        self.commit_log = commit_log
        self.chunks = chunks
        self.trees = trees
        self.pins = pins

    # -- writing -------------------------------------------------------------
    def put_files(
        self,
        repo: str,
        target: str | None,
        items: Iterable[tuple[str, Source]],
        *,
        append: bool = False,
        progress: Callable[[int], None] | None = None,
        description: str = "",
        cache: StatCache | None = None,
        bulk: BulkStore | None = None,
    ) -> CommitInfo:
        """Store each (path, source) and add them to one commit.

        A source is a binary stream, read in turn, or a local file's path, which is read
        by a pool of threads (so hashing and compression use every core) and, with a
        ``cache``, not read at all when its stat shows it unchanged since it was stored.
        ``target`` is a branch (default master) or an open commit id. Into an open
        commit the files are added to it; otherwise one new finished commit holds them
        all. Existing files are overwritten (a path given twice: the last wins), or with
        ``append`` extended. With ``bulk``, a list of at least ``BULK_MIN`` local files
        that the cache does not know is stored by it (several processes) instead of by
        threads. Memory does not grow with the number of files: they are
        gathered in a tree of their own, 10,000 at a time, which is laid over the
        commit's tree at the end. Raises InvalidPath, PathConflict, NotFound,
        CommitStateError, NotRegularFile (a local path is a pipe or device, or a LocalFile
        was replaced since it was found), OSError for an unreadable local file.
        """
        with self.pins.lease():
            if append:  # appends read every source: no cache, no bulk
                change = self._appended(self._store_all(items, progress, None))
            else:
                change = self._overlaid(self._store_all(items, progress, cache, bulk), cache)
            commit = self.commit_log.update_tree(repo, target, change, description)
            if cache is not None and not append:
                cache.save()
            return commit

    def _overlaid(self, stored: Iterator[Stored], cache: StatCache | None) -> TreeChange:
        """The change that lays the ``stored`` files over a commit's tree."""
        delta: str | None = None
        batch: dict[str, FileEntry] = {}
        cached: dict[str, Source] = {}
        for path, content, source in stored:
            batch[path] = FileEntry(content)
            if source is not None:
                cached[path] = source
            if len(batch) >= _TREE_BATCH:
                delta = self.trees.apply(delta, self._recheck(batch, cached, cache))
                batch, cached = {}, {}
        batch = self._recheck(batch, cached, cache)
        if delta is None:
            # One batch: applied to the commit's tree directly, no tree of its own.
            def change(root: str | None) -> str | None:
                return self.trees.apply(root, batch)
        else:
            delta = self.trees.apply(delta, batch)

            def change(root: str | None) -> str | None:
                return self.trees.overlay(root, delta)

        return change

    def _appended(self, stored: Iterator[Stored]) -> TreeChange:
        """The change that appends the ``stored`` files to a commit's files (or adds them)."""
        contents: dict[str, Content] = {}
        for path, new, _ in stored:
            if path in contents:
                new = self.chunks.concat([contents[path], new])
            contents[path] = new

        def change(root: str | None) -> str | None:
            updates: dict[str, FileEntry | None] = {}
            for path, content in contents.items():
                old = self.trees.lookup(root, path)
                if isinstance(old, FileEntry):
                    content = self.chunks.concat([old.content, content])
                updates[path] = FileEntry(content)
            return self.trees.apply(root, updates)

        return change

    def _store_all(
        self,
        items: Iterable[tuple[str, Source]],
        progress: Callable[[int], None] | None,
        cache: StatCache | None,
        bulk: BulkStore | None = None,
    ) -> Iterator[Stored]:
        """(normalized path, Content, source if the Content came from the stat cache) for
        each item, in the order given. Local files the cache does not know are stored by a
        thread pool with a bounded window of files in flight, or by ``bulk``."""
        if bulk is not None and isinstance(items, list) and len(items) >= BULK_MIN:
            locals_only = [(p, s) for p, s in items if isinstance(s, str | os.PathLike)]
            if len(locals_only) == len(items) and len({p for p, _ in items}) == len(items):
                yield from self._store_bulk(locals_only, progress, cache, bulk)
                return
        window: deque[tuple[str, Future[Content]]] = deque()
        # Contents a remote client sent, checked together (see ``_stored``).
        sent: list[tuple[str, Content]] = []

        def drain(keep: int) -> Iterator[Stored]:
            while len(window) > keep:
                done, future = window.popleft()
                yield done, future.result(), None

        def checked() -> Iterator[Stored]:
            for done, content in self._stored(sent):
                yield done, content, None
            sent.clear()

        with ThreadPoolExecutor(_WORKERS) as pool:
            for path, source in items:
                norm = normalize(path, allow_root=False)
                if isinstance(source, Content):
                    yield from drain(0)
                    sent.append((norm, source))
                    if len(sent) >= _TREE_BATCH:
                        yield from checked()
                    continue
                yield from checked()
                if not isinstance(source, str | os.PathLike):
                    yield from drain(0)
                    yield norm, self.chunks.write(source, progress=progress), None
                    continue
                known = self._cached(source, cache)
                if known is not None:
                    if progress:
                        progress(known.size)
                    yield from drain(0)
                    yield norm, known, source
                    continue
                window.append((norm, pool.submit(self._store_local, source, progress, cache)))
                yield from drain(_WINDOW)
            yield from drain(0)
            yield from checked()

    def _store_bulk(
        self,
        items: list[tuple[str, str | os.PathLike[str]]],
        progress: Callable[[int], None] | None,
        cache: StatCache | None,
        bulk: BulkStore,
    ) -> Iterator[Stored]:
        """Distinct paths, local files only: order does not matter, so the cache's hits
        come first and the misses go to ``bulk`` (or the threads, when few)."""
        misses: list[tuple[str, Source]] = []
        for path, source in items:
            norm = normalize(path, allow_root=False)
            known = self._cached(source, cache)
            if known is None:
                misses.append((norm, source))
                continue
            if progress:
                progress(known.size)
            yield norm, known, source
        if len(misses) < BULK_MIN:
            yield from self._store_all(misses, progress, cache)
            return
        # A link stored as its target's content shares the target's local file: read once.
        where: dict[str, list[str]] = {}
        expect: dict[str, tuple[int, int] | None] = {}
        for norm, local in misses:
            name = os.fspath(local)  # type: ignore[arg-type]
            where.setdefault(name, []).append(norm)
            expect[name] = local.identity if isinstance(local, LocalFile) else None
        for name, content, st in bulk(list(expect.items())):
            if cache is not None:
                cache.record(name, st, content)
            for norm in where[name]:
                if progress:
                    progress(content.size)
                yield norm, content, None

    def _stored(self, sent: list[tuple[str, Content]]) -> Iterator[tuple[str, Content]]:
        """Each (path, Content) of ``sent`` (chunks stored before the put, by a remote
        client) once every chunk is there and each file's chunks hash to its hash.

        One index query (and one pin) for the chunks of all of them. A file of one packed
        chunk whose hash is the file's is checked by the index alone (the store checked
        the chunk's bytes against its hash when it came, and the index knows its size);
        the others are read back and hashed, by a few threads. Raises NotFound (a chunk
        is missing: send it again), CorruptObject (a hash or size is not the bytes')."""
        if not sent:
            return
        gone = self.chunks.missing(ref for _, content in sent for ref in content.chunks)
        if gone:
            raise NotFound(f"{len(gone)} chunk(s) of the files are not stored; send them")

        def alone(c: Content) -> bool:
            return len(c.chunks) == 1 and c.chunks[0] == ChunkRef(c.hash, c.size)

        sizes = self.chunks.packed_sizes(c.hash for _, c in sent if alone(c))
        reread = [(p, c) for p, c in sent if not (alone(c) and sizes.get(c.hash) == c.size)]
        if reread:
            with ThreadPoolExecutor(min(_WORKERS, len(reread))) as pool:
                for _ in pool.map(self._check_hash, reread):
                    pass
        yield from sent

    def _check_hash(self, item: tuple[str, Content]) -> None:
        path, content = item
        checked = self.chunks.concat([content])
        if (checked.hash, checked.size) != (content.hash, content.size):
            raise CorruptObject(
                f"{display(path)!r}: its chunks hash to {checked.hash}, not {content.hash}"
            )

    @staticmethod
    def _cached(source: str | os.PathLike[str], cache: StatCache | None) -> Content | None:
        if cache is None:
            return None
        if isinstance(source, LocalFile):
            return cache.lookup(source.path, source.stat)
        name = os.fspath(source)
        try:
            return cache.lookup(name, os.stat(name))
        except OSError:
            return None  # the worker's open says why

    def _store_local(
        self,
        source: str | os.PathLike[str],
        progress: Callable[[int], None] | None,
        cache: StatCache | None,
    ) -> Content:
        name = os.fspath(source)
        if isinstance(source, LocalFile):
            content, st = self.chunks.write_path(
                name, progress=progress, follow=False, expect=source.identity
            )
        else:
            content, st = self.chunks.write_path(name, progress=progress)
        if cache is not None:
            cache.record(name, st, content)
        return content

    def _recheck(
        self, batch: dict[str, FileEntry], cached: dict[str, Source], cache: StatCache | None
    ) -> dict[str, FileEntry]:
        """Store again the files whose cached Content lost a chunk (garbage collection
        removed it): the stat cache is a hint, checked in one query per batch."""
        if not cached or cache is None:
            return batch
        gone = self.chunks.missing(ref for path in cached for ref in batch[path].content.chunks)
        for path, source in cached.items():
            if gone.intersection(ref.hash for ref in batch[path].content.chunks):
                assert isinstance(source, str | os.PathLike)
                cache.forget(os.fspath(source))
                batch[path] = FileEntry(self._store_local(source, None, cache))
        return batch

    def delete_files(self, repo: str, target: str | None, paths: Iterable[str]) -> CommitInfo:
        """Remove files or whole folders. Raises NotFound if a path does not exist."""
        norms = [normalize(p, allow_root=True) for p in paths]

        def change(root: str | None) -> str | None:
            for p in norms:
                if p and self.trees.lookup(root, p) is None:
                    raise NotFound(f"{repo}@{target or 'master'}: no file {display(p)!r}")
            if "" in norms:
                return None
            return self.trees.apply(root, dict.fromkeys(norms))

        with self.pins.lease():
            return self.commit_log.update_tree(repo, target, change)

    def copy_file(self, src: Ref, repo: str, target: str | None, dst_path: str) -> CommitInfo:
        """Copy a file or folder from ``src`` to ``repo@target:dst_path`` without copying
        bytes (the new entries share chunks). Raises NotFound, also when ``src``'s commit
        is deleted while the copy is made."""
        with self.pins.lease():
            commit = self.commit_log.resolve(src)
            base = src.path or ""
            found = list(self.trees.walk(commit.tree, base))
            if not found:
                raise NotFound(f"{src}: no such file or folder")
            dst = normalize(dst_path)
            entry = self.trees.lookup(commit.tree, base)
            updates: dict[str, FileEntry | None] = {}
            for path, fe in found:
                rel = path[len(base) :].lstrip("/") if isinstance(entry, DirEntry) else ""
                name = join(dst, rel) if rel or dst else path.rpartition("/")[2]
                updates[normalize(name, allow_root=False)] = FileEntry(fe.content)
            # The copy reuses the source's chunks: pinned, they outlive the source commit;
            # and while that commit still exists after the pins, no collection that
            # missed them can have marked it unreachable (pins.py, "Why").
            self.pins.pin(
                {chunk_key(c.hash) for fe in updates.values() if fe for c in fe.content.chunks}
            )
            self.commit_log.resolve(Ref(src.repo, commit.id))
            return self.commit_log.update_tree(
                repo, target, lambda root: self.trees.apply(root, updates)
            )

    # -- reading -------------------------------------------------------------
    def _entry(self, ref: Ref) -> tuple[CommitInfo, str, Entry]:
        commit = self.commit_log.resolve(ref)
        path = ref.path or ""
        entry = self.trees.lookup(commit.tree, path)
        if entry is None:
            if not path:
                return commit, path, DirEntry("", 0, 0)
            raise NotFound(f"{ref.repo}@{commit.id}: no file {display(path)!r}")
        return commit, path, entry

    def _info(self, commit: CommitInfo, path: str, entry: Entry) -> FileInfo:
        if isinstance(entry, DirEntry):
            return FileInfo(
                commit.repo, commit.id, display(path), "dir", entry.size, entry.hash, entry.count
            )
        return FileInfo(
            commit.repo,
            commit.id,
            display(path),
            "file",
            entry.size,
            entry.hash,
            1,
            entry.datum,
            len(entry.content.chunks),
        )

    def inspect_file(self, ref: Ref) -> FileInfo:
        """The file or folder ``ref`` names. Raises NotFound."""
        return self._info(*self._entry(ref))

    def list_file(self, ref: Ref) -> list[FileInfo]:
        """A folder's direct children, or the file itself; nothing at the root of a branch
        with no commit yet (as Pachyderm lists a new output branch). Raises NotFound."""
        try:
            commit, path, entry = self._entry(ref)
        except NoCommitYet:
            if normalize(ref.path or ""):
                raise
            return []
        if isinstance(entry, FileEntry):
            return [self._info(commit, path, entry)]
        return [self._info(commit, p, e) for p, e in self.trees.children(commit.tree, path)]

    def glob_file(self, ref: Ref, pattern: str) -> list[FileInfo]:
        """Files and folders matching a Pachyderm glob, in path order (none on a branch
        with no commit yet)."""
        try:
            commit = self.commit_log.resolve(ref)
        except NoCommitYet:
            return []
        regex = compile_glob(pattern)
        return [
            self._info(commit, p, e) for p, e in self.trees.walk_all(commit.tree) if regex.match(p)
        ]

    def walk_files(self, ref: Ref) -> Iterator[tuple[str, FileEntry]]:
        """Every file at or under ``ref.path`` as (stored path, entry). Raises NotFound."""
        commit, path, _entry = self._entry(ref)
        return self.trees.walk(commit.tree, path)

    def read_file(self, ref: Ref) -> Iterator[bytes]:
        """A file's bytes, chunk by chunk. Raises NotFound, InvalidPath (for a folder)."""
        commit, path, entry = self._entry(ref)
        if not isinstance(entry, FileEntry):
            raise InvalidPath(f"{ref.repo}@{commit.id}:{display(path)!r} is a folder; use -r")
        return self.chunks.read(entry.content)

    def read_file_range(self, ref: Ref, start: int, end: int | None = None) -> Iterator[bytes]:
        """Bytes ``start`` to ``end`` (exclusive; None or past the size: to the end) of a
        file, reading only the chunks that hold them. Raises NotFound, InvalidPath (for a
        folder), FieldError (a negative offset)."""
        commit, path, entry = self._entry(ref)
        if not isinstance(entry, FileEntry):
            raise InvalidPath(f"{ref.repo}@{commit.id}:{display(path)!r} is a folder")
        size = entry.content.size
        return self.chunks.read_range(entry.content, start, size if end is None else end)

    def diff_file(self, new: Ref, old: Ref | None = None) -> list[FileChange]:
        """Files added, modified or deleted from ``old`` (default: the parent of ``new``)
        to ``new``: ``new.path`` against ``old.path`` (default: the same path), as
        ``pachctl diff file new-commit:path old-commit:path`` compares them."""
        new_commit = self.commit_log.resolve(new)
        if old is None:
            old_tree = (
                self.commit_log.resolve(Ref(new.repo, new_commit.parent)).tree
                if new_commit.parent
                else None
            )
        else:
            old_tree = self.commit_log.resolve(old).tree
        out = []
        old_path = old.path if old is not None and old.path is not None else None
        for path, a, b in self.trees.diff(old_tree, new_commit.tree, new.path or "", old_path):
            status = "added" if a is None else "deleted" if b is None else "modified"
            out.append(
                FileChange(
                    display(path),
                    status,
                    a.hash if a else None,
                    b.hash if b else None,
                    a.size if a else None,
                    b.size if b else None,
                )
            )
        return out
