"""Tests of cairn.pipelines.datums: cutting input commits into datums, datum ids (which
paths) versus datum hashes (did they change), and the cross / union / join / group
combinators, over an in-process DataStore."""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cairn.catalog import open_catalog
from cairn.data import CommitInfo, DataStore
from cairn.pipelines.datums import Datum
from cairn.pipelines.datums import build_datums as build_datums_by_branch
from cairn.pipelines.spec import Input, load_specs
from cairn.storage import ChunkStore, MemoryObjectStore

SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

names = st.from_regex(r"[a-z0-9_]{1,8}(\.txt|\.csv)?", fullmatch=True)
contents = st.binary(max_size=48)
file_sets = st.dictionaries(names, contents, min_size=1, max_size=10)


class Repos:
    """Fresh repos in one DataStore; every call makes a new repo name."""

    def __init__(self, store: DataStore) -> None:
        self.store = store
        self._counter = itertools.count()

    def new(self, files: Mapping[str, bytes]) -> tuple[str, CommitInfo]:
        name = f"repo{next(self._counter)}"
        self.store.create_repo(name)
        return name, self.put(name, files)

    def put(self, repo: str, files: Mapping[str, bytes]) -> CommitInfo:
        """A new commit on master overwriting ``files`` (others stay as they were)."""
        items = [(path, io.BytesIO(data)) for path, data in files.items()]
        return self.store.put_files(repo, None, items)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DataStore]:
    catalog = open_catalog(f"sqlite:///{tmp_path}/c.db")
    yield DataStore(catalog, ChunkStore(MemoryObjectStore(), avg_size=256))
    catalog.dispose()


@pytest.fixture
def repos(store: DataStore) -> Repos:
    return Repos(store)


def spec_input(value: Mapping[str, Any]) -> Input:
    """The ``input`` of a pipeline spec, parsed the way ``create pipeline`` parses it."""
    spec = {"pipeline": {"name": "p"}, "transform": {"cmd": ["true"]}, "input": value}
    return load_specs(json.dumps(spec))[0].input


def build_datums(store: Any, spec: Any, commits: dict[str, Any]) -> list[Any]:
    """build_datums with commits given per input name; every test repo reads branch master."""
    return build_datums_by_branch(store, spec, {(c.repo, "master"): c for c in commits.values()})


def pfs(repo: str, glob: str = "/*", **extra: Any) -> dict[str, Any]:
    return {"pfs": {"repo": repo, "glob": glob, **extra}}


def by_id(datums: list[Datum], salt: str = "salt") -> dict[str, str]:
    return {d.id: d.hash(salt) for d in datums}


def paths(datum: Datum) -> list[str]:
    return sorted(f"{f.input}:/{f.path}" for f in datum.files)


# -- properties of glob "/*" over flat files ---------------------------------------------------
@SETTINGS
@given(files=file_sets)
def test_ids_are_unique_and_stable(repos: Repos, files: dict[str, bytes]) -> None:
    repo, commit = repos.new(files)
    spec = spec_input(pfs(repo))

    first = build_datums(repos.store, spec, {repo: commit})
    again = build_datums(repos.store, spec, {repo: commit})

    ids = [d.id for d in first]
    assert len(ids) == len(set(ids)) == len(files)
    assert ids == [d.id for d in again]
    assert by_id(first) == by_id(again)
    assert sorted(paths(d)[0] for d in first) == sorted(f"{repo}:/{n}" for n in files)


@SETTINGS
@given(files=file_sets, data=st.data())
def test_hash_changes_iff_a_file_of_the_datum_changed(
    repos: Repos, files: dict[str, bytes], data: st.DataObject
) -> None:
    repo, before = repos.new(files)
    # New content for some files; drawing from the old value too means some "changes"
    # write identical bytes, which must not count as a change.
    rewrite = data.draw(
        st.dictionaries(
            st.sampled_from(sorted(files)),
            st.one_of(contents, st.sampled_from(list(files.values()))),
            min_size=1,
        )
    )
    after = repos.put(repo, rewrite)
    spec = spec_input(pfs(repo))

    old = {
        paths(d)[0]: (d.id, d.hash("s")) for d in build_datums(repos.store, spec, {repo: before})
    }
    new = {paths(d)[0]: (d.id, d.hash("s")) for d in build_datums(repos.store, spec, {repo: after})}

    assert old.keys() == new.keys()
    for name in files:
        key = f"{repo}:/{name}"
        changed = name in rewrite and rewrite[name] != files[name]
        assert old[key][0] == new[key][0], "a datum's id depends only on its paths"
        assert (old[key][1] != new[key][1]) == changed, name


