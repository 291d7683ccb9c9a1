"""DataStore: repos, branches, the commit state machine, file verbs and provenance."""

from __future__ import annotations

import io
import random
import threading
from collections.abc import Callable

import blake3
import pytest

from cairn.data import (
    AlreadyExists,
    CommitStateError,
    DataError,
    DataStore,
    FileEntry,
    InvalidPath,
    InvalidReference,
    NotFound,
    PathConflict,
    Provenance,
    Ref,
    parse_ref,
)


def read(store: DataStore, ref: str) -> bytes:
    return b"".join(store.read_file(parse_ref(ref)))


def files(store: DataStore, ref: str) -> dict[str, bytes]:
    """Every file of a commit as {path: bytes}."""
    return {
        path: store.chunks.read_bytes(entry.content)
        for path, entry in store.walk_files(parse_ref(ref))
    }


def history(store: DataStore, repo: str, branch: str = "master") -> list[str]:
    return [c.id for c in store.list_commits(repo, branch)]


class PatternReader:
    """A large pseudo-random stream made on the fly: memory holds one block, not the file."""

    def __init__(self, size: int, seed: int = 0, block: int = 64 * 1024) -> None:
        self.remaining = size
        self._rng = random.Random(seed)
        self._block = block
        self._buffer = b""
        self.largest_read = 0

    def read(self, n: int = -1) -> bytes:
        if not self._buffer and self.remaining:
            self._buffer = self._rng.randbytes(min(self._block, self.remaining))
            self.remaining -= len(self._buffer)
        take = len(self._buffer) if n < 0 else n
        piece, self._buffer = self._buffer[:take], self._buffer[take:]
        self.largest_read = max(self.largest_read, len(piece))
        return piece


# -- repos ---------------------------------------------------------------------------


def test_create_repo_returns_an_empty_user_repo(store: DataStore) -> None:
    info = store.create_repo("images", "raw photos")

    assert (info.name, info.type, info.description) == ("images", "user", "raw photos")
    assert info.branches == ()
    assert info.size == 0
    assert store.inspect_repo("images") == info


def test_list_repos_is_sorted_by_name(store: DataStore, make_repo) -> None:
    for name in ["zeta", "alpha", "mid"]:
        make_repo(name)

    assert [r.name for r in store.list_repos()] == ["alpha", "mid", "zeta"]


def test_create_repo_twice_raises_already_exists(store: DataStore, repo: str) -> None:
    with pytest.raises(AlreadyExists):
        store.create_repo(repo)


@pytest.mark.parametrize("name", ["bad name", "-x", "x.lock", "", "a/b"])
def test_create_repo_with_a_bad_name_raises_invalid_reference(store: DataStore, name: str) -> None:
    with pytest.raises(InvalidReference):
        store.create_repo(name)
    assert store.list_repos() == []


def test_inspect_missing_repo_raises_not_found(store: DataStore) -> None:
    with pytest.raises(NotFound):
        store.inspect_repo("nope")
    with pytest.raises(NotFound):
        store.delete_repo("nope")
    with pytest.raises(NotFound):
        store.put_bytes("nope", None, "a", b"x")


def test_delete_repo_removes_its_branches_and_commits(store: DataStore, repo: str) -> None:
    store.put_bytes(repo, None, "a", b"1")

    store.delete_repo(repo)

    assert store.list_repos() == []
    with pytest.raises(NotFound):
        store.inspect_commit(repo, "master")
    store.create_repo(repo)
    assert store.inspect_repo(repo).branches == ()
    assert store.list_commits(repo) == []


def test_repo_size_is_the_size_of_the_master_head(store: DataStore, repo: str) -> None:
    store.put_bytes(repo, None, "a", b"12345")
    store.put_bytes(repo, None, "b/c", b"678")
    store.put_bytes(repo, "dev", "big", b"x" * 1000)

    info = store.inspect_repo(repo)

    assert info.size == 8
    assert info.branches == ("dev", "master")


# -- branches -------------------------------------------------------------------------


