"""Content-addressed trees against a dict model: walk, diff, canonical roots, conflicts."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from cairn.data import DirEntry, FileEntry, PathConflict, TreeStore
from cairn.storage import ChunkStore, CorruptObject, MemoryObjectStore

Model = dict[str, bytes]

components = st.sampled_from(["a", "b", "c"])
paths = st.lists(components, min_size=1, max_size=3).map("/".join)
contents = st.binary(max_size=12)


def without_conflicts(files: Model) -> Model:
    """Drop every path that is a folder of another path: a tree cannot hold both."""
    return {p: v for p, v in files.items() if not any(o.startswith(p + "/") for o in files)}


file_sets = st.dictionaries(paths, contents, max_size=12).map(without_conflicts)


class Trees:
    """A TreeStore plus a chunk store to make real file entries from bytes."""

    def __init__(self) -> None:
        objects = MemoryObjectStore()
        self.objects = objects
        self.chunks = ChunkStore(objects, avg_size=256)
        self.trees = TreeStore(objects)

    def entry(self, data: bytes) -> FileEntry:
        return FileEntry(self.chunks.write(io.BytesIO(data)))

    def build(self, files: Model, root: str | None = None) -> str | None:
        return self.trees.apply(root, {p: self.entry(v) for p, v in files.items()})

    def files(self, root: str | None) -> Model:
        return {p: self.chunks.read_bytes(e.content) for p, e in self.trees.walk(root)}


@pytest.fixture
def t() -> Trees:
    return Trees()


# -- walk and lookup ----------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(files=file_sets)
def test_walk_returns_exactly_what_was_put(files: Model) -> None:
    t = Trees()

    root = t.build(files)

    walked = list(t.trees.walk(root))
    assert [p for p, _ in walked] == sorted(files)
    assert t.files(root) == files
    assert (root is None) == (not files)


@settings(max_examples=50, deadline=None)
@given(files=file_sets)
def test_folders_count_and_size_the_files_below(files: Model) -> None:
    t = Trees()
    root = t.build(files)

    for path, entry in t.trees.walk_all(root):
        below = {p: v for p, v in files.items() if p == path or p.startswith(path + "/")}
        if isinstance(entry, DirEntry):
            assert entry.count == len(below)
            assert entry.size == sum(len(v) for v in below.values())
        else:
            assert below == {path: files[path]}
    if files:
        top = t.trees.lookup(root, "")
        assert isinstance(top, DirEntry)
        assert (top.count, top.size) == (len(files), sum(len(v) for v in files.values()))


def test_lookup_finds_files_and_folders(t: Trees) -> None:
    root = t.build({"a/b/c.txt": b"abc", "a/d.txt": b"d"})

    assert isinstance(t.trees.lookup(root, "a"), DirEntry)
    assert isinstance(t.trees.lookup(root, "a/b"), DirEntry)
    assert t.trees.lookup(root, "a/b/c.txt") == t.entry(b"abc")
    assert t.trees.lookup(root, "a/missing") is None
    assert t.trees.lookup(root, "a/d.txt/below") is None
    assert t.trees.lookup(None, "") is None


def test_children_are_direct_and_sorted(t: Trees) -> None:
    root = t.build({"z": b"1", "a/x": b"2", "a/y/z": b"3", "m": b"4"})

    assert [p for p, _ in t.trees.children(root, "")] == ["a", "m", "z"]
    assert [p for p, _ in t.trees.children(root, "a")] == ["a/x", "a/y"]
    assert t.trees.children(root, "z") == []
    assert t.trees.children(root, "nowhere") == []


def test_walk_of_a_file_path_yields_that_file(t: Trees) -> None:
    root = t.build({"a/b": b"x", "a/c": b"y"})

    assert [p for p, _ in t.trees.walk(root, "a/b")] == ["a/b"]
    assert [p for p, _ in t.trees.walk(root, "a")] == ["a/b", "a/c"]
    assert list(t.trees.walk(root, "missing")) == []


def test_datum_and_chunks_survive_a_reload(t: Trees) -> None:
    content = ChunkStore(t.objects, avg_size=256).write(io.BytesIO(bytes(range(256)) * 20))
    entry = FileEntry(content, datum="d" * 64)
    root = t.trees.apply(None, {"out/f": entry})

    fresh = TreeStore(t.objects)

    assert fresh.lookup(root, "out/f") == entry
    assert len(content.chunks) > 1


# -- writing ----------------------------------------------------------------------


def test_apply_with_no_changes_keeps_the_root(t: Trees) -> None:
    root = t.build({"a": b"1"})

    assert t.trees.apply(root, {}) == root
    assert t.trees.apply(None, {}) is None


def test_deleting_every_file_gives_the_empty_tree(t: Trees) -> None:
    files = {"a/b/c": b"1", "a/d": b"2", "e": b"3"}
    root = t.build(files)

    assert t.trees.apply(root, dict.fromkeys(files)) is None


def test_deleting_a_folder_removes_everything_below(t: Trees) -> None:
    root = t.build({"a/b/c": b"1", "a/d": b"2", "e": b"3"})

    root = t.trees.apply(root, {"a": None})

    assert t.files(root) == {"e": b"3"}


def test_removing_the_last_file_of_a_folder_removes_the_folder(t: Trees) -> None:
    root = t.build({"a/b/c": b"1", "e": b"3"})

    root = t.trees.apply(root, {"a/b/c": None})

    assert t.trees.lookup(root, "a") is None
    assert root == t.build({"e": b"3"})


def test_deleting_an_absent_path_changes_nothing(t: Trees) -> None:
    root = t.build({"a/b": b"1"})

    assert t.trees.apply(root, {"x": None, "a/zz": None, "a/b/below": None}) == root


@pytest.mark.parametrize(
    ("existing", "change"),
    [
        ({"a/b": b"1"}, "a"),  # a file where a folder is
        ({"a": b"1"}, "a/b"),  # a file below a file
        ({"a": b"1"}, "a/b/c"),
        ({"a/b": b"1"}, "a/b/c"),
    ],
)
def test_putting_across_a_file_folder_boundary_is_a_conflict(
    t: Trees, existing: Model, change: str
) -> None:
    root = t.build(existing)

    with pytest.raises(PathConflict):
        t.trees.apply(root, {change: t.entry(b"new")})
    assert t.files(root) == existing


def test_a_file_and_a_file_below_it_in_one_change_conflict(t: Trees) -> None:
    with pytest.raises(PathConflict):
        t.trees.apply(None, {"a": t.entry(b"1"), "a/b": t.entry(b"2")})


def test_replacing_a_file_by_a_folder_in_one_change(t: Trees) -> None:
    root = t.build({"a": b"file"})

    root = t.trees.apply(root, {"a": None, "a/b": t.entry(b"below")})

    assert t.files(root) == {"a/b": b"below"}


def test_replacing_a_folder_by_a_file_in_one_change(t: Trees) -> None:
    root = t.build({"a/b": b"below"})

    root = t.trees.apply(root, {"a/b": None, "a": t.entry(b"file")})

    assert t.files(root) == {"a": b"file"}


# -- canonical roots ---------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(files=file_sets, data=st.data())
def test_the_root_depends_on_content_not_on_history(files: Model, data: st.DataObject) -> None:
    t = Trees()
    order = data.draw(st.permutations(sorted(files)))
    extra = data.draw(st.dictionaries(paths, contents, max_size=4))

    at_once = t.build(files)
    one_by_one: str | None = None
    for path in order:
        one_by_one = t.build({path: files[path]}, one_by_one)
    # Files put and then deleted leave no trace in the root.
    detour = t.build(files)
    for path, value in extra.items():
        try:
            with_extra = t.build({path: value}, detour)
        except PathConflict:
            continue
        detour = t.trees.apply(with_extra, {path: None})
        if path in files:
            detour = t.build({path: files[path]}, detour)

    assert one_by_one == at_once
    assert detour == at_once


def test_different_content_gives_different_roots(t: Trees) -> None:
    assert t.build({"a": b"1"}) != t.build({"a": b"2"})
    assert t.build({"a": b"1"}) != t.build({"b": b"1"})
    assert t.build({"a/b": b"1"}) != t.build({"a_b": b"1"})


def test_an_unchanged_folder_keeps_its_node(t: Trees) -> None:
    root = t.build({"big/a": b"1", "big/b": b"2", "small/c": b"3"})
    before = t.trees.lookup(root, "big")

    root = t.build({"small/c": b"changed"}, root)

    assert t.trees.lookup(root, "big") == before


# -- diff ------------------------------------------------------------------------


def model_diff(old: Model, new: Model) -> dict[str, str]:
    out = {p: "deleted" for p in old.keys() - new.keys()}
    out |= {p: "added" for p in new.keys() - old.keys()}
    out |= {p: "modified" for p in old.keys() & new.keys() if old[p] != new[p]}
    return out


def status(old: FileEntry | None, new: FileEntry | None) -> str:
    return "added" if old is None else "deleted" if new is None else "modified"


@settings(max_examples=100, deadline=None)
@given(old=file_sets, new=file_sets)
def test_diff_matches_the_model(old: Model, new: Model) -> None:
    t = Trees()
    old_root = t.build(old)
    deletes = {p: None for p in old if p not in new}
    puts = {p: t.entry(v) for p, v in new.items() if old.get(p) != v}

    new_root = t.trees.apply(t.trees.apply(old_root, deletes), puts)
    changes = list(t.trees.diff(old_root, new_root))

    assert t.files(new_root) == new
    assert sorted(p for p, _, _ in changes) == sorted(model_diff(old, new))
    assert {p: status(a, b) for p, a, b in changes} == model_diff(old, new)
    for path, a, b in changes:
        assert a is None or t.chunks.read_bytes(a.content) == old[path]
        assert b is None or t.chunks.read_bytes(b.content) == new[path]


def test_diff_is_in_path_order(t: Trees) -> None:
    old = t.build({"a/x": b"1", "b": b"2", "c/d": b"3"})
    new = t.build({"a/x": b"changed", "b/y": b"4", "c/d": b"3", "d": b"5"})

    assert [p for p, _, _ in t.trees.diff(old, new)] == ["a/x", "b", "b/y", "d"]


def test_diff_is_in_path_order_when_a_folder_becomes_a_file(t: Trees) -> None:
    old = t.build({"a/x": b"1"})
    new = t.build({"a": b"2"})

    assert [p for p, _, _ in t.trees.diff(old, new)] == ["a", "a/x"]


@settings(max_examples=50, deadline=None)
@given(old=file_sets, new=file_sets, under=st.sampled_from(["a", "b", "a/b", "c/c"]))
def test_diff_under_a_path_is_the_diff_restricted_to_it(old: Model, new: Model, under: str) -> None:
    t = Trees()
    old_root, new_root = t.build(old), t.build(new)

    changes = {p: status(a, b) for p, a, b in t.trees.diff(old_root, new_root, under)}

    expected = {
        p: s for p, s in model_diff(old, new).items() if p == under or p.startswith(under + "/")
    }
    assert changes == expected


def test_diff_of_a_tree_with_itself_is_empty(t: Trees) -> None:
    root = t.build({"a/b": b"1", "c": b"2"})

    assert list(t.trees.diff(root, root)) == []
    assert list(t.trees.diff(None, None)) == []


def test_diff_notices_a_new_datum_on_the_same_bytes(t: Trees) -> None:
    content = t.chunks.write(io.BytesIO(b"same"))
    old = t.trees.apply(None, {"f": FileEntry(content, "datum-1")})
    new = t.trees.apply(None, {"f": FileEntry(content, "datum-2")})

    assert [(p, status(a, b)) for p, a, b in t.trees.diff(old, new)] == [("f", "modified")]


# -- stored nodes -----------------------------------------------------------------


def _node_key(root: str) -> str:
    return f"trees/{root[:2]}/{root}"


def test_a_node_that_does_not_match_its_hash_is_corrupt(t: Trees) -> None:
    root = t.build({"a": b"1"})
    other = t.build({"b": b"2"})
    t.objects._objects[_node_key(root)] = t.objects.get(_node_key(other))

    with pytest.raises(CorruptObject):
        TreeStore(t.objects).load(root)


def test_a_node_with_an_unknown_codec_is_corrupt(t: Trees) -> None:
    root = t.build({"a": b"1"})
    t.objects._objects[_node_key(root)] = b"\x05" + t.objects.get(_node_key(root))[1:]

    with pytest.raises(CorruptObject):
        TreeStore(t.objects).load(root)


def test_a_node_with_a_damaged_payload_is_corrupt(t: Trees) -> None:
    root = t.build({"a": b"1"})
    t.objects._objects[_node_key(root)] = b"\x01" + b"not a zstd frame"

    with pytest.raises(CorruptObject):
        TreeStore(t.objects).load(root)


# -- a random walk of puts and deletes ---------------------------------------------


class TreeMachine(RuleBasedStateMachine):
    """Puts and deletes against a dict, checking the tree against the dict after each step."""

    def __init__(self) -> None:
        super().__init__()
        self.t = Trees()
        self.root: str | None = None
        self.model: Model = {}

    def _conflicts(self, path: str) -> bool:
        parts = path.split("/")
        folders = {"/".join(parts[:i]) for i in range(1, len(parts))}
        return bool(folders & self.model.keys()) or any(
            p.startswith(path + "/") for p in self.model
        )

    @rule(path=paths, value=contents)
    def put(self, path: str, value: bytes) -> None:
        if self._conflicts(path):
            with pytest.raises(PathConflict):
                self.t.build({path: value}, self.root)
            return
        self.root = self.t.build({path: value}, self.root)
        self.model[path] = value

    @rule(path=paths)
    def delete(self, path: str) -> None:
        old_root = self.root
        self.root = self.t.trees.apply(self.root, {path: None})
        gone = {p for p in self.model if p == path or p.startswith(path + "/")}
        for p in gone:
            del self.model[p]
        changed = {p: status(a, b) for p, a, b in self.t.trees.diff(old_root, self.root)}
        assert changed == dict.fromkeys(gone, "deleted")

    @rule(files=st.dictionaries(paths, contents, max_size=4).map(without_conflicts))
    def put_many(self, files: Model) -> None:
        if any(self._conflicts(p) for p in files):
            return
        self.root = self.t.build(files, self.root)
        self.model.update(files)

    @invariant()
    def tree_matches_model(self) -> None:
        assert self.t.files(self.root) == self.model
        assert (self.root is None) == (not self.model)

    @invariant()
    def root_is_canonical(self) -> None:
        assert self.root == Trees().build(self.model)


TreeMachine.TestCase.settings = settings(max_examples=50, stateful_step_count=25, deadline=None)
test_tree_machine = TreeMachine.TestCase
