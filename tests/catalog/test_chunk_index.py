"""The ChunkIndex conformance suite: every backend (memory, SQLite, PostgreSQL) answers alike.

Pins find/contains on nothing, first-location-wins on add, remove, relocate, a scan
that yields every row, the SQL batching of more than 2,000 hashes, and duplicates in
a query; then a random sequence of operations checked against a dict after each.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import blake3
import pytest

from cairn.catalog import Catalog, CatalogChunkIndex, open_catalog
from cairn.storage import ChunkIndex, ChunkLocation, MemoryChunkIndex

INDEX_BACKENDS = ["memory", "sqlite", "postgresql"]


@pytest.fixture(params=INDEX_BACKENDS)
def make_index(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[[], ChunkIndex]]:
    """A factory of empty chunk indexes of the parametrized backend (PostgreSQL: a fresh
    database on the session's server, see tests/conftest.py)."""
    catalogs: list[Catalog] = []
    make_url = (
        request.getfixturevalue("make_postgres_url") if request.param == "postgresql" else None
    )

    def make() -> ChunkIndex:
        if request.param == "memory":
            return MemoryChunkIndex()
        url = make_url() if make_url else f"sqlite:///{tmp_path}/catalog-{len(catalogs)}.db"
        catalog = open_catalog(url)
        catalogs.append(catalog)
        return CatalogChunkIndex(catalog)

    yield make
    for catalog in catalogs:
        catalog.dispose()


@pytest.fixture
def index(make_index: Callable[[], ChunkIndex]) -> ChunkIndex:
    return make_index()


def h(i: int) -> str:
    return blake3.blake3(i.to_bytes(8, "little", signed=True)).hexdigest()


def loc(i: int, pack: str = "packs/aa/one", offset: int | None = None) -> ChunkLocation:
    return ChunkLocation(h(i), pack, 8 + 100 * i if offset is None else offset, 50 + i, 40 + i)


def test_an_empty_index_finds_nothing(index: ChunkIndex) -> None:
    assert index.find([]) == {}
    assert index.find([h(1), h(2)]) == {}
    assert index.contains([]) == set()
    assert index.contains([h(1)]) == set()
    assert list(index.scan()) == []
    index.add([])
    index.remove([])
    index.relocate([])
    assert list(index.scan()) == []


def test_add_then_find_gives_the_locations_back(index: ChunkIndex) -> None:
    rows = [loc(i) for i in range(10)]
    index.add(rows)

    assert index.find([r.hash for r in rows]) == {r.hash: r for r in rows}
    assert index.find([h(3), h(99)]) == {h(3): rows[3]}
    assert index.contains([h(3), h(99), h(4)]) == {h(3), h(4)}


def test_offsets_and_sizes_past_four_gib_survive(index: ChunkIndex) -> None:
    big = ChunkLocation(h(1), "packs/bb/big", 5 << 30, 3 << 31, 7 << 32)
    index.add([big])
    assert index.find([big.hash]) == {big.hash: big}
    assert list(index.scan()) == [big]


def test_adding_a_known_hash_keeps_the_first_location(index: ChunkIndex) -> None:
    first = loc(1, "packs/aa/first")
    index.add([first])
    index.add([loc(1, "packs/bb/second", 999), loc(2)])

    assert index.find([h(1), h(2)]) == {h(1): first, h(2): loc(2)}
    assert sorted(r.hash for r in index.scan()) == sorted([h(1), h(2)])


def test_a_hash_twice_in_one_add_keeps_the_first(index: ChunkIndex) -> None:
    index.add([loc(1, "packs/aa/first"), loc(1, "packs/bb/second")])
    assert index.find([h(1)]) == {h(1): loc(1, "packs/aa/first")}
    assert len(list(index.scan())) == 1


def test_remove_forgets_only_those_hashes(index: ChunkIndex) -> None:
    index.add([loc(i) for i in range(5)])
    index.remove([h(1), h(3), h(1), h(42)])

    assert set(index.find([h(i) for i in range(5)])) == {h(0), h(2), h(4)}
    assert index.contains([h(1), h(3)]) == set()
    index.add([loc(1, "packs/cc/again")])
    assert index.find([h(1)]) == {h(1): loc(1, "packs/cc/again")}


def test_relocate_moves_known_hashes_and_adds_none(index: ChunkIndex) -> None:
    index.add([loc(1), loc(2)])
    moved = ChunkLocation(h(1), "packs/dd/new", 8, loc(1).length, loc(1).size)
    index.relocate([moved, loc(7, "packs/dd/new")])

    assert index.find([h(1), h(2), h(7)]) == {h(1): moved, h(2): loc(2)}
    assert sorted(r.hash for r in index.scan()) == sorted([h(1), h(2)])


def test_scan_yields_every_row_once(index: ChunkIndex) -> None:
    rows = [loc(i, f"packs/{i % 7:02x}/p{i % 7}") for i in range(2500)]
    index.add(rows)

    stream = index.scan()
    first = next(iter(stream))
    rest = list(stream)
    assert sorted([first, *rest], key=lambda r: r.hash) == sorted(rows, key=lambda r: r.hash)


def test_more_hashes_than_one_sql_batch(index: ChunkIndex) -> None:
    rows = [loc(i) for i in range(4500)]
    index.add(rows)
    absent = [h(-i) for i in range(1, 2200)]

    found = index.find([r.hash for r in rows] + absent)
    assert found == {r.hash: r for r in rows}
    assert index.contains([r.hash for r in rows[:2100]] + absent) == {r.hash for r in rows[:2100]}

    moved = [
        ChunkLocation(r.hash, "packs/ee/moved", r.offset, r.length, r.size) for r in rows[:2300]
    ]
    index.relocate(moved)
    index.remove([r.hash for r in rows[2300:4400]])

    left = index.find([r.hash for r in rows])
    assert left == {m.hash: m for m in moved} | {r.hash: r for r in rows[4400:]}
    assert len(list(index.scan())) == 2400


def test_find_with_duplicates_answers_once_per_hash(index: ChunkIndex) -> None:
    index.add([loc(1), loc(2)])
    query = [h(1), h(1), h(2), h(9), h(2), h(1)]
    assert index.find(query) == {h(1): loc(1), h(2): loc(2)}
    assert index.contains(query) == {h(1), h(2)}
    assert index.find({h(1)}) == {h(1): loc(1)}


def test_two_indexes_on_one_catalog_share_rows(tmp_path: Path) -> None:
    catalog = open_catalog(f"sqlite:///{tmp_path}/shared.db")
    try:
        a, b = CatalogChunkIndex(catalog), CatalogChunkIndex(catalog)
        a.add([loc(1)])
        assert b.find([h(1)]) == {h(1): loc(1)}
    finally:
        catalog.dispose()


def test_random_operations_agree_with_a_dict(index: ChunkIndex) -> None:
    rng = random.Random(5)
    model: dict[str, ChunkLocation] = {}
    universe = list(range(40))
    for step in range(120):
        op = rng.choice(["add", "add", "remove", "relocate"])
        picked = rng.sample(universe, rng.randint(0, 6))
        if op == "add":
            rows = [loc(i, f"packs/{step:02x}/s{step}") for i in picked]
            index.add(rows)
            for r in rows:
                model.setdefault(r.hash, r)
        elif op == "remove":
            index.remove([h(i) for i in picked])
            for i in picked:
                model.pop(h(i), None)
        else:
            rows = [loc(i, f"packs/{step:02x}/r{step}", offset=8) for i in picked]
            index.relocate(rows)
            for r in rows:
                if r.hash in model:
                    model[r.hash] = r
        query = [h(i) for i in rng.sample(universe, 10)]
        assert index.find(query) == {q: model[q] for q in query if q in model}, step
    assert sorted(index.scan(), key=lambda r: r.hash) == sorted(
        model.values(), key=lambda r: r.hash
    )