def test_create_branch_with_a_head(store: DataStore, repo: str) -> None:
    first = store.put_bytes(repo, None, "a", b"1")
    second = store.put_bytes(repo, None, "a", b"2")

    dev = store.create_branch(repo, "dev", head="master^")
    same = store.create_branch(repo, "same", head=second.id)

    assert dev.head == first.id
    assert same.head == second.id
    assert read(store, f"{repo}@dev:/a") == b"1"
    assert [b.name for b in store.list_branches(repo)] == ["dev", "master", "same"]


def test_create_branch_moves_an_existing_branch(store: DataStore, repo: str) -> None:
    first = store.put_bytes(repo, None, "a", b"1")
    store.put_bytes(repo, None, "a", b"2")

    store.create_branch(repo, "master", head=first.id)

    assert store.inspect_branch(repo, "master").head == first.id


def test_a_branch_with_no_head_has_no_commits(store: DataStore, repo: str) -> None:
    branch = store.create_branch(repo, "empty")

    assert branch.head is None
    assert store.list_commits(repo, "empty") == []
    with pytest.raises(NotFound):
        store.inspect_commit(repo, "empty")


def test_branch_errors(store: DataStore, repo: str) -> None:
    with pytest.raises(InvalidReference):
        store.create_branch(repo, "bad name")
    with pytest.raises(NotFound):
        store.create_branch("nope", "dev")
    with pytest.raises(NotFound):
        store.create_branch(repo, "dev", head="master")
    with pytest.raises(NotFound):
        store.inspect_branch(repo, "missing")
    with pytest.raises(NotFound):
        store.inspect_branch("nope", "master")
    with pytest.raises(NotFound):
        store.list_commits(repo, "missing")


def test_deleted_branch_leaves_its_commits_reachable_by_id(store: DataStore, repo: str) -> None:
    commit = store.put_bytes(repo, "dev", "a", b"kept")

    store.delete_branch(repo, "dev")

    assert [b.name for b in store.list_branches(repo)] == []
    assert read(store, f"{repo}@{commit.id}:/a") == b"kept"
    with pytest.raises(NotFound):
        store.delete_branch(repo, "dev")


# -- one-step commits ---------------------------------------------------------------


def test_put_bytes_makes_a_finished_auto_commit(store: DataStore, repo: str) -> None:
    commit = store.put_bytes(repo, None, "/a/b.txt", b"hello")

    assert commit.state == "finished"
    assert commit.finished_ok
    assert commit.origin == "auto"
    assert commit.parent is None
    assert commit.branch == "master"
    assert commit.size == 5
    assert commit.finished is not None
    assert store.inspect_branch(repo, "master").head == commit.id
    assert read(store, f"{repo}@master:/a/b.txt") == b"hello"


def test_each_put_is_a_new_commit_on_the_last(store: DataStore, repo: str) -> None:
    commits = [store.put_bytes(repo, None, f"f{i}", b"x" * i) for i in range(1, 5)]

    assert [c.parent for c in commits] == [None] + [c.id for c in commits[:-1]]
    assert [c.size for c in commits] == [1, 3, 6, 10]
    assert history(store, repo) == [c.id for c in reversed(commits)]
    assert files(store, f"{repo}@master") == {f"f{i}": b"x" * i for i in range(1, 5)}


def test_put_files_puts_many_files_in_one_commit(store: DataStore, repo: str) -> None:
    items = [(f"/dir/{i}.bin", io.BytesIO(bytes([i]) * 100)) for i in range(5)]

    commit = store.put_files(repo, None, items, description="batch")

    assert len(store.list_commits(repo)) == 1
    assert commit.description == "batch"
    assert commit.size == 500
    assert len(files(store, f"{repo}@master")) == 5


def test_put_overwrites_a_file(store: DataStore, repo: str) -> None:
    store.put_bytes(repo, None, "a", b"old contents")

    store.put_bytes(repo, None, "a", b"new")

    assert read(store, f"{repo}@master:/a") == b"new"
    assert read(store, f"{repo}@master^:/a") == b"old contents"
    assert store.inspect_commit(repo).size == 3


def test_put_with_append_extends_a_file(store: DataStore, repo: str) -> None:
    store.put_bytes(repo, None, "log", b"one\n")

    commit = store.put_files(repo, None, [("log", io.BytesIO(b"two\n"))], append=True)
    store.put_files(repo, None, [("new", io.BytesIO(b"x")), ("new", io.BytesIO(b"y"))],
                    append=True)

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
        store.put_bytes(repo, None, path, b"x")
    assert store.list_commits(repo) == []


