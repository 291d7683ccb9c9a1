"""Pins, leases and epochs in the catalog (cairn.catalog.pins), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from cairn.catalog import Catalog, CatalogPins, open_catalog
from cairn.catalog.schema import gc_state, leases, metadata, pins

NEW_TABLES = {"pins", "leases", "gc_state"}


@pytest.fixture(params=["sqlite", "postgresql"])
def make_catalog(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[[], Catalog]]:
    catalogs: list[Catalog] = []
    make_url = (
        request.getfixturevalue("make_postgres_url") if request.param == "postgresql" else None
    )

    def make() -> Catalog:
        url = make_url() if make_url else f"sqlite:///{tmp_path}/catalog-{len(catalogs)}.db"
        catalogs.append(open_catalog(url))
        return catalogs[-1]

    yield make
    for catalog in catalogs:
        catalog.dispose()


def counts(catalog: Catalog) -> tuple[int, int]:
    with catalog.read() as conn:
        return (
            conn.execute(select(func.count()).select_from(leases)).scalar_one(),
            conn.execute(select(func.count()).select_from(pins)).scalar_one(),
        )


def test_closing_the_last_lease_drops_every_pin(make_catalog):
    store = CatalogPins(make_catalog())
    with store.lease():
        store.pin(["chunks/aa/aa", "trees/bb/bb"])
        store.pin(["chunks/aa/aa"])  # pinned twice: one row
        assert counts(store.catalog) == (1, 2)
    assert counts(store.catalog) == (0, 0)


def test_pins_stay_while_an_older_lease_is_open(make_catalog):
    store = CatalogPins(make_catalog())
    with store.lease():
        store.pin(["chunks/aa/aa"])
        with store.lease():
            store.pin(["chunks/bb/bb"])
        with store.lease():
            pass
        assert counts(store.catalog) == (1, 2)


def test_a_sweep_honours_pins_of_leases_open_when_it_began_and_later(make_catalog):
    catalog = make_catalog()
    writer, collector = CatalogPins(catalog), CatalogPins(catalog)
    with writer.lease():
        writer.pin(["chunks/before/x"])
        sweep = collector.begin_sweep()
        writer.pin(["chunks/during/x"])
        with writer.lease():
            writer.pin(["chunks/later/x"])
        keys = ["chunks/before/x", "chunks/during/x", "chunks/later/x", "chunks/never/x"]
        with collector.guard(sweep) as guard:
            assert guard.pinned(keys) == set(keys[:3])
        assert collector.pinned(keys, sweep) == set(keys[:3])
        collector.end_sweep(sweep)
    assert counts(catalog) == (0, 0)


def test_a_sweep_ignores_pins_of_writers_done_before_it_began(make_catalog):
    catalog = make_catalog()
    writer, collector = CatalogPins(catalog), CatalogPins(catalog)
    with writer.lease():
        writer.pin(["chunks/done/x"])
        with writer.lease():  # another writer, still at work: keeps the pin in the table
            pass
    sweep = collector.begin_sweep()
    with collector.guard(sweep) as guard:
        assert guard.pinned(["chunks/done/x"]) == set()
    collector.end_sweep(sweep)


def test_a_sweep_drops_the_leases_of_dead_writers(make_catalog):
    catalog = make_catalog()
    writer = CatalogPins(catalog)
    dead = writer.lease()
    dead.__enter__()  # a writer that died without leaving the block
    writer.pin(["chunks/aa/aa"])
    sweep = CatalogPins(catalog, lease_timeout=-1).begin_sweep()
    assert sweep.expired == 1
    CatalogPins(catalog).end_sweep(sweep)
    assert counts(catalog) == (0, 0)


def test_a_dry_run_sweep_writes_nothing(make_catalog):
    catalog = make_catalog()
    store = CatalogPins(catalog)
    with store.lease():
        store.pin(["chunks/aa/aa"])
        with catalog.read() as conn:
            epoch = conn.execute(select(gc_state.c.epoch)).scalar()
        sweep = store.begin_sweep(dry_run=True)
        assert sweep.lease is None
        assert store.pinned(["chunks/aa/aa"], sweep) == {"chunks/aa/aa"}
        store.end_sweep(sweep)
        with catalog.read() as conn:
            assert conn.execute(select(gc_state.c.epoch)).scalar() == epoch
        assert counts(catalog) == (1, 1)


def test_a_catalog_made_before_pins_opens_and_pins(tmp_path: Path):
    """Stores made before pins existed lack three tables; opening one adds them."""
    url = f"sqlite:///{tmp_path}/old.db"
    engine = create_engine(url)
    old = [t for t in metadata.sorted_tables if t.name not in NEW_TABLES]
    metadata.create_all(engine, tables=old)
    engine.dispose()
    catalog = open_catalog(url)
    try:
        store = CatalogPins(catalog)
        with store.lease():
            store.pin(["chunks/aa/aa"])
            sweep = store.begin_sweep()
            with store.guard(sweep) as guard:
                assert guard.pinned(["chunks/aa/aa"]) == {"chunks/aa/aa"}
            store.end_sweep(sweep)
        assert counts(catalog) == (0, 0)
    finally:
        catalog.dispose()
