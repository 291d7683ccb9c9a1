"""Trees laid over trees, and puts of local files: batches, the stat cache, get_local.

Pins: ``overlay(base, apply(None, delta)) == apply(base, delta)`` (conflicts included);
an unchanged apply or overlay writes no node; put_files gives one tree whatever the
tree batch, keeps the last of a path given twice and the order of streams and paths;
a put again of an unchanged folder reads no file, a partly changed one reads only the
changed files, and a stat cache entry whose chunks are gone is stored again.
"""

from __future__ import annotations

import io
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import blake3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cairn.api.embedded.local as local_module
import cairn.data.files as files_module
from cairn.client import Client
from cairn.data import (
    DataStore,
    FileEntry,
    InvalidPath,
    PathConflict,
    Skipped,
    SkipReason,
    StatCache,
    TreeStore,
)
from cairn.storage import ChunkRef, ChunkStore, MemoryObjectStore, NotRegularFile

from .helpers import files, put_bytes

OLD = time.time() - 1000

# -- overlay ------------------------------------------------------------------------

Model = dict[str, tuple[bytes, str | None]]
components = st.sampled_from(["a", "b", "c"])
paths = st.lists(components, min_size=1, max_size=3).map("/".join)
values = st.tuples(st.binary(max_size=8), st.sampled_from([None, "datum-1"]))


def without_conflicts(model: Model) -> Model:
    return {p: v for p, v in model.items() if not any(o.startswith(p + "/") for o in model)}


trees_of_files = st.dictionaries(paths, values, max_size=10).map(without_conflicts)


class CountingObjects(MemoryObjectStore):
    def __init__(self) -> None:
        super().__init__()
        self.puts: list[str] = []

    def put(self, key: str, data: bytes) -> None:
        self.puts.append(key)
        super().put(key, data)


class Trees:
    def __init__(self) -> None:
        self.objects = CountingObjects()
        self.chunks = ChunkStore(self.objects, avg_size=256)
        self.trees = TreeStore(self.objects)

    def entries(self, model: Model) -> dict[str, FileEntry | None]:
        return {p: FileEntry(self.chunks.write(io.BytesIO(b)), d) for p, (b, d) in model.items()}

    def build(self, model: Model, root: str | None = None) -> str | None:
        return self.trees.apply(root, self.entries(model))

    def node_writes(self) -> int:
        return sum(1 for k in self.objects.puts if k.startswith("trees/"))


def _outcome(fn) -> str | None | type[PathConflict]:
    try:
        return fn()
    except PathConflict:
        return PathConflict


@settings(max_examples=150, deadline=None)
@given(trees_of_files, trees_of_files)
def test_overlay_of_a_delta_tree_equals_applying_the_delta(base: Model, delta: Model) -> None:
    t = Trees()
    root = t.build(base)
    changes = t.entries(delta)

    applied = _outcome(lambda: t.trees.apply(root, changes))
    overlaid = _outcome(lambda: t.trees.overlay(root, t.trees.apply(None, changes)))

    assert overlaid == applied
    if applied is not PathConflict:
        fresh = Trees()
        merged = {**base, **delta}
        assert applied == fresh.build(merged)


@settings(max_examples=50, deadline=None)
@given(trees_of_files)
def test_overlay_with_an_empty_side_is_the_other_side(model: Model) -> None:
    t = Trees()
    root = t.build(model)
    assert t.trees.overlay(None, root) == root
    assert t.trees.overlay(root, None) == root
    assert t.trees.overlay(root, root) == root
    assert t.trees.overlay(None, None) is None


@settings(max_examples=50, deadline=None)
@given(trees_of_files, st.data())
def test_unchanged_apply_and_overlay_write_no_node(model: Model, data: st.DataObject) -> None:
    t = Trees()
    root = t.build(model)
    entries = dict(t.trees.walk(root))
    picked = data.draw(st.sets(st.sampled_from(sorted(entries)))) if entries else set()
    subset: dict[str, FileEntry | None] = {p: entries[p] for p in picked}
    sub_root = t.trees.apply(None, subset)
    before = t.node_writes()

    assert t.trees.apply(root, subset) == root
    assert t.trees.overlay(root, sub_root) == root
    assert t.node_writes() == before