def test_put_across_a_file_folder_boundary_raises_path_conflict(
    store: DataStore, repo: str
) -> None:
    store.put_bytes(repo, None, "a/b", b"1")
    head = store.inspect_commit(repo).id

    with pytest.raises(PathConflict):
        store.put_bytes(repo, None, "a", b"2")
    with pytest.raises(PathConflict):
        store.put_bytes(repo, None, "a/b/c", b"3")

    assert history(store, repo) == [head]


def test_put_to_a_pipeline_repo_raises_data_error(store: DataStore, make_repo) -> None:
    out = make_repo("edges", type="pipeline")

    with pytest.raises(DataError):
        store.put_bytes(out, None, "a", b"x")
    with pytest.raises(DataError):
        store.start_commit(out)
    assert store.list_commits(out) == []


# -- open commits ---------------------------------------------------------------------


def test_start_put_finish(store: DataStore, repo: str) -> None:
    base = store.put_bytes(repo, None, "base", b"0")

    opened = store.start_commit(repo, description="by hand")
    by_branch = store.put_bytes(repo, "master", "a", b"1")
    by_id = store.put_bytes(repo, opened.id, "b", b"22")
    done = store.finish_commit(repo)

    assert (opened.state, opened.origin, opened.parent) == ("open", "user", base.id)
    assert opened.tree == base.tree
    assert by_branch.id == by_id.id == done.id == opened.id
    assert by_id.state == "open"
    assert (done.state, done.description, done.size) == ("finished", "by hand", 4)
    assert done.finished is not None
    assert history(store, repo) == [opened.id, base.id]
    assert files(store, f"{repo}@master") == {"base": b"0", "a": b"1", "b": b"22"}


def test_readers_of_the_branch_see_the_open_commit(store: DataStore, repo: str) -> None:
    opened = store.start_commit(repo)
    store.put_bytes(repo, None, "a", b"1")

    assert store.inspect_commit(repo, "master").id == opened.id
    assert store.inspect_commit(repo, "master").state == "open"
    assert read(store, f"{repo}@master:/a") == b"1"


def test_start_commit_creates_the_branch(store: DataStore, repo: str) -> None:
    opened = store.start_commit(repo, "dev")

    assert store.inspect_branch(repo, "dev").head == opened.id
    assert opened.parent is None
    assert store.finish_commit(repo, "dev").size == 0


def test_start_while_open_raises_commit_state_error(store: DataStore, repo: str) -> None:
    opened = store.start_commit(repo)

    with pytest.raises(CommitStateError):
        store.start_commit(repo)
    assert store.inspect_branch(repo, "master").head == opened.id


def test_finish_twice_raises_commit_state_error(store: DataStore, repo: str) -> None:
    opened = store.start_commit(repo)
    store.finish_commit(repo, opened.id)

    with pytest.raises(CommitStateError):
        store.finish_commit(repo, opened.id)
    with pytest.raises(CommitStateError):
        store.finish_commit(repo)


def test_finish_of_an_auto_commit_raises_commit_state_error(store: DataStore, repo: str) -> None:
    store.put_bytes(repo, None, "a", b"1")

    with pytest.raises(CommitStateError):
        store.finish_commit(repo)


def test_put_to_a_finished_commit_id_raises_commit_state_error(
    store: DataStore, repo: str
) -> None:
    opened = store.start_commit(repo)
    store.put_bytes(repo, opened.id, "a", b"1")
    done = store.finish_commit(repo, opened.id)

    with pytest.raises(CommitStateError):
        store.put_bytes(repo, opened.id, "b", b"2")
    with pytest.raises(CommitStateError):
        store.delete_files(repo, opened.id, ["a"])

    assert store.inspect_commit(repo, opened.id) == done


def test_put_to_an_unknown_commit_id_raises_not_found(store: DataStore, repo: str) -> None:
    with pytest.raises(NotFound):
        store.put_bytes(repo, "0" * 32, "a", b"1")