@SETTINGS
@given(files=file_sets, data=st.data())
def test_modifying_k_files_changes_exactly_k_hashes(
    repos: Repos, files: dict[str, bytes], data: st.DataObject
) -> None:
    repo, before = repos.new(files)
    k = data.draw(st.integers(min_value=0, max_value=len(files)))
    chosen = data.draw(st.permutations(sorted(files)))[:k]
    after = repos.put(repo, {n: files[n] + b"+changed" for n in chosen}) if k else before
    spec = spec_input(pfs(repo))

    old = by_id(build_datums(repos.store, spec, {repo: before}))
    new = by_id(build_datums(repos.store, spec, {repo: after}))

    assert old.keys() == new.keys()
    assert sum(old[i] != new[i] for i in old) == k


@SETTINGS
@given(files=file_sets, salts=st.lists(st.text(max_size=16), min_size=2, max_size=2, unique=True))
def test_salt_changes_every_hash_and_no_id(
    repos: Repos, files: dict[str, bytes], salts: list[str]
) -> None:
    repo, commit = repos.new(files)
    datums = build_datums(repos.store, spec_input(pfs(repo)), {repo: commit})

    first, second = by_id(datums, salts[0]), by_id(datums, salts[1])

    assert first.keys() == second.keys()
    assert all(first[i] != second[i] for i in first)


# -- combinators ---------------------------------------------------------------------------
@SETTINGS
@given(left=file_sets, right=file_sets)
def test_cross_count_is_the_product(
    repos: Repos, left: dict[str, bytes], right: dict[str, bytes]
) -> None:
    a, ca = repos.new(left)
    b, cb = repos.new(right)

    datums = build_datums(repos.store, spec_input({"cross": [pfs(a), pfs(b)]}), {a: ca, b: cb})

    assert len(datums) == len(left) * len(right)
    assert len({d.id for d in datums}) == len(datums)
    assert all({f.input for f in d.files} == {a, b} for d in datums)


@SETTINGS
@given(sets=st.lists(file_sets, min_size=1, max_size=3))
def test_union_count_is_the_sum(repos: Repos, sets: list[dict[str, bytes]]) -> None:
    made = [repos.new(files) for files in sets]
    spec = spec_input({"union": [pfs(name) for name, _ in made]})

    datums = build_datums(repos.store, spec, {name: commit for name, commit in made})

    assert len(datums) == sum(len(files) for files in sets)
    assert len({d.id for d in datums}) == len(datums)


@SETTINGS
@given(
    stems_a=st.sets(st.from_regex(r"[a-z]{1,4}", fullmatch=True), max_size=6),
    stems_b=st.sets(st.from_regex(r"[a-z]{1,4}", fullmatch=True), max_size=6),
)
def test_join_pairs_by_key(repos: Repos, stems_a: set[str], stems_b: set[str]) -> None:
    assume(stems_a and stems_b)
    a, ca = repos.new({f"{s}.txt": s.encode() for s in stems_a})
    b, cb = repos.new({f"{s}.csv": s.encode() for s in stems_b})
    inner = spec_input(
        {"join": [pfs(a, "/(*).txt", join_on="$1"), pfs(b, "/(*).csv", join_on="$1")]}
    )
    outer = spec_input(
        {
            "join": [
                pfs(a, "/(*).txt", join_on="$1", outer_join=True),
                pfs(b, "/(*).csv", join_on="$1"),
            ]
        }
    )

    joined = build_datums(repos.store, inner, {a: ca, b: cb})
    with_outer = build_datums(repos.store, outer, {a: ca, b: cb})

    assert sorted(d.key for d in joined) == sorted(stems_a & stems_b)
    assert all(paths(d) == [f"{a}:/{d.key}.txt", f"{b}:/{d.key}.csv"] for d in joined)
    assert sorted(d.key for d in with_outer) == sorted(stems_a)


