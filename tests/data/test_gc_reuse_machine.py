"""Model-based test of garbage collection beside puts that reuse garbage (issue 20).

Random puts (small packed files, large files of loose chunks, bytes of deleted repos
again), deletes of files and repos, copies, and collections with ``grace`` 0 at
random points: on their own, in the middle of a put's stream (after some of its
dedup decisions), and between a put's last decision and its commit (after its tree
and pack buffer are written), where a copy's source repo may also be deleted. The
writer and the collector are two DataStores over one catalog and one object store,
as two processes would be. After every step that ran a collection, every commit the
model holds reads back byte for byte through a store without caches, and fsck finds
nothing wrong; at the end no lease is open and no pin is left.

1,000 examples run in CI (issue 20's bar): the catalog is one in-memory SQLite
database, emptied between examples, and objects live in memory.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
)
from sqlalchemy import delete, func, insert, select

from cairn.catalog import Catalog, CatalogChunkIndex, open_catalog
from cairn.catalog.schema import (
    branches,
    chunks,
    commit_provenance,
    commits,
    gc_state,
    leases,
    pins,
    repos,
)
from cairn.data import CommitInfo, DataStore
from cairn.data.fsck import check_store
from cairn.data.gc import collect_garbage
from cairn.data.refs import Ref
from cairn.storage import ChunkStore, MemoryObjectStore, ObjectStore

AVG = 256  # chunks of 64..1024 bytes: under 128 bytes packed, the rest loose
PACK = 600  # bytes per pack: several packs per example, so some are rewritten
REPOS = ("r1", "r2", "r3")
PATHS = ("a.bin", "d/b.bin", "d/e/c.bin", "f.bin")
# Small (one packed chunk), mid (a few chunks) and large (loose chunks and a tail).
BLOBS = tuple(
    random.Random(seed).randbytes(size)
    for seed, size in ((1, 40), (2, 100), (3, 120), (4, 500), (5, 1300))
)
# When a put collects: not at all, or inside it (see the module doc). Collections after
# a step come with the deletes of repos, which make the garbage.
WHEN = ("never", "mid_stream", "before_commit")

_catalog: Catalog | None = None


def shared_catalog() -> Catalog:
    """One in-memory catalog for every example (creating the tables costs more than an
    example), emptied here but for the empty repos of REPOS."""
    global _catalog
    if _catalog is None:
        _catalog = open_catalog("sqlite://")
    with _catalog.write() as conn:
        for table in (pins, leases, gc_state, chunks, commit_provenance, branches, commits, repos):
            conn.execute(delete(table))
        conn.execute(insert(repos), [{"name": r, "type": "user", "created": 0.0} for r in REPOS])
    return _catalog


def data_store(catalog: Catalog, objects: ObjectStore) -> DataStore:
    index = CatalogChunkIndex(catalog)
    return DataStore(catalog, ChunkStore(objects, avg_size=AVG, index=index, pack_size=PACK))


class CollectAtEnd(io.BytesIO):
    """A file's bytes; reading past its end runs ``collect`` once: by then the put has
    stored (or found stored) this file's loose chunks and buffered its small ones."""

    def __init__(self, data: bytes, collect: Callable[[], None]) -> None:
        super().__init__(data)
        self.collect: Callable[[], None] | None = collect

    def read(self, n: int | None = -1) -> bytes:
        piece = super().read(n)
        if not piece and self.collect is not None:
            collect, self.collect = self.collect, None
            collect()
        return piece


class ReuseGcMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        catalog = shared_catalog()
        self.objects = MemoryObjectStore()
        self.writer = data_store(catalog, self.objects)
        self.collector = data_store(catalog, self.objects)
        # repo -> files at master's head; (repo, commit id) -> (tree, files): what must
        # read back.
        self.heads: dict[str, dict[str, bytes]] = {repo: {} for repo in REPOS}
        self.commits: dict[tuple[str, str], tuple[str | None, dict[str, bytes]]] = {}
        self.collected = False

    # -- helpers -------------------------------------------------------------------
    def collect(self) -> None:
        collect_garbage(self.collector, grace=0)
        self.collected = True

    def commit(self, repo: str, info: CommitInfo, head: dict[str, bytes]) -> None:
        self.heads[repo] = head
        self.commits[(repo, info.id)] = (info.tree, head)

    def forget(self, repo: str) -> None:
        del self.heads[repo]
        self.commits = {k: v for k, v in self.commits.items() if k[0] != repo}

    def collect_before_commit(self, before: Callable[[], None] = lambda: None) -> None:
        """Run ``before`` and a collection once, when the next put flushes its pack buffer
        (the tree is written; the commit comes next)."""
        flush = self.writer.chunks.flush

        def flush_then_collect() -> None:
            flush()
            self.writer.chunks.flush = flush  # type: ignore[method-assign]
            before()
            self.collect()

        self.writer.chunks.flush = flush_then_collect  # type: ignore[method-assign]

    # -- rules ---------------------------------------------------------------------
    @rule(
        data=st.data(),
        chosen=st.dictionaries(
            st.sampled_from(PATHS), st.integers(0, len(BLOBS) - 1), min_size=1, max_size=3
        ),
        when=st.sampled_from(WHEN),
    )
    def put(self, data: st.DataObject, chosen: dict[str, int], when: str) -> None:
        repo = data.draw(st.sampled_from(REPOS))
        items: list[tuple[str, io.BytesIO]] = [(p, io.BytesIO(BLOBS[i])) for p, i in chosen.items()]
        if when == "mid_stream":
            path, last = items[-1]
            items[-1] = (path, CollectAtEnd(last.getvalue(), self.collect))
        elif when == "before_commit":
            self.collect_before_commit()
        info = self.writer.put_files(repo, None, items)
        self.commit(repo, info, {**self.heads[repo], **{p: BLOBS[i] for p, i in chosen.items()}})

    @rule(data=st.data(), when=st.sampled_from(WHEN[::2]))
    def delete_file(self, data: st.DataObject, when: str) -> None:
        full = sorted(r for r, f in self.heads.items() if f)
        if not full:
            return
        repo = data.draw(st.sampled_from(full))
        path = data.draw(st.sampled_from(sorted(self.heads[repo])))
        if when == "before_commit":
            self.collect_before_commit()
        info = self.writer.delete_files(repo, None, [path])
        head = {p: b for p, b in self.heads[repo].items() if p != path}
        self.commit(repo, info, head)

    @rule(repo=st.sampled_from(REPOS), collect=st.booleans())
    def delete_repo(self, repo: str, collect: bool = False) -> None:
        """Delete a repo (its objects become garbage) and create it again, empty."""
        self.writer.delete_repo(repo)
        self.forget(repo)
        self.writer.create_repo(repo)
        self.heads[repo] = {}
        if collect:
            self.collect()

    @rule(data=st.data(), drop_source=st.booleans())
    def copy_then_collect(self, data: st.DataObject, drop_source: bool) -> None:
        """Copy a file between repos; before the copy commits, maybe delete the source
        repo, then collect: the copy's chunks must survive both."""
        full = sorted(r for r, f in self.heads.items() if f)
        if not full:
            return
        src = data.draw(st.sampled_from(full))
        dst = data.draw(st.sampled_from(sorted(set(self.heads) - {src})))
        path = data.draw(st.sampled_from(sorted(self.heads[src])))
        body = self.heads[src][path]

        def before() -> None:
            if drop_source:
                self.delete_repo(src)

        self.collect_before_commit(before)
        info = self.writer.copy_file(Ref(src, "master", path=path), dst, None, path)
        self.commit(dst, info, {**self.heads[dst], path: body})

    # -- checks --------------------------------------------------------------------
    @invariant()
    def every_commit_reads_back(self) -> None:
        if not self.collected:
            return  # only a collection deletes anything
        self.collected = False
        reader = data_store(self.writer.catalog, self.objects)
        for tree, expected in self.commits.values():
            stored = {p: reader.chunks.read_bytes(e.content) for p, e in reader.trees.walk(tree)}
            assert stored == expected
        report = check_store(reader)
        assert report.ok, report.problems

    def teardown(self) -> None:
        # Every lease closed, and with the last one every pin went.
        with self.writer.catalog.read() as conn:
            assert conn.execute(select(func.count()).select_from(leases)).scalar_one() == 0
            assert conn.execute(select(func.count()).select_from(pins)).scalar_one() == 0


ReuseGcMachine.TestCase.settings = settings(
    max_examples=1000,
    stateful_step_count=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestReuseGcMachine = ReuseGcMachine.TestCase
