"""File verbs of a DataStore: put, append, delete, copy, list, glob, inspect, read, diff."""

from __future__ import annotations

import io
import random

import blake3
import pytest

from cairn.data import (
    DataStore,
    FileEntry,
    InvalidPath,
    NotFound,
    PathConflict,
    parse_ref,
)
from cairn.storage import ChunkRef, Content, CorruptObject

from .helpers import FailingReader, PatternReader, files, history, put_bytes, read

# -- putting -----------------------------------------------------------------------


def test_put_files_puts_many_files_in_one_commit(store: DataStore, repo: str) -> None:
    items = [(f"/dir/{i}.bin", io.BytesIO(bytes([i]) * 100)) for i in range(5)]

    commit = store.put_files(repo, None, items, description="batch")

    assert len(store.list_commits(repo)) == 1
    assert commit.description == "batch"
    assert commit.size == 500
    assert len(files(store, f"{repo}@master")) == 5


def test_put_overwrites_a_file(store: DataStore, repo: str) -> None:
    put_bytes(store, repo, None, "a", b"old contents")

    put_bytes(store, repo, None, "a", b"new")

    assert read(store, f"{repo}@master:/a") == b"new"
    assert read(store, f"{repo}@master^:/a") == b"old contents"
    assert store.inspect_commit(repo).size == 3


def test_put_with_append_extends_a_file(store: DataStore, repo: str) -> None:
    put_bytes(store, repo, None, "log", b"one\n")

    commit = store.put_files(repo, None, [("log", io.BytesIO(b"two\n"))], append=True)
    store.put_files(repo, None, [("new", io.BytesIO(b"x")), ("new", io.BytesIO(b"y"))], append=True)

    assert read(store, f"{repo}@master:/log") == b"one\ntwo\n"
    assert commit.size == 8
    assert read(store, f"{repo}@master:/new") == b"xy"
    info = store.inspect_file(parse_ref(f"{repo}@master:/log"))
    assert info.hash == blake3.blake3(b"one\ntwo\n").hexdigest()


def test_put_without_append_keeps_the_last_of_one_path(store: DataStore, repo: str) -> None:
    store.put_files(repo, None, [("f", io.BytesIO(b"first")), ("f", io.BytesIO(b"second"))])

    assert read(store, f"{repo}@master:/f") == b"second"


@pytest.mark.parametrize("path", ["/", "", "../x", "a/./b", "a\x00b"])
def test_put_to_a_bad_path_raises_invalid_path(store: DataStore, repo: str, path: str) -> None:
    with pytest.raises(InvalidPath):
        put_bytes(store, repo, None, path, b"x")
    assert store.list_commits(repo) == []


def test_put_across_a_file_folder_boundary_raises_path_conflict(
    store: DataStore, repo: str
) -> None:
    put_bytes(store, repo, None, "a/b", b"1")
    head = store.inspect_commit(repo).id

    with pytest.raises(PathConflict):
        put_bytes(store, repo, None, "a", b"2")
    with pytest.raises(PathConflict):
        put_bytes(store, repo, None, "a/b/c", b"3")

    assert history(store, repo) == [head]


def test_a_put_that_fails_half_way_leaves_the_branch_as_it_was(store: DataStore, repo: str) -> None:
    head = put_bytes(store, repo, None, "a", b"1")

    with pytest.raises(OSError):
        store.put_files(repo, None, [("b", io.BytesIO(b"ok")), ("c", FailingReader(10_000))])

    assert history(store, repo) == [head.id]
    assert files(store, f"{repo}@master") == {"a": b"1"}


# -- deleting and copying -------------------------------------------------------------


