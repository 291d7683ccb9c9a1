"""Garbage collection (cairn.data.gc): reachable data always survives, the rest goes."""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from cairn.catalog import CatalogChunkIndex, open_catalog
from cairn.data import DataStore, NotFound
from cairn.data.errors import StoreDamaged
from cairn.data.fsck import check_store
from cairn.data.gc import LiveKeys, collect_garbage
from cairn.storage import ChunkStore, LocalObjectStore, MemoryObjectStore, ObjectStore
from cairn.storage.packs import encode_pack

from .helpers import files, put_bytes

STORED = ("chunks/", "packs/", "trees/")


def _open(root: Path, backend: str, *, pack_size: int) -> DataStore:
    catalog = open_catalog(f"sqlite:///{root}/catalog.db")
    objects: ObjectStore = (
        LocalObjectStore(root / "objects", fsync=False)
        if backend == "local"
        else MemoryObjectStore()
    )
    index = CatalogChunkIndex(catalog)
    return DataStore(catalog, ChunkStore(objects, avg_size=256, index=index, pack_size=pack_size))


@pytest.fixture
def make_packed(make_store: Callable[..., DataStore]) -> Callable[..., DataStore]:
    """DataStores of every backend pair with small chunks, small packs and the catalog's
    chunk index."""

    def make(*, pack_size: int = 2048) -> DataStore:
        base = make_store(avg_size=256)
        index = CatalogChunkIndex(base.catalog)
        chunks = ChunkStore(base.chunks.objects, avg_size=256, index=index, pack_size=pack_size)
        return DataStore(base.catalog, chunks)

    return make


def stored(store: DataStore) -> set[str]:
    objects = store.chunks.objects
    return {key for prefix in STORED for key in objects.list(prefix)}


def blob(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def age_everything(store: DataStore, seconds: float = 7200) -> None:
    """Make every stored object look ``seconds`` old (local folders only)."""
    objects = store.chunks.objects
    assert isinstance(objects, LocalObjectStore)
    then = time.time() - seconds
    for key in objects.list():
        os.utime(objects.root / key, (then, then))


# -- the model-based test --------------------------------------------------------------
REPOS = ("alpha", "beta", "gamma")
BRANCHES = ("master", "dev", "tmp")
PATHS = ("a.bin", "b/c.bin", "b/d.bin", "e/f/g.bin", "h.bin")


class GcMachine(RuleBasedStateMachine):
    """Random puts, deletes, branches, open commits and collections; after every
    collection every commit the catalog still holds reads back byte for byte."""

    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="cairn-gc-"))
        self.store = _open(self.root, "memory", pack_size=1024)
        # (repo, commit id) -> {path: bytes}: what every commit must hold.
        self.model: dict[tuple[str, str], dict[str, bytes]] = {}
        self.repos: set[str] = set()
        self.collections = 0

    def teardown(self) -> None:
        try:
            for repo in list(self.repos):
                self.store.delete_repo(repo)
            before = stored(self.store)
            report = collect_garbage(self.store, grace=0)
            assert stored(self.store) == set()
            assert list(self.store.chunks.index.scan()) == []
            assert report.objects_removed >= len(before) or not before
        finally:
            self.store.catalog.dispose()
            shutil.rmtree(self.root, ignore_errors=True)

    def _head(self, repo: str, branch: str) -> str | None:
        try:
            return self.store.inspect_branch(repo, branch).head
        except NotFound:
            return None

    def _open_head(self, repo: str, branch: str) -> bool:
        head = self._head(repo, branch)
        return head is not None and self.store.inspect_commit(repo, head).state == "open"

    def _record(self, repo: str, before: str | None, after: str, files: dict[str, bytes]) -> None:
        self.model[(repo, after)] = files

    @rule(repo=st.sampled_from(REPOS))
    def create_repo(self, repo: str) -> None:
        if repo not in self.repos:
            self.store.create_repo(repo)
            self.repos.add(repo)

    @precondition(lambda self: self.repos)
    @rule(
        data=st.data(),
        branch=st.sampled_from(BRANCHES),
        path=st.sampled_from(PATHS),
        seed=st.integers(0, 4),
        size=st.integers(0, 3000),
    )
    def put(self, data: st.DataObject, branch: str, path: str, seed: int, size: int) -> None:
        repo = data.draw(st.sampled_from(sorted(self.repos)))
        head = self._head(repo, branch)
        body = blob(seed, size)
        info = put_bytes(self.store, repo, branch, path, body)
        base = self.model.get((repo, head), {}) if head else {}
        self.model[(repo, info.id)] = {**base, path: body}

    @precondition(lambda self: self.repos)
    @rule(data=st.data(), branch=st.sampled_from(BRANCHES))
    def delete_file(self, data: st.DataObject, branch: str) -> None:
        repo = data.draw(st.sampled_from(sorted(self.repos)))
        head = self._head(repo, branch)
        current = self.model.get((repo, head), {}) if head else {}
        if not current:
            return
        path = data.draw(st.sampled_from(sorted(current)))
        info = self.store.delete_files(repo, branch, [path])
        self.model[(repo, info.id)] = {p: b for p, b in current.items() if p != path}

    @precondition(lambda self: self.repos)
    @rule(data=st.data())
    def delete_repo(self, data: st.DataObject) -> None:
        repo = data.draw(st.sampled_from(sorted(self.repos)))
        self.store.delete_repo(repo)
        self.repos.discard(repo)
        self.model = {k: v for k, v in self.model.items() if k[0] != repo}

    @precondition(lambda self: self.repos)
    @rule(data=st.data(), source=st.sampled_from(BRANCHES), name=st.sampled_from(BRANCHES))
    def create_branch(self, data: st.DataObject, source: str, name: str) -> None:
        repo = data.draw(st.sampled_from(sorted(self.repos)))
        if source == name or self._head(repo, source) is None:
            return
        self.store.create_branch(repo, name, source)

    @precondition(lambda self: self.repos)
    @rule(data=st.data(), name=st.sampled_from(BRANCHES))
    def delete_branch(self, data: st.DataObject, name: str) -> None:
        repo = data.draw(st.sampled_from(sorted(self.repos)))
        if any(b.name == name for b in self.store.list_branches(repo)):
            self.store.delete_branch(repo, name)

    @precondition(lambda self: self.repos)
    @rule(data=st.data(), branch=st.sampled_from(BRANCHES))
    def start_commit(self, data: st.DataObject, branch: str) -> None:
        repo = data.draw(st.sampled_from(sorted(self.repos)))
        if self._open_head(repo, branch):
            return
        head = self._head(repo, branch)
        info = self.store.start_commit(repo, branch)
        self.model[(repo, info.id)] = dict(self.model.get((repo, head), {}) if head else {})

    @precondition(lambda self: self.repos)
    @rule(data=st.data(), branch=st.sampled_from(BRANCHES))
    def finish_commit(self, data: st.DataObject, branch: str) -> None:
        repo = data.draw(st.sampled_from(sorted(self.repos)))
        if self._open_head(repo, branch):
            self.store.finish_commit(repo, branch)

    @rule()
    def gc(self) -> None:
        collect_garbage(self.store, grace=0)
        self.collections += 1
        self.check_every_commit()

    def check_every_commit(self) -> None:
        for (repo, commit_id), expected in self.model.items():
            assert files(self.store, f"{repo}@{commit_id}") == expected

    @invariant()
    def catalog_matches_model(self) -> None:
        held = {
            (repo, c.id) for repo in self.repos for c in self.store.list_commits(repo) if c.tree
        }
        assert held <= set(self.model)


GcMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestGcMachine = GcMachine.TestCase


# -- targeted tests ----------------------------------------------------------------------
def test_gc_keeps_reachable_and_reclaims_a_deleted_repo(make_packed):
    store = make_packed()
    for repo in ("keep", "drop"):
        store.create_repo(repo)
        for i in range(12):
            put_bytes(store, repo, None, f"f{i}.bin", blob(hash((repo, i)) % 1000, 200 + 150 * i))
    kept = files(store, "keep@master")
    store.delete_repo("drop")
    before = stored(store)
    report = collect_garbage(store, grace=0)
    after = stored(store)
    assert after < before
    assert report.removed["chunk"].objects + report.removed["pack"].objects > 0
    assert report.bytes_removed > 0
    assert files(store, "keep@master") == kept
    assert check_store(store).ok


def test_gc_dry_run_deletes_nothing(make_packed):
    store = make_packed()
    store.create_repo("r")
    for i in range(8):
        put_bytes(store, "r", None, f"f{i}", blob(i, 1500))
    store.delete_repo("r")
    before = stored(store)
    rows = sorted(loc.hash for loc in store.chunks.index.scan())
    report = collect_garbage(store, grace=0, dry_run=True)
    assert report.dry_run and report.objects_removed > 0 and report.bytes_removed > 0
    assert stored(store) == before
    assert sorted(loc.hash for loc in store.chunks.index.scan()) == rows
    real = collect_garbage(store, grace=0)
    assert real.objects_removed == report.objects_removed
    assert stored(store) == set()


@pytest.mark.parametrize("backend", ["local"])
def test_gc_never_deletes_objects_younger_than_the_grace(make_packed):
    store = make_packed()
    store.create_repo("old")
    put_bytes(store, "old", None, "x", blob(1, 2500))
    store.delete_repo("old")
    age_everything(store)
    old = stored(store)
    store.create_repo("new")
    put_bytes(store, "new", None, "y", blob(2, 2500))
    store.delete_repo("new")
    young = stored(store) - old
    assert young
    report = collect_garbage(store, grace=3600)
    assert stored(store) == young
    assert report.kept_young == len(young)
    assert collect_garbage(store, grace=3600).objects_removed == 0
    collect_garbage(store, grace=0)
    assert stored(store) == set()