def test_a_finished_commit_never_changes(store: DataStore, repo: str) -> None:
    store.put_bytes(repo, None, "keep/a", b"a")
    store.put_bytes(repo, None, "gone", b"g")
    snapshot = store.inspect_commit(repo)
    before = files(store, f"{repo}@{snapshot.id}")

    store.put_bytes(repo, None, "keep/a", b"changed")
    store.put_files(repo, None, [("gone", io.BytesIO(b"more"))], append=True)
    store.delete_files(repo, None, ["keep"])
    store.start_commit(repo)
    store.put_bytes(repo, None, "new", b"n")
    store.finish_commit(repo)

    assert store.inspect_commit(repo, snapshot.id) == snapshot
    assert files(store, f"{repo}@{snapshot.id}") == before == {"keep/a": b"a", "gone": b"g"}


# -- resolving ------------------------------------------------------------------------


def test_ancestry_steps_back_along_parents(store: DataStore, repo: str) -> None:
    ids = [store.put_bytes(repo, None, "f", bytes([i])).id for i in range(4)]

    assert store.inspect_commit(repo).id == ids[3]
    assert store.inspect_commit(repo, "master^").id == ids[2]
    assert store.inspect_commit(repo, "master^^").id == ids[1]
    assert store.inspect_commit(repo, "master^2").id == ids[1]
    assert store.inspect_commit(repo, "master~3").id == ids[0]
    assert store.inspect_commit(repo, f"{ids[3]}^").id == ids[2]
    assert read(store, f"{repo}@master~2:/f") == bytes([1])
    with pytest.raises(NotFound):
        store.inspect_commit(repo, "master^4")


def test_commit_id_prefixes_resolve(store: DataStore, repo: str) -> None:
    commit = store.put_bytes(repo, None, "f", b"x")

    assert store.inspect_commit(repo, commit.id[:6]).id == commit.id
    assert store.inspect_commit(repo, commit.id[:31]).id == commit.id
    with pytest.raises(NotFound):
        store.inspect_commit(repo, commit.id[:5])  # too short: taken as a branch name
    with pytest.raises(NotFound):
        store.inspect_commit(repo, "ffffff" if not commit.id.startswith("ffffff") else "eeeeee")


def test_an_ambiguous_prefix_raises_not_found(store: DataStore, repo: str) -> None:
    first = store.write_commit(repo, "master", None, expected_head=None,
                               commit_id="abcdef" + "0" * 26)
    second = store.write_commit(repo, "master", None, expected_head=first.id,
                                commit_id="abcdef" + "1" * 26)

    assert store.inspect_commit(repo, "abcdef1").id == second.id
    with pytest.raises(NotFound):
        store.inspect_commit(repo, "abcdef")


def test_resolve_errors(store: DataStore, repo: str) -> None:
    with pytest.raises(NotFound):
        store.resolve(Ref("nope"))
    with pytest.raises(NotFound):
        store.resolve(Ref(repo))  # no master yet
    with pytest.raises(NotFound):
        store.resolve(Ref(repo, "0" * 32))
    with pytest.raises(NotFound):
        store.resolve(Ref(repo, "no-such-branch"))


def test_list_commits_newest_first(store: DataStore, repo: str) -> None:
    master = [store.put_bytes(repo, None, "f", bytes([i])).id for i in range(3)]
    dev = store.put_bytes(repo, "dev", "g", b"d").id

    assert history(store, repo) == master[::-1]
    assert [c.id for c in store.list_commits(repo, "master", limit=2)] == master[:0:-1]
    assert history(store, repo, "dev") == [dev]
    assert [c.id for c in store.list_commits(repo)] == [dev, *master[::-1]]
    assert [c.id for c in store.list_commits(repo, limit=1)] == [dev]


# -- deleting and copying -------------------------------------------------------------


def test_delete_files_removes_files_and_folders(store: DataStore, repo: str) -> None:
    store.put_files(repo, None, [(p, io.BytesIO(p.encode())) for p in
                                 ["a/1", "a/2", "a/b/3", "c", "d"]])

    store.delete_files(repo, None, ["/c"])
    assert set(files(store, f"{repo}@master")) == {"a/1", "a/2", "a/b/3", "d"}

    store.delete_files(repo, None, ["a"])
    assert set(files(store, f"{repo}@master")) == {"d"}

    emptied = store.delete_files(repo, None, ["d"])
    assert emptied.tree is None
    assert emptied.size == 0
    assert store.list_file(parse_ref(f"{repo}@master:/")) == []