def test_overlay_rewrites_only_the_folders_on_changed_paths() -> None:
    t = Trees()
    base = {f"d{i}/e{j}/f": (bytes([i, j]), None) for i in range(5) for j in range(5)}
    root = t.build(base)
    delta = t.build({"d1/e1/f": (b"new", None), "d1/new/x": (b"y", None)}, None)
    before = t.node_writes()

    merged = t.trees.overlay(root, delta)

    assert t.node_writes() - before == 3  # root, d1, d1/e1; d1/new is taken whole
    assert merged == Trees().build({**base, "d1/e1/f": (b"new", None), "d1/new/x": (b"y", None)})


# -- put_files ------------------------------------------------------------------------


def _old_files(folder: Path, count: int, seed: int = 0) -> dict[str, Path]:
    rng = random.Random(seed)
    out = {}
    for i in range(count):
        p = folder / f"g{i % 4}" / f"f{i:03}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.randbytes(rng.choice([0, 1, 50, 300, 2000])))
        os.utime(p, (OLD, OLD))
        out[f"/{p.relative_to(folder)}"] = p
    return out


def _tree(store: DataStore, repo: str) -> str | None:
    return store.inspect_commit(repo, "master").tree


def test_put_files_in_many_tree_batches_gives_the_one_batch_tree(
    store: DataStore, make_repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = _old_files(tmp_path / "src", 30)
    one, many = make_repo(), make_repo()

    def items() -> list:
        streams = [(f"/streams/{i}", io.BytesIO(bytes([i]) * i)) for i in range(10)]
        return [*local.items(), *streams]

    store.put_files(one, None, items())
    monkeypatch.setattr(files_module, "_TREE_BATCH", 7)
    store.put_files(many, None, items())

    assert _tree(store, many) == _tree(store, one)
    got = files(store, f"{many}@master")
    assert {p: got[p.lstrip("/")] for p in local} == {p: f.read_bytes() for p, f in local.items()}


def test_a_path_given_twice_keeps_the_last(
    store: DataStore, repo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files_module, "_TREE_BATCH", 7)
    local = _old_files(tmp_path / "src", 20)
    dup = tmp_path / "dup.bin"
    dup.write_bytes(b"from a path")
    items: list = [(f"/x/{i}", io.BytesIO(b"first %d" % i)) for i in range(20)]
    items[3] = ("/same", io.BytesIO(b"early stream"))
    items[15] = ("/same", io.BytesIO(b"late stream"))  # another tree batch
    items[5] = ("/both", io.BytesIO(b"stream first"))
    items[6] = ("/both", dup)  # a path after a stream in one batch
    items += [("/rev", dup), ("/rev", io.BytesIO(b"stream last"))]
    items += [(p, f) for p, f in local.items()]
    items += [("/g0/f000.bin", io.BytesIO(b"stream over a path"))]

    store.put_files(repo, None, items)
    got = files(store, f"{repo}@master")

    assert got["same"] == b"late stream"
    assert got["both"] == b"from a path"
    assert got["rev"] == b"stream last"
    assert got["g0/f000.bin"] == b"stream over a path"
    assert got["g1/f001.bin"] == local["/g1/f001.bin"].read_bytes()


def test_a_cached_path_after_an_uncached_one_still_wins(
    store: DataStore, repo: str, tmp_path: Path
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_bytes(b"uncached " * 100)
    second.write_bytes(b"cached")
    os.utime(second, (OLD, OLD))
    cache = StatCache(tmp_path / "statcache.db")
    content, st_result = store.chunks.write_path(second)
    cache.record(str(second), st_result, content)
    cache.save()
    cache.preload(tmp_path)

    store.put_files(
        repo, None, [("/f", first), ("/f", second), ("/g", second), ("/g", first)], cache=cache
    )
    cache.close()

    got = files(store, f"{repo}@master")
    assert got == {"f": b"cached", "g": b"uncached " * 100}


# -- Client.put_local and get_local ----------------------------------------------------


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    c = Client.open(tmp_path / "home", auto_run=False)
    c.create_repo("r")
    yield c


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The local files ChunkStore.write_path opens, in any order."""
    seen: list[str] = []
    real = ChunkStore.write_path

    def counting(self, path, **kwargs):
        seen.append(os.fspath(path))
        return real(self, path, **kwargs)

    monkeypatch.setattr(ChunkStore, "write_path", counting)
    return seen


def _folder(root: Path, count: int = 40) -> dict[str, bytes]:
    rng = random.Random(1)
    out = {}
    for i in range(count):
        rel = f"sub{i % 3}/deeper/f{i:03}.bin" if i % 2 else f"f{i:03}.bin"
        data = rng.randbytes(rng.choice([0, 1, 100, 5000, 70_000]))
        if i == 7:
            data = rng.randbytes(1_300_000)  # several loose chunks and a packed tail
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        os.utime(p, (OLD, OLD))
        out[rel] = data
    return out


def _local_tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_a_second_put_of_an_unchanged_folder_reads_no_file(
    client: Client, tmp_path: Path, reads: list[str]
) -> None:
    src = tmp_path / "src"
    data = _folder(src)
    first = client.put_local("r@master:/", [str(src)], recursive=True)
    assert len(reads) == len(data)
    reads.clear()

    second = client.put_local("r@master:/", [str(src)], recursive=True)

    assert reads == []
    assert second.tree == first.tree
    client.get_local("r@master:/", tmp_path / "out")
    assert _local_tree(tmp_path / "out") == data


def test_a_put_after_changes_reads_only_the_changed_files(
    client: Client, tmp_path: Path, reads: list[str]
) -> None:
    src = tmp_path / "src"
    _folder(src)
    client.put_local("r@master:/data/", [str(src)], recursive=True)
    reads.clear()
    changed = ["f000.bin", "sub1/deeper/f001.bin", "sub1/deeper/f007.bin"]
    for i, rel in enumerate(changed):
        (src / rel).write_bytes(b"changed %d" % i)
        os.utime(src / rel, (OLD + 10, OLD + 10))
    added = ["new.bin", "sub9/new2.bin"]
    for rel in added:
        (src / rel).parent.mkdir(exist_ok=True)
        (src / rel).write_bytes(rel.encode())
        os.utime(src / rel, (OLD, OLD))

    client.put_local("r@master:/data/", [str(src)], recursive=True)

    assert sorted(reads) == sorted(str(src / rel) for rel in changed + added)
    diff = {(c.path, c.status) for c in client.diff_file("r@master")}
    assert diff == {(f"/data/{rel}", "modified") for rel in changed} | {
        (f"/data/{rel}", "added") for rel in added
    }
    client.get_local("r@master:/data", tmp_path / "out")
    assert _local_tree(tmp_path / "out") == _local_tree(src)


def test_a_cached_entry_whose_chunks_are_gone_is_stored_again(
    client: Client, tmp_path: Path, reads: list[str]
) -> None:
    src = tmp_path / "src"
    data = _folder(src, 20)
    client.put_local("r@master:/", [str(src)], recursive=True)
    client.get_local("r@master:/", tmp_path / "warm")  # fills the location cache
    chunks = client.data.chunks
    chunks.index.remove([loc.hash for loc in chunks.index.scan()])
    for key in [*chunks.objects.list("packs/"), *chunks.objects.list("chunks/")]:
        chunks.objects.delete(key)
    reads.clear()

    client.put_local("r@master:/", [str(src)], recursive=True)

    assert len(reads) == len([d for d in data.values() if d])
    client.get_local("r@master:/", tmp_path / "out")
    assert _local_tree(tmp_path / "out") == data
    assert client.fsck().problems == []


def test_a_put_after_gc_of_a_deleted_repo_stores_the_files_again(
    client: Client, tmp_path: Path, reads: list[str]
) -> None:
    src = tmp_path / "src"
    data = _folder(src, 20)
    client.put_local("r@master:/", [str(src)], recursive=True)
    client.get_local("r@master:/", tmp_path / "warm")
    client.delete_repo("r")
    client.gc(grace=0)
    assert list(client.data.chunks.index.scan()) == []
    client.create_repo("r")
    reads.clear()

    client.put_local("r@master:/", [str(src)], recursive=True)

    assert reads  # the stat cache was only a hint
    client.get_local("r@master:/", tmp_path / "out")
    assert _local_tree(tmp_path / "out") == data
    fresh = Client.open(tmp_path / "home", auto_run=False)
    fresh.get_local("r@master:/", tmp_path / "cold")
    assert _local_tree(tmp_path / "cold") == data


def test_a_second_put_of_a_relative_folder_reads_no_file(
    client: Client, tmp_path: Path, reads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _folder(tmp_path / "src", 10)
    monkeypatch.chdir(tmp_path)
    client.put_local("r@master:/", ["src"], recursive=True)
    reads.clear()
    client.put_local("r@master:/", ["src"], recursive=True)
    assert reads == []


def test_get_local_of_many_small_files_is_byte_identical(client: Client, tmp_path: Path) -> None:
    src = tmp_path / "src"
    rng = random.Random(3)
    for i in range(300):
        p = src / f"d{i % 5}" / f"{i}.txt"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.randbytes(rng.randint(0, 3000)))
    client.put_local("r@master:/in/", [str(src)], recursive=True)

    fresh = Client.open(tmp_path / "home", auto_run=False)
    finds = 0
    real_find = fresh.data.chunks.index.find

    def counting(hashes):
        nonlocal finds
        finds += 1
        return real_find(hashes)

    fresh.data.chunks.index.find = counting  # type: ignore[method-assign]
    written = fresh.get_local("r@master:/in", tmp_path / "out")

    assert len(written) == 300
    assert _local_tree(tmp_path / "out") == _local_tree(src)
    assert finds == 1  # one prefetch for the lot
    one = fresh.get_local("r@master:/in/d1/1.txt", tmp_path / "one.txt")
    assert one == [tmp_path / "one.txt"]
    assert (tmp_path / "one.txt").read_bytes() == (src / "d1" / "1.txt").read_bytes()


# -- links, pipes and devices on the way in and out ------------------------------------


def _linked_folder(tmp_path: Path) -> Path:
    """A folder with a file, a subfolder, and a link of every kind a walk meets."""
    (tmp_path / "outside.txt").write_bytes(b"secret")
    (tmp_path / "outside").mkdir()
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"a")
    (src / "sub" / "b.txt").write_bytes(b"b")
    (src / "latest").symlink_to("a.txt")
    (src / "sub" / "up").symlink_to("../a.txt")
    (src / "leak").symlink_to(tmp_path / "outside.txt")
    (src / "leak_rel").symlink_to("../outside.txt")
    (src / "etc").symlink_to(tmp_path / "outside")
    (src / "sublink").symlink_to("sub")
    (src / "broken").symlink_to("nowhere")
    return src


def test_a_put_of_a_folder_keeps_links_inside_it_and_skips_the_rest(
    client: Client, tmp_path: Path
) -> None:
    src = _linked_folder(tmp_path)
    heard: list[Skipped] = []

    client.put_local("r@master:/", [str(src)], recursive=True, on_skipped=heard.extend)

    assert files(client.data, "r@master") == {
        "a.txt": b"a",
        "latest": b"a",
        "sub/b.txt": b"b",
        "sub/up": b"a",
    }
    assert heard == [
        Skipped(str(src / "broken"), SkipReason.BROKEN),
        Skipped(str(src / "etc"), SkipReason.OUTSIDE),
        Skipped(str(src / "leak"), SkipReason.OUTSIDE),
        Skipped(str(src / "leak_rel"), SkipReason.OUTSIDE),
        Skipped(str(src / "sublink"), SkipReason.FOLDER_LINK),
    ]


@pytest.mark.timeout(30)
def test_a_put_of_a_folder_skips_a_named_pipe_without_opening_it(
    client: Client, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    os.mkfifo(src / "pipe")  # opening it would block until something writes to it
    heard: list[Skipped] = []

    client.put_local("r@master:/", [str(src)], recursive=True, on_skipped=heard.extend)

    assert files(client.data, "r@master") == {"a.txt": b"a"}
    assert heard == [Skipped(str(src / "pipe"), SkipReason.FIFO)]


def test_a_link_named_as_the_source_is_followed(client: Client, tmp_path: Path) -> None:
    (tmp_path / "real.txt").write_bytes(b"real")
    (tmp_path / "named").symlink_to(tmp_path / "real.txt")

    client.put_local("r@master:/x", [str(tmp_path / "named")])

    assert files(client.data, "r@master") == {"x": b"real"}


def _swap_after_walk(monkeypatch: pytest.MonkeyPatch, swap: Callable[[], None]) -> None:
    """Run ``swap`` between the put's walk and its reads: the race a check by path loses."""
    real = local_module.walk_folder

    def walk_then_swap(root):  # type: ignore[no-untyped-def]
        found = real(root)
        swap()
        return found

    monkeypatch.setattr(local_module, "walk_folder", walk_then_swap)


def _secret_stored(client: Client) -> bool:
    secret = blake3.blake3(b"secret").hexdigest()
    return not client.data.chunks.missing([ChunkRef(secret, 6)])


def _link_a_to_outside(src: Path) -> Callable[[], None]:
    def swap() -> None:
        (src / "a.txt").unlink()
        (src / "a.txt").symlink_to(src.parent / "outside.txt")

    return swap


def test_a_file_replaced_by_a_link_after_the_walk_is_not_read(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _linked_folder(tmp_path)
    _swap_after_walk(monkeypatch, _link_a_to_outside(src))

    with pytest.raises(NotRegularFile):
        client.put_local("r@master:/", [str(src)], recursive=True)

    assert client.data.list_commits("r") == []
    assert not _secret_stored(client)


@pytest.mark.timeout(30)
def test_a_file_replaced_by_a_pipe_after_the_walk_is_refused_without_blocking(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _linked_folder(tmp_path)

    def swap() -> None:
        (src / "a.txt").unlink()
        os.mkfifo(src / "a.txt")

    _swap_after_walk(monkeypatch, swap)

    with pytest.raises(NotRegularFile):
        client.put_local("r@master:/", [str(src)], recursive=True)


def test_a_cached_file_replaced_by_a_link_after_the_walk_is_not_read(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _linked_folder(tmp_path)
    os.utime(src / "a.txt", (OLD, OLD))
    client.put_local("r@master:/", [str(src)], recursive=True)
    _swap_after_walk(monkeypatch, _link_a_to_outside(src))

    client.put_local("r@master:/", [str(src)], recursive=True)

    # The walk saw the old file with its stat unchanged: its stored content is reused.
    assert files(client.data, "r@master")["a.txt"] == b"a"
    assert not _secret_stored(client)


def test_a_folder_replaced_by_a_link_after_the_walk_is_not_read(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _linked_folder(tmp_path)
    (tmp_path / "outside" / "b.txt").write_bytes(b"secret")

    def swap() -> None:
        (src / "sub").rename(tmp_path / "moved")
        (src / "sub").symlink_to(tmp_path / "outside")

    _swap_after_walk(monkeypatch, swap)
    with pytest.raises(NotRegularFile):
        client.put_local("r@master:/", [str(src)], recursive=True)

    assert client.data.list_commits("r") == []


def test_get_local_replaces_a_link_at_the_output_and_leaves_its_target(
    client: Client, tmp_path: Path
) -> None:
    put_bytes(client.data, "r", None, "f.txt", b"new")
    put_bytes(client.data, "r", None, "dir/f.txt", b"new")
    target = tmp_path / "target.txt"
    target.write_bytes(b"keep")
    (tmp_path / "out.txt").symlink_to(target)
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "f.txt").symlink_to(target)

    client.get_local("r@master:/f.txt", tmp_path / "out.txt")
    client.get_local("r@master:/dir", tmp_path / "folder")

    assert target.read_bytes() == b"keep"
    for written in (tmp_path / "out.txt", tmp_path / "folder" / "f.txt"):
        assert not written.is_symlink()
        assert written.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "folder",
        "home",
        "out.txt",
        "target.txt",
    ]


def test_get_local_refuses_a_link_where_a_folder_goes(client: Client, tmp_path: Path) -> None:
    put_bytes(client.data, "r", None, "sub/f.txt", b"new")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "sub").symlink_to(elsewhere)

    with pytest.raises(InvalidPath):
        client.get_local("r@master:/", tmp_path / "out")

    assert list(elsewhere.iterdir()) == []


def test_get_local_refuses_a_stored_path_that_climbs_out(client: Client, tmp_path: Path) -> None:
    # put refuses ``..``; a damaged or hand-made tree is the only way to hold one.
    content = client.data.chunks.write(io.BytesIO(b"escaped"))
    client.data.commit_log.update_tree(
        "r",
        None,
        lambda root: client.data.trees.apply(root, {"d/../../escape.txt": FileEntry(content)}),
    )
    (tmp_path / "out").mkdir()

    with pytest.raises(InvalidPath):
        client.get_local("r@master:/d", tmp_path / "out" / "d")

    assert not (tmp_path / "escape.txt").exists()
    assert not (tmp_path / "out" / "escape.txt").exists()