def test_gc_spares_unknown_ages_unless_grace_is_zero(make_store):
    store = make_store()
    if not isinstance(store.chunks.objects, MemoryObjectStore):
        pytest.skip("the in-memory store keeps no times")
    store.create_repo("r")
    put_bytes(store, "r", None, "x", blob(1, 2000))
    store.delete_repo("r")
    before = stored(store)
    assert collect_garbage(store).objects_removed == 0
    assert stored(store) == before


@pytest.mark.parametrize("backend", ["local"])
def test_gc_keeps_what_an_open_job_may_still_commit(make_packed):
    store = make_packed()
    store.create_repo("r")
    put_bytes(store, "r", None, "x", blob(1, 2500))
    store.delete_repo("r")
    age_everything(store, 60)
    job_started = time.time() - 120
    assert collect_garbage(store, grace=0, keep_newer_than=job_started).objects_removed == 0
    assert collect_garbage(store, grace=0, keep_newer_than=time.time()).objects_removed > 0


def test_gc_rewrites_a_mostly_dead_pack(make_packed):
    store = make_packed(pack_size=1 << 20)
    store.create_repo("a")
    small, big = blob(7, 40), blob(8, 90)
    store.put_files("a", None, [("small", _stream(small)), ("big", _stream(big))])
    store.create_repo("b")
    put_bytes(store, "b", None, "copy", small)  # deduplicated: only a row in a's pack
    [pack] = [k for k in store.chunks.objects.list("packs/")]
    store.delete_repo("a")
    report = collect_garbage(store, grace=0)
    assert report.packs_rewritten == 1
    assert report.index_rows_removed == 1
    [new_pack] = [k for k in store.chunks.objects.list("packs/")]
    assert new_pack != pack
    assert {loc.pack for loc in store.chunks.index.scan()} == {new_pack}
    assert files(store, "b@master") == {"copy": small}
    assert check_store(store).ok


def test_gc_leaves_a_pack_with_little_dead_data(make_packed):
    store = make_packed(pack_size=1 << 20)
    store.create_repo("a")
    small, big = blob(7, 40), blob(8, 90)
    store.put_files("a", None, [("small", _stream(small)), ("big", _stream(big))])
    store.create_repo("b")
    put_bytes(store, "b", None, "copy", big)
    before = stored(store)
    store.delete_repo("a")
    report = collect_garbage(store, grace=0)
    assert report.packs_rewritten == 0
    assert {k for k in stored(store) if k.startswith("packs/")} == {
        k for k in before if k.startswith("packs/")
    }
    assert files(store, "b@master") == {"copy": big}


def test_gc_removes_orphan_packs(make_packed):
    store = make_packed()
    key, body, _locations = encode_pack([("ab" * 32, b"\x00xyz", 3)])
    store.chunks.objects.put(key, body)  # written, never indexed: a crash in between
    report = collect_garbage(store, grace=0)
    assert report.removed["pack"].objects == 1
    assert not store.chunks.objects.exists(key)


def test_gc_leaves_index_rows_of_missing_packs_for_fsck(make_packed):
    store = make_packed()
    store.create_repo("r")
    put_bytes(store, "r", None, "x", blob(3, 100))
    [pack] = list(store.chunks.objects.list("packs/"))
    store.chunks.objects.delete(pack)
    store.delete_repo("r")
    collect_garbage(store, grace=0)
    assert {loc.pack for loc in store.chunks.index.scan()} == {pack}


def test_gc_sweeps_what_a_layer_above_owns(make_packed):
    store = make_packed()
    objects = store.chunks.objects
    for key in ("logs/p/j1/d", "logs/p/j1/job", "logs/p/j2/d", "logs/q/j3/d"):
        objects.put(key, b"log line\n")
    rule = LiveKeys("log", "logs/", lambda key: key.split("/")[2] == "j1")
    report = collect_garbage(store, grace=0, owned=[rule])
    assert report.removed["log"].objects == 2
    assert sorted(objects.list("logs/")) == ["logs/p/j1/d", "logs/p/j1/job"]


def test_gc_refuses_to_sweep_when_a_commit_is_damaged(make_packed):
    store = make_packed()
    store.create_repo("r")
    info = put_bytes(store, "r", None, "x", blob(4, 900))
    store.create_repo("gone")
    put_bytes(store, "gone", None, "y", blob(5, 900))
    store.delete_repo("gone")
    assert info.tree is not None
    store.chunks.objects.delete(f"trees/{info.tree[:2]}/{info.tree}")
    before = stored(store)
    with pytest.raises(StoreDamaged):
        collect_garbage(store, grace=0)
    assert stored(store) == before


def test_gc_rejects_bad_arguments(make_packed):
    store = make_packed()
    with pytest.raises(ValueError):
        collect_garbage(store, grace=-1)
    with pytest.raises(ValueError):
        collect_garbage(store, repack_ratio=2)


def _stream(data: bytes):
    import io

    return io.BytesIO(data)
