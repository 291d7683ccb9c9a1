"""fsck (cairn.data.fsck): a healthy store has no problems; each kind of damage is found,
named, and tied to the commits it hurts; nothing is changed."""

from __future__ import annotations

import io
import random
from collections.abc import Callable

import pytest

from cairn.catalog import CatalogChunkIndex
from cairn.data import DataStore, FileEntry
from cairn.data.fsck import check_store
from cairn.storage import ChunkLocation, ChunkStore, Content
from cairn.storage.packs import read_pack_footer


@pytest.fixture
def damaged(make_store: Callable[..., DataStore]) -> tuple[DataStore, dict[str, str]]:
    """A store with loose and packed chunks in two repos; returns it and the commits
    (``repo@id``) of each repo's head."""
    base = make_store(avg_size=256)
    chunks = ChunkStore(
        base.chunks.objects, avg_size=256, index=CatalogChunkIndex(base.catalog), pack_size=2048
    )
    store = DataStore(base.catalog, chunks)
    heads = {}
    for n, repo in enumerate(("left", "right")):
        store.create_repo(repo)
        rng = random.Random(n)
        items = [(f"dir/f{i}.bin", io.BytesIO(rng.randbytes(100 + 400 * i))) for i in range(6)]
        info = store.put_files(repo, None, items)
        heads[repo] = f"{repo}@{info.id}"
    return store, heads


def snapshot(store: DataStore) -> dict[str, bytes]:
    objects = store.chunks.objects
    return {key: objects.get(key) for key in objects.list()}


def rewrite(store: DataStore, key: str, body: bytes) -> None:
    store.chunks.objects.delete(key)
    store.chunks.objects.put(key, body)


def flip(body: bytes, at: int) -> bytes:
    return body[:at] + bytes([body[at] ^ 0xFF]) + body[at + 1 :]


def kinds(store: DataStore) -> dict[str, list]:
    found: dict[str, list] = {}
    for problem in check_store(store).problems:
        found.setdefault(problem.kind, []).append(problem)
    return found


def file_of(store: DataStore, ref: str, path: str) -> FileEntry:
    repo, _, commit = ref.partition("@")
    tree = store.inspect_commit(repo, commit).tree
    entry = store.trees.lookup(tree, path)
    assert isinstance(entry, FileEntry)
    return entry


def test_a_healthy_store_has_no_problems(damaged):
    store, _heads = damaged
    before = snapshot(store)
    report = check_store(store)
    assert report.ok and report.problems == []
    assert report.commits == 2 and report.packs > 1 and report.loose_chunks > 0
    assert report.index_rows > 0 and report.contents == 12
    assert snapshot(store) == before


def test_a_flipped_byte_in_a_loose_chunk(damaged):
    store, heads = damaged
    entry = file_of(store, heads["left"], "dir/f5.bin")
    loose = [
        f"chunks/{c.hash[:2]}/{c.hash}"
        for c in entry.content.chunks
        if store.chunks.objects.exists(f"chunks/{c.hash[:2]}/{c.hash}")
    ]
    key = loose[0]
    rewrite(store, key, flip(store.chunks.objects.get(key), 5))
    before = snapshot(store)
    [problem] = kinds(store)["corrupt-chunk"]
    assert problem.object == key
    assert heads["left"] in problem.commits
    assert snapshot(store) == before


def test_a_flipped_byte_in_a_pack_frame(damaged):
    store, heads = damaged
    entry = file_of(store, heads["right"], "dir/f0.bin")
    [ref] = entry.content.chunks  # 100 bytes: one small chunk, packed
    [loc] = store.chunks.index.find([ref.hash]).values()
    body = store.chunks.objects.get(loc.pack)
    rewrite(store, loc.pack, flip(body, loc.offset + loc.length - 1))
    found = kinds(store)
    assert [p.object for p in found["corrupt-pack"]] == [loc.pack]
    [problem] = found["corrupt-chunk"]
    assert problem.object == f"chunks/{ref.hash[:2]}/{ref.hash}"
    assert problem.commits == (heads["right"],)