def test_delete_files_removes_files_and_folders(store: DataStore, repo: str) -> None:
    store.put_files(
        repo, None, [(p, io.BytesIO(p.encode())) for p in ["a/1", "a/2", "a/b/3", "c", "d"]]
    )

    store.delete_files(repo, None, ["/c"])
    assert set(files(store, f"{repo}@master")) == {"a/1", "a/2", "a/b/3", "d"}

    store.delete_files(repo, None, ["a"])
    assert set(files(store, f"{repo}@master")) == {"d"}

    emptied = store.delete_files(repo, None, ["d"])
    assert emptied.tree is None
    assert emptied.size == 0
    assert store.list_file(parse_ref(f"{repo}@master:/")) == []


def test_delete_of_the_root_empties_the_commit(store: DataStore, repo: str) -> None:
    put_bytes(store, repo, None, "a/b", b"1")

    assert store.delete_files(repo, None, ["/"]).tree is None


def test_delete_of_a_missing_file_raises_not_found(store: DataStore, repo: str) -> None:
    put_bytes(store, repo, None, "a/b", b"1")
    head = store.inspect_commit(repo).id

    with pytest.raises(NotFound):
        store.delete_files(repo, None, ["a/missing"])
    with pytest.raises(NotFound):
        store.delete_files(repo, None, ["a/b", "nope"])
    with pytest.raises(NotFound):
        store.delete_files(repo, None, ["a/b/below-a-file"])

    assert history(store, repo) == [head]


def test_copy_file_shares_chunks(store: DataStore, repo: str) -> None:
    data = random.Random(5).randbytes(5_000)
    put_bytes(store, repo, None, "src/f.bin", data)
    chunks_before = set(store.chunks.objects.list("chunks/"))

    store.copy_file(parse_ref(f"{repo}@master:/src/f.bin"), repo, None, "/dst/g.bin")

    entries = dict(store.walk_files(parse_ref(f"{repo}@master")))
    assert read(store, f"{repo}@master:/dst/g.bin") == data
    assert entries["dst/g.bin"] == FileEntry(entries["src/f.bin"].content)
    assert len(entries["src/f.bin"].content.chunks) > 1
    assert set(store.chunks.objects.list("chunks/")) == chunks_before


def test_copy_file_copies_a_folder(store: DataStore, make_repo) -> None:
    src, dst = make_repo("src"), make_repo("dst")
    store.put_files(
        src,
        None,
        [
            ("data/a", io.BytesIO(b"a")),
            ("data/sub/b", io.BytesIO(b"b")),
            ("other", io.BytesIO(b"o")),
        ],
    )

    store.copy_file(parse_ref(f"{src}@master:/data"), dst, None, "/copy")
    store.copy_file(parse_ref(f"{src}@master:/data"), dst, "flat", "/")
    store.copy_file(parse_ref(f"{src}@master:/other"), dst, "flat", "/")

    assert files(store, f"{dst}@master") == {"copy/a": b"a", "copy/sub/b": b"b"}
    assert files(store, f"{dst}@flat") == {"a": b"a", "sub/b": b"b", "other": b"o"}


def test_copy_of_a_missing_file_raises_not_found(store: DataStore, repo: str) -> None:
    put_bytes(store, repo, None, "a", b"1")

    with pytest.raises(NotFound):
        store.copy_file(parse_ref(f"{repo}@master:/nope"), repo, None, "/x")


# -- reading ------------------------------------------------------------------------


@pytest.fixture
def tree_repo(store: DataStore, repo: str) -> str:
    store.put_files(
        repo,
        None,
        [
            ("/train/cat/1.png", io.BytesIO(b"c1")),
            ("/train/cat/2.png", io.BytesIO(b"c22")),
            ("/train/dog/1.png", io.BytesIO(b"d1")),
            ("/test/1.jpg", io.BytesIO(b"t")),
            ("/README", io.BytesIO(b"hello")),
        ],
    )
    return repo