def test_delete_of_the_root_empties_the_commit(store: DataStore, repo: str) -> None:
    store.put_bytes(repo, None, "a/b", b"1")

    assert store.delete_files(repo, None, ["/"]).tree is None


def test_delete_of_a_missing_file_raises_not_found(store: DataStore, repo: str) -> None:
    store.put_bytes(repo, None, "a/b", b"1")
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
    store.put_bytes(repo, None, "src/f.bin", data)
    chunks_before = set(store.chunks.objects.list("chunks/"))

    store.copy_file(parse_ref(f"{repo}@master:/src/f.bin"), repo, None, "/dst/g.bin")

    entries = dict(store.walk_files(parse_ref(f"{repo}@master")))
    assert read(store, f"{repo}@master:/dst/g.bin") == data
    assert entries["dst/g.bin"] == FileEntry(entries["src/f.bin"].content)
    assert len(entries["src/f.bin"].content.chunks) > 1
    assert set(store.chunks.objects.list("chunks/")) == chunks_before


def test_copy_file_copies_a_folder(store: DataStore, make_repo) -> None:
    src, dst = make_repo("src"), make_repo("dst")
    store.put_files(src, None, [("data/a", io.BytesIO(b"a")), ("data/sub/b", io.BytesIO(b"b")),
                                ("other", io.BytesIO(b"o"))])

    store.copy_file(parse_ref(f"{src}@master:/data"), dst, None, "/copy")
    store.copy_file(parse_ref(f"{src}@master:/data"), dst, "flat", "/")
    store.copy_file(parse_ref(f"{src}@master:/other"), dst, "flat", "/")

    assert files(store, f"{dst}@master") == {"copy/a": b"a", "copy/sub/b": b"b"}
    assert files(store, f"{dst}@flat") == {"a": b"a", "sub/b": b"b", "other": b"o"}


def test_copy_of_a_missing_file_raises_not_found(store: DataStore, repo: str) -> None:
    store.put_bytes(repo, None, "a", b"1")

    with pytest.raises(NotFound):
        store.copy_file(parse_ref(f"{repo}@master:/nope"), repo, None, "/x")


# -- reading ------------------------------------------------------------------------


@pytest.fixture
def tree_repo(store: DataStore, repo: str) -> str:
    store.put_files(repo, None, [
        ("/train/cat/1.png", io.BytesIO(b"c1")),
        ("/train/cat/2.png", io.BytesIO(b"c22")),
        ("/train/dog/1.png", io.BytesIO(b"d1")),
        ("/test/1.jpg", io.BytesIO(b"t")),
        ("/README", io.BytesIO(b"hello")),
    ])
    return repo