def test_a_deleted_pack(damaged):
    store, heads = damaged
    entry = file_of(store, heads["left"], "dir/f0.bin")
    [loc] = store.chunks.index.find([entry.content.chunks[0].hash]).values()
    store.chunks.objects.delete(loc.pack)
    [problem] = kinds(store)["missing-pack"]
    assert problem.object == loc.pack
    assert heads["left"] in problem.commits


def test_a_deleted_tree_node(damaged):
    store, heads = damaged
    repo, _, commit = heads["right"].partition("@")
    folder = store.trees.lookup(store.inspect_commit(repo, commit).tree, "dir")
    assert folder is not None
    store.chunks.objects.delete(f"trees/{folder.hash[:2]}/{folder.hash}")
    found = kinds(store)
    [problem] = found["missing-tree"]
    assert problem.object.endswith(folder.hash)
    assert problem.commits == (heads["right"],)
    assert set(found) == {"missing-tree"}


def test_an_index_row_pointing_past_the_end_of_its_pack(damaged):
    store, heads = damaged
    entry = file_of(store, heads["left"], "dir/f0.bin")
    [loc] = store.chunks.index.find([entry.content.chunks[0].hash]).values()
    size = len(store.chunks.objects.get(loc.pack))
    past = ChunkLocation(loc.hash, loc.pack, size + 10, loc.length, loc.size)
    store.chunks.index.relocate([past])
    [problem] = kinds(store)["bad-index-row"]
    assert problem.object == f"chunks/{loc.hash[:2]}/{loc.hash}"
    assert problem.commits == (heads["left"],)


def test_a_missing_loose_chunk(damaged):
    store, heads = damaged
    entry = file_of(store, heads["left"], "dir/f5.bin")
    key = next(
        f"chunks/{c.hash[:2]}/{c.hash}"
        for c in entry.content.chunks
        if store.chunks.objects.exists(f"chunks/{c.hash[:2]}/{c.hash}")
    )
    store.chunks.objects.delete(key)
    [problem] = kinds(store)["missing-chunk"]
    assert problem.object == key and heads["left"] in problem.commits


def test_a_content_hash_that_its_chunks_do_not_match(damaged):
    store, heads = damaged
    entry = file_of(store, heads["left"], "dir/f3.bin")
    wrong = Content("0" * 64, entry.content.size, entry.content.chunks)
    head = store.inspect_commit("left")
    tree = store.trees.apply(head.tree, {"bad.bin": FileEntry(wrong)})
    info = store.write_commit("left", "master", tree, expected_head=head.id, origin="auto")
    [problem] = kinds(store)["corrupt-content"]
    assert problem.object == f"content {'0' * 64}"
    assert problem.commits == (f"left@{info.id}",)


def test_a_pack_whose_footer_does_not_parse(damaged):
    store, _heads = damaged
    pack = next(iter(store.chunks.objects.list("packs/")))
    body = store.chunks.objects.get(pack)
    assert read_pack_footer(pack, body)
    rewrite(store, pack, body[:-3] + b"XYZ")
    problems = kinds(store)["corrupt-pack"]
    assert {p.object for p in problems} == {pack}


def test_a_folder_of_many_small_files_costs_one_index_query_per_tree_node(
    make_store: Callable[..., DataStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    # before: one chunk-index query per file (2,000 small files: 2 s of fsck, found by the
    # reliability campaign, which runs fsck after every kill)
    store = make_store(avg_size=256)
    store.create_repo("many")
    rng = random.Random(7)
    store.put_files("many", None, [(f"d/f{i}", io.BytesIO(rng.randbytes(60))) for i in range(400)])
    calls: list[int] = []
    find = CatalogChunkIndex.find

    def counted(self: CatalogChunkIndex, hashes: object) -> dict[str, ChunkLocation]:
        calls.append(1)
        return find(self, hashes)  # type: ignore[arg-type]

    monkeypatch.setattr(CatalogChunkIndex, "find", counted)
    report = check_store(store)
    assert report.ok and report.contents == 400
    assert len(calls) <= report.tree_nodes + 2