def test_list_file(store: DataStore, tree_repo: str) -> None:
    top = store.list_file(parse_ref(f"{tree_repo}@master:/"))
    cats = store.list_file(parse_ref(f"{tree_repo}@master:/train/cat"))
    one = store.list_file(parse_ref(f"{tree_repo}@master:/README"))

    assert [(f.path, f.type) for f in top] == [
        ("/README", "file"),
        ("/test", "dir"),
        ("/train", "dir"),
    ]
    assert [(f.path, f.size) for f in cats] == [("/train/cat/1.png", 2), ("/train/cat/2.png", 3)]
    assert [(f.path, f.size) for f in one] == [("/README", 5)]
    with pytest.raises(NotFound):
        store.list_file(parse_ref(f"{tree_repo}@master:/missing"))


def test_inspect_file(store: DataStore, tree_repo: str) -> None:
    commit = store.inspect_commit(tree_repo)

    readme = store.inspect_file(parse_ref(f"{tree_repo}@master:/README"))
    train = store.inspect_file(parse_ref(f"{tree_repo}@master:/train"))
    root = store.inspect_file(parse_ref(f"{tree_repo}@master"))

    assert (readme.repo, readme.commit, readme.path, readme.type) == (
        tree_repo,
        commit.id,
        "/README",
        "file",
    )
    assert (readme.size, readme.count, readme.chunks) == (5, 1, 1)
    assert readme.hash == blake3.blake3(b"hello").hexdigest()
    assert (train.type, train.size, train.count) == ("dir", 7, 3)
    assert (root.path, root.size, root.count, root.hash) == ("/", 13, 5, commit.tree)
    with pytest.raises(NotFound):
        store.inspect_file(parse_ref(f"{tree_repo}@master:/train/cow"))


def test_glob_file(store: DataStore, tree_repo: str) -> None:
    def glob(pattern: str) -> list[str]:
        return [f.path for f in store.glob_file(parse_ref(f"{tree_repo}@master"), pattern)]

    assert glob("/*") == ["/README", "/test", "/train"]
    assert glob("/train/*") == ["/train/cat", "/train/dog"]
    assert glob("/train/*/*.png") == ["/train/cat/1.png", "/train/cat/2.png", "/train/dog/1.png"]
    assert glob("/**/1.*") == ["/test/1.jpg", "/train/cat/1.png", "/train/dog/1.png"]
    assert glob("/nothing*") == []
    types = {f.path: f.type for f in store.glob_file(parse_ref(f"{tree_repo}@master"), "/**")}
    assert types["/train/cat"] == "dir" and types["/README"] == "file"
    assert len(types) == 9


def test_read_file_of_a_folder_raises_invalid_path(store: DataStore, tree_repo: str) -> None:
    with pytest.raises(InvalidPath):
        read(store, f"{tree_repo}@master:/train")
    with pytest.raises(InvalidPath):
        read(store, f"{tree_repo}@master:/")
    with pytest.raises(NotFound):
        read(store, f"{tree_repo}@master:/train/nope.png")


def test_an_empty_commit_lists_nothing(store: DataStore, repo: str) -> None:
    store.start_commit(repo)

    assert store.list_file(parse_ref(f"{repo}@master")) == []
    assert store.glob_file(parse_ref(f"{repo}@master"), "/**") == []
    assert store.inspect_file(parse_ref(f"{repo}@master")).size == 0


def test_diff_file_against_the_parent(store: DataStore, tree_repo: str) -> None:
    old = store.inspect_commit(tree_repo)
    store.put_files(
        tree_repo, None, [("/README", io.BytesIO(b"changed")), ("/new", io.BytesIO(b"n"))]
    )
    store.delete_files(tree_repo, None, ["/test"])

    last = store.diff_file(parse_ref(f"{tree_repo}@master"))
    both = store.diff_file(parse_ref(f"{tree_repo}@master"), parse_ref(f"{tree_repo}@{old.id}"))
    under = store.diff_file(parse_ref(f"{tree_repo}@master^:/README"))

    assert [(c.path, c.status) for c in last] == [("/test/1.jpg", "deleted")]
    assert [(c.path, c.status) for c in both] == [
        ("/README", "modified"),
        ("/new", "added"),
        ("/test/1.jpg", "deleted"),
    ]
    readme = both[0]
    assert (readme.old_size, readme.new_size) == (5, 7)
    assert readme.old_hash == blake3.blake3(b"hello").hexdigest()
    assert readme.new_hash == blake3.blake3(b"changed").hexdigest()
    assert (both[1].old_hash, both[1].old_size, both[1].new_size) == (None, None, 1)
    assert (both[2].new_hash, both[2].new_size) == (None, None)
    assert [(c.path, c.status) for c in under] == [("/README", "modified")]