def test_list_file(store: DataStore, tree_repo: str) -> None:
    top = store.list_file(parse_ref(f"{tree_repo}@master:/"))
    cats = store.list_file(parse_ref(f"{tree_repo}@master:/train/cat"))
    one = store.list_file(parse_ref(f"{tree_repo}@master:/README"))

    assert [(f.path, f.type) for f in top] == [("/README", "file"), ("/test", "dir"),
                                               ("/train", "dir")]
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
        tree_repo, commit.id, "/README", "file")
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
    store.put_files(tree_repo, None, [("/README", io.BytesIO(b"changed")),
                                      ("/new", io.BytesIO(b"n"))])
    store.delete_files(tree_repo, None, ["/test"])

    last = store.diff_file(parse_ref(f"{tree_repo}@master"))
    both = store.diff_file(parse_ref(f"{tree_repo}@master"), parse_ref(f"{tree_repo}@{old.id}"))
    under = store.diff_file(parse_ref(f"{tree_repo}@master^:/README"))

    assert [(c.path, c.status) for c in last] == [("/test/1.jpg", "deleted")]
    assert [(c.path, c.status) for c in both] == [
        ("/README", "modified"), ("/new", "added"), ("/test/1.jpg", "deleted"),
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


# -- write_commit and provenance ----------------------------------------------------


def test_write_commit_with_provenance_and_subvenance(store: DataStore, make_repo) -> None:
    src, out = make_repo("src"), make_repo("out", type="pipeline")
    inp = store.put_bytes(src, None, "in", b"data")
    tree = store.inspect_commit(src).tree

    written = store.write_commit(
        out, "master", tree, expected_head=None, commit_id=inp.id,
        provenance=[Provenance("images", src, "master", inp.id)], info={"job": "j1"},
    )

    assert written.id == inp.id  # a commit set shares its id across repos when it is free
    assert (written.state, written.origin, written.size) == ("finished", "pipeline", 4)
    assert written.info == {"job": "j1"}
    assert written.provenance == (Provenance("images", src, "master", inp.id),)
    assert store.inspect_commit(out) == written
    assert store.subvenance(src, inp.id) == [(out, written.id, "images")]
    assert files(store, f"{out}@master") == {"in": b"data"}


def test_write_commit_takes_a_fresh_id_when_the_asked_one_is_taken(
    store: DataStore, repo: str
) -> None:
    first = store.put_bytes(repo, None, "a", b"1")

    second = store.write_commit(repo, "master", first.tree, expected_head=first.id,
                                commit_id=first.id)

    assert second.id != first.id
    assert second.parent == first.id


def test_write_commit_with_a_stale_head_writes_nothing(store: DataStore, repo: str) -> None:
    first = store.put_bytes(repo, None, "a", b"1")
    second = store.put_bytes(repo, None, "a", b"2")
    src = store.put_bytes(repo, "other", "x", b"x")

    with pytest.raises(CommitStateError):
        store.write_commit(repo, "master", first.tree, expected_head=first.id,
                           commit_id="c" * 32,
                           provenance=[Provenance("in", repo, "other", src.id)])
    with pytest.raises(CommitStateError):
        store.write_commit(repo, "fresh", first.tree, expected_head=second.id)

    assert history(store, repo) == [second.id, first.id]
    assert len(store.list_commits(repo)) == 3
    assert store.subvenance(repo, src.id) == []
    with pytest.raises(NotFound):
        store.inspect_commit(repo, "c" * 32)
    assert [b.name for b in store.list_branches(repo)] == ["master", "other"]


# -- concurrency ---------------------------------------------------------------------


def test_concurrent_puts_to_one_branch_lose_nothing(store: DataStore, repo: str) -> None:
    writers, puts = 4, 10
    errors: list[BaseException] = []
    barrier = threading.Barrier(writers)

    def work(w: int) -> None:
        try:
            barrier.wait()
            for i in range(puts):
                store.put_bytes(repo, None, f"w{w}/f{i}", f"{w}-{i}".encode())
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    commits = store.list_commits(repo, "master")
    assert len(commits) == writers * puts
    assert commits[-1].parent is None
    assert files(store, f"{repo}@master") == {
        f"w{w}/f{i}": f"{w}-{i}".encode() for w in range(writers) for i in range(puts)
    }
    sizes = [c.size for c in reversed(commits)]
    assert sizes == sorted(sizes)


def test_concurrent_puts_into_one_open_commit_lose_nothing(store: DataStore, repo: str) -> None:
    opened = store.start_commit(repo)
    barrier = threading.Barrier(4)

    def work(w: int) -> None:
        barrier.wait()
        for i in range(5):
            store.put_bytes(repo, opened.id, f"w{w}/f{i}", b"x")

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = store.finish_commit(repo)

    assert done.id == opened.id
    assert done.size == 20
    assert len(files(store, f"{repo}@master")) == 20
    assert history(store, repo) == [opened.id]


# -- the pieces fit ------------------------------------------------------------------


def test_datastore_is_built_from_its_parts(store: DataStore, backend: str) -> None:
    assert store.trees.objects is store.chunks.objects
    assert store.chunks.objects.url.startswith("file://" if backend == "local" else "memory://")


def test_callables_are_typed_for_the_factory(make_store: Callable[..., DataStore]) -> None:
    first, second = make_store(), make_store()
    first.create_repo("only-here")

    assert [r.name for r in second.list_repos()] == []
