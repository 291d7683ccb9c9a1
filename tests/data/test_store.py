"""DataStore: repos, branches, the commit state machine, write_commit and provenance."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable

import pytest

from cairn.data import (
    AlreadyExists,
    CommitStateError,
    DataError,
    DataStore,
    InvalidReference,
    NotFound,
    Provenance,
    Ref,
)

from .helpers import files, history, put_bytes, read

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
        put_bytes(store, "nope", None, "a", b"x")


def test_delete_repo_removes_its_branches_and_commits(store: DataStore, repo: str) -> None:
    put_bytes(store, repo, None, "a", b"1")

    store.delete_repo(repo)

    assert store.list_repos() == []
    with pytest.raises(NotFound):
        store.inspect_commit(repo, "master")
    store.create_repo(repo)
    assert store.inspect_repo(repo).branches == ()
    assert store.list_commits(repo) == []


def test_repo_size_is_the_size_of_the_master_head(store: DataStore, repo: str) -> None:
    put_bytes(store, repo, None, "a", b"12345")
    put_bytes(store, repo, None, "b/c", b"678")
    put_bytes(store, repo, "dev", "big", b"x" * 1000)

    info = store.inspect_repo(repo)

    assert info.size == 8
    assert info.branches == ("dev", "master")


# -- branches -------------------------------------------------------------------------


def test_create_branch_with_a_head(store: DataStore, repo: str) -> None:
    first = put_bytes(store, repo, None, "a", b"1")
    second = put_bytes(store, repo, None, "a", b"2")

    dev = store.create_branch(repo, "dev", head="master^")
    same = store.create_branch(repo, "same", head=second.id)

    assert dev.head == first.id
    assert same.head == second.id
    assert read(store, f"{repo}@dev:/a") == b"1"
    assert [b.name for b in store.list_branches(repo)] == ["dev", "master", "same"]


def test_create_branch_moves_an_existing_branch(store: DataStore, repo: str) -> None:
    first = put_bytes(store, repo, None, "a", b"1")
    put_bytes(store, repo, None, "a", b"2")

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
    commit = put_bytes(store, repo, "dev", "a", b"kept")

    store.delete_branch(repo, "dev")

    assert [b.name for b in store.list_branches(repo)] == []
    assert read(store, f"{repo}@{commit.id}:/a") == b"kept"
    with pytest.raises(NotFound):
        store.delete_branch(repo, "dev")


# -- one-step commits ---------------------------------------------------------------


def test_a_put_makes_a_finished_auto_commit(store: DataStore, repo: str) -> None:
    commit = put_bytes(store, repo, None, "/a/b.txt", b"hello")

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
    commits = [put_bytes(store, repo, None, f"f{i}", b"x" * i) for i in range(1, 5)]

    assert [c.parent for c in commits] == [None] + [c.id for c in commits[:-1]]
    assert [c.size for c in commits] == [1, 3, 6, 10]
    assert history(store, repo) == [c.id for c in reversed(commits)]
    assert files(store, f"{repo}@master") == {f"f{i}": b"x" * i for i in range(1, 5)}


def test_put_to_a_pipeline_repo_raises_data_error(store: DataStore, make_repo) -> None:
    out = make_repo("edges", type="pipeline")

    with pytest.raises(DataError):
        put_bytes(store, out, None, "a", b"x")
    with pytest.raises(DataError):
        store.start_commit(out)
    with pytest.raises(DataError):
        store.delete_files(out, None, ["/"])
    assert store.list_commits(out) == []


# -- open commits ---------------------------------------------------------------------


def test_start_put_finish(store: DataStore, repo: str) -> None:
    base = put_bytes(store, repo, None, "base", b"0")

    opened = store.start_commit(repo, description="by hand")
    by_branch = put_bytes(store, repo, "master", "a", b"1")
    by_id = put_bytes(store, repo, opened.id, "b", b"22")
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
    put_bytes(store, repo, None, "a", b"1")

    assert store.inspect_commit(repo, "master").id == opened.id
    assert store.inspect_commit(repo, "master").state == "open"
    assert read(store, f"{repo}@master:/a") == b"1"


def test_start_commit_creates_the_branch(store: DataStore, repo: str) -> None:
    opened = store.start_commit(repo, "dev")

    assert store.inspect_branch(repo, "dev").head == opened.id
    assert opened.parent is None
    assert store.finish_commit(repo, "dev").size == 0


def test_start_commit_on_a_bad_branch_name_raises_invalid_reference(
    store: DataStore, repo: str
) -> None:
    with pytest.raises(InvalidReference):
        store.start_commit(repo, "bad name")


def test_wait_commit(store: DataStore, repo: str) -> None:
    opened = store.start_commit(repo)

    with pytest.raises(TimeoutError):
        store.wait_commit(repo, opened.id, timeout=0.05, poll=0.01)
    finisher = threading.Timer(0.05, store.finish_commit, args=(repo, opened.id))
    finisher.start()
    done = store.wait_commit(repo, "master", timeout=10, poll=0.01)
    finisher.join()

    assert (done.id, done.state) == (opened.id, "finished")
    assert store.wait_commit(repo, opened.id, timeout=0).id == opened.id


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
    put_bytes(store, repo, None, "a", b"1")

    with pytest.raises(CommitStateError):
        store.finish_commit(repo)


def test_put_to_a_finished_commit_id_raises_commit_state_error(store: DataStore, repo: str) -> None:
    opened = store.start_commit(repo)
    put_bytes(store, repo, opened.id, "a", b"1")
    done = store.finish_commit(repo, opened.id)

    with pytest.raises(CommitStateError):
        put_bytes(store, repo, opened.id, "b", b"2")
    with pytest.raises(CommitStateError):
        store.delete_files(repo, opened.id, ["a"])

    assert store.inspect_commit(repo, opened.id) == done


def test_put_to_an_unknown_commit_id_raises_not_found(store: DataStore, repo: str) -> None:
    with pytest.raises(NotFound):
        put_bytes(store, repo, "0" * 32, "a", b"1")


def test_a_finished_commit_never_changes(store: DataStore, repo: str) -> None:
    put_bytes(store, repo, None, "keep/a", b"a")
    put_bytes(store, repo, None, "gone", b"g")
    snapshot = store.inspect_commit(repo)
    before = files(store, f"{repo}@{snapshot.id}")

    put_bytes(store, repo, None, "keep/a", b"changed")
    store.put_files(repo, None, [("gone", io.BytesIO(b"more"))], append=True)
    store.delete_files(repo, None, ["keep"])
    store.start_commit(repo)
    put_bytes(store, repo, None, "new", b"n")
    store.finish_commit(repo)

    assert store.inspect_commit(repo, snapshot.id) == snapshot
    assert files(store, f"{repo}@{snapshot.id}") == before == {"keep/a": b"a", "gone": b"g"}


# -- resolving ------------------------------------------------------------------------


def test_ancestry_steps_back_along_parents(store: DataStore, repo: str) -> None:
    ids = [put_bytes(store, repo, None, "f", bytes([i])).id for i in range(4)]

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
    commit = put_bytes(store, repo, None, "f", b"x")

    assert store.inspect_commit(repo, commit.id[:6]).id == commit.id
    assert store.inspect_commit(repo, commit.id[:31]).id == commit.id
    with pytest.raises(NotFound):
        store.inspect_commit(repo, commit.id[:5])  # too short: taken as a branch name
    with pytest.raises(NotFound):
        store.inspect_commit(repo, "ffffff" if not commit.id.startswith("ffffff") else "eeeeee")


def test_an_ambiguous_prefix_raises_not_found(store: DataStore, repo: str) -> None:
    first = store.write_commit(
        repo, "master", None, expected_head=None, commit_id="abcdef" + "0" * 26
    )
    second = store.write_commit(
        repo, "master", None, expected_head=first.id, commit_id="abcdef" + "1" * 26
    )

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
    master = [put_bytes(store, repo, None, "f", bytes([i])).id for i in range(3)]
    dev = put_bytes(store, repo, "dev", "g", b"d").id

    assert history(store, repo) == master[::-1]
    assert [c.id for c in store.list_commits(repo, "master", limit=2)] == master[:0:-1]
    assert history(store, repo, "dev") == [dev]
    assert [c.id for c in store.list_commits(repo)] == [dev, *master[::-1]]
    assert [c.id for c in store.list_commits(repo, limit=1)] == [dev]


# -- write_commit and provenance ----------------------------------------------------


def test_write_commit_with_provenance_and_subvenance(store: DataStore, make_repo) -> None:
    src, out = make_repo("src"), make_repo("out", type="pipeline")
    inp = put_bytes(store, src, None, "in", b"data")
    tree = store.inspect_commit(src).tree

    written = store.write_commit(
        out,
        "master",
        tree,
        expected_head=None,
        commit_id=inp.id,
        provenance=[Provenance("images", src, "master", inp.id)],
        info={"job": "j1"},
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
    first = put_bytes(store, repo, None, "a", b"1")

    second = store.write_commit(
        repo, "master", first.tree, expected_head=first.id, commit_id=first.id
    )

    assert second.id != first.id
    assert second.parent == first.id


def test_write_commit_with_a_stale_head_writes_nothing(store: DataStore, repo: str) -> None:
    first = put_bytes(store, repo, None, "a", b"1")
    second = put_bytes(store, repo, None, "a", b"2")
    src = put_bytes(store, repo, "other", "x", b"x")

    with pytest.raises(CommitStateError):
        store.write_commit(
            repo,
            "master",
            first.tree,
            expected_head=first.id,
            commit_id="c" * 32,
            provenance=[Provenance("in", repo, "other", src.id)],
        )
    with pytest.raises(CommitStateError):
        store.write_commit(repo, "fresh", first.tree, expected_head=second.id)

    assert history(store, repo) == [second.id, first.id]
    assert len(store.list_commits(repo)) == 3
    assert store.subvenance(repo, src.id) == []
    with pytest.raises(NotFound):
        store.inspect_commit(repo, "c" * 32)
    assert [b.name for b in store.list_branches(repo)] == ["master", "other"]


def test_write_commit_to_a_bad_branch_name_raises_invalid_reference(
    store: DataStore, repo: str
) -> None:
    with pytest.raises(InvalidReference):
        store.write_commit(repo, "bad name", None, expected_head=None)


# -- concurrency ---------------------------------------------------------------------


def test_concurrent_puts_to_one_branch_lose_nothing(store: DataStore, repo: str) -> None:
    writers, puts = 4, 10
    errors: list[BaseException] = []
    barrier = threading.Barrier(writers)

    def work(w: int) -> None:
        try:
            barrier.wait()
            for i in range(puts):
                put_bytes(store, repo, None, f"w{w}/f{i}", f"{w}-{i}".encode())
        except BaseException as exc:  # reported by the main thread
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
            put_bytes(store, repo, opened.id, f"w{w}/f{i}", b"x")

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
    scheme = {"local": "file://", "memory": "memory://", "s3+postgresql": "s3://"}[backend]
    assert store.chunks.objects.url.startswith(scheme)


def test_stores_from_the_factory_are_independent(make_store: Callable[..., DataStore]) -> None:
    first, second = make_store(), make_store()
    first.create_repo("only-here")

    assert [r.name for r in second.list_repos()] == []


@pytest.mark.parametrize("backend", ["memory"])  # the retry loop is the same on every backend
def test_a_writer_that_keeps_losing_backs_off_then_gives_up(
    store: DataStore, repo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every attempt loses: another put moves the branch between the read and the write.
    # The compare-and-set retried 100 times back to back; now it pauses a random, growing
    # time between attempts (tenacity) before CommitStateError. The pauses are recorded,
    # not slept.
    import time

    from cairn.data import CommitStateError

    pauses: list[float] = []
    monkeypatch.setattr(time, "sleep", pauses.append)
    put_bytes(store, repo, None, "seed", b"0")
    calls = []

    def change(root: str | None) -> str | None:
        calls.append(root)
        put_bytes(store, repo, None, f"other/{len(calls)}", b"x")
        return root

    with pytest.raises(CommitStateError):
        store.commit_log.update_tree(repo, None, change)
    assert len(calls) == 100
    assert len(pauses) == 99 and all(0 <= p <= 0.1 for p in pauses)
    assert sum(pauses[-50:]) > sum(pauses[:5])  # the pauses grow (up to their cap)


def test_datastore_is_composed_of_a_commit_log_and_files(store: DataStore) -> None:
    # Issue 10: no mixin reads attributes its subclass sets; the parts are given explicitly.
    assert DataStore.__mro__ == (DataStore, object)
    assert store.files.commit_log is store.commit_log
    assert store.files.trees is store.trees is store.commit_log.trees
    assert store.files.pins is store.pins