def test_diff_file_of_a_first_commit_adds_everything(store: DataStore, tree_repo: str) -> None:
    changes = store.diff_file(parse_ref(f"{tree_repo}@master"))

    assert {c.status for c in changes} == {"added"}
    assert len(changes) == 5


# -- files a remote client sent as chunks ------------------------------------------------


def _sent(store: DataStore, data: bytes, piece: int) -> Content:
    """``data`` stored as a remote client's upload stores it: chunks of ``piece`` bytes
    put one by one (any cut will do), and the Content it names in its commit."""
    refs = []
    for i in range(0, len(data), piece):
        part = data[i : i + piece]
        digest = blake3.blake3(part).hexdigest()
        store.chunks.put_chunk(digest, part)
        refs.append(ChunkRef(digest, len(part)))
    store.chunks.flush()
    return Content(blake3.blake3(data).hexdigest(), len(data), tuple(refs))


def test_files_sent_as_chunks_are_checked_in_one_index_query(
    store: DataStore, repo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = {f"small/{i}.txt": b"file %d" % i for i in range(40)}
    data["big.bin"] = random.Random(3).randbytes(1000)
    sent = {path: _sent(store, body, 100) for path, body in data.items()}
    checks: list[int] = []
    missing = store.chunks.missing
    monkeypatch.setattr(store.chunks, "missing", lambda refs: checks.append(1) or missing(refs))

    store.put_files(repo, None, list(sent.items()))

    assert len(checks) == 1
    assert files(store, f"{repo}@master") == data


def test_a_file_sent_as_chunks_whose_hash_or_size_lies_is_refused(
    store: DataStore, repo: str
) -> None:
    one = _sent(store, b"abc", 100)
    several = _sent(store, random.Random(4).randbytes(1000), 100)
    lies = [
        Content(one.hash, 2, (ChunkRef(one.hash, 2),)),  # one chunk, its size wrong
        Content("0" * 64, 3, one.chunks),  # one chunk, the file's hash wrong
        Content(one.hash, several.size, several.chunks),  # several chunks, hash wrong
    ]
    for lie in lies:
        with pytest.raises(CorruptObject):
            store.put_files(repo, None, [("/ok.txt", one), ("/x.bin", lie)])
    assert store.list_commits(repo) == []
    store.put_files(repo, None, [("/ok.txt", one), ("/x.bin", several)])
    assert read(store, f"{repo}@master:/ok.txt") == b"abc"


# -- large files --------------------------------------------------------------------


def test_a_large_streamed_file_round_trips(make_store) -> None:
    store = make_store(avg_size=64 * 1024)
    store.create_repo("big")
    size = 3 * 1024 * 1024 + 17
    reader = PatternReader(size, seed=9)
    seen: list[int] = []

    commit = store.put_files("big", None, [("/blob.bin", reader)], progress=seen.append)

    expected = blake3.blake3()
    source = PatternReader(size, seed=9)
    while piece := source.read(1 << 20):
        expected.update(piece)
    got, total, largest = blake3.blake3(), 0, 0
    for piece in store.read_file(parse_ref("big@master:/blob.bin")):
        got.update(piece)
        total += len(piece)
        largest = max(largest, len(piece))
    assert total == size == commit.size == sum(seen)
    assert got.hexdigest() == expected.hexdigest()
    assert store.inspect_file(parse_ref("big@master:/blob.bin")).hash == expected.hexdigest()
    assert largest <= 4 * 64 * 1024
    assert reader.largest_read <= 64 * 1024