def test_group_gathers_files_with_equal_keys(repos: Repos) -> None:
    files = {
        "x-1.log": b"1",
        "x-2.log": b"2",
        "y-1.log": b"3",
        "z-1.log": b"4",
        "z-2.log": b"5",
        "z-3.log": b"6",
        "other.txt": b"7",
    }
    repo, commit = repos.new(files)
    spec = spec_input({"group": [pfs(repo, "/(*)-*.log", group_by="$1")]})

    datums = build_datums(repos.store, spec, {repo: commit})

    assert {d.key: len(d.files) for d in datums} == {"x": 2, "y": 1, "z": 3}


def test_group_across_two_inputs(repos: Repos) -> None:
    a, ca = repos.new({"k1-a.txt": b"", "k2-a.txt": b""})
    b, cb = repos.new({"k1-b.txt": b"", "k3-b.txt": b""})
    spec = spec_input(
        {"group": [pfs(a, "/(*)-*.txt", group_by="$1"), pfs(b, "/(*)-*.txt", group_by="$1")]}
    )

    datums = build_datums(repos.store, spec, {a: ca, b: cb})

    assert {d.key: paths(d) for d in datums} == {
        "k1": [f"{a}:/k1-a.txt", f"{b}:/k1-b.txt"],
        "k2": [f"{a}:/k2-a.txt"],
        "k3": [f"{b}:/k3-b.txt"],
    }


# -- globs and datum contents ----------------------------------------------------------------
def test_root_glob_is_one_datum_of_every_file(repos: Repos) -> None:
    repo, commit = repos.new({"a": b"1", "dir/b": b"22", "dir/sub/c": b"333"})

    [datum] = build_datums(repos.store, spec_input(pfs(repo, "/")), {repo: commit})

    assert datum.roots == ((repo, repo, "master", "/"),)
    assert paths(datum) == [f"{repo}:/a", f"{repo}:/dir/b", f"{repo}:/dir/sub/c"]
    assert datum.size == 6


def test_star_glob_makes_folders_one_datum_each(repos: Repos) -> None:
    repo, commit = repos.new({"a": b"1", "dir/b": b"2", "dir/sub/c": b"3", "e/f": b"4"})

    datums = build_datums(repos.store, spec_input(pfs(repo)), {repo: commit})

    assert {d.roots[0][3]: paths(d) for d in datums} == {
        "/a": [f"{repo}:/a"],
        "/dir": [f"{repo}:/dir/b", f"{repo}:/dir/sub/c"],
        "/e": [f"{repo}:/e/f"],
    }


def test_glob_that_matches_nothing_makes_no_datums(repos: Repos) -> None:
    repo, commit = repos.new({"a.txt": b"1"})
    assert build_datums(repos.store, spec_input(pfs(repo, "/*.csv")), {repo: commit}) == []
    assert (
        build_datums(
            repos.store,
            spec_input({"cross": [pfs(repo), pfs(repo, "/*.csv", name="none")]}),
            {repo: commit, "none": commit},
        )
        == []
    )


def test_input_name_renames_the_folder_not_the_repo(repos: Repos) -> None:
    repo, commit = repos.new({"a.txt": b"abc"})

    [datum] = build_datums(repos.store, spec_input(pfs(repo, name="images")), {"images": commit})

    [file] = datum.files
    assert file.to_json() == {
        "input": "images",
        "repo": repo,
        "branch": "master",
        "commit": commit.id,
        "path": "/a.txt",
        "hash": file.entry.hash,
        "size": 3,
    }


def test_ids_do_not_depend_on_input_order_in_a_cross(repos: Repos) -> None:
    a, ca = repos.new({"x": b"1", "y": b"2"})
    b, cb = repos.new({"z": b"3"})
    heads = {a: ca, b: cb}

    ab = build_datums(repos.store, spec_input({"cross": [pfs(a), pfs(b)]}), heads)
    ba = build_datums(repos.store, spec_input({"cross": [pfs(b), pfs(a)]}), heads)

    assert sorted(by_id(ab).items()) == sorted(by_id(ba).items())
    assert len(ab) == 2
