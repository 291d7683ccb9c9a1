"""Opening the catalog by URL, its tables, and its transactions."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert, inspect, select, text, update
from sqlalchemy.exc import IntegrityError

from cairn.catalog import Catalog, CatalogError, open_catalog, schema
from cairn.storage import CairnError

CATALOG_BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=CATALOG_BACKENDS)
def catalog_backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_catalog(
    tmp_path: Path, catalog_backend: str, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Catalog]]:
    """A factory of catalogs of the parametrized backend, disposed at the end: SQLite
    files under tmp_path, or databases on the session's PostgreSQL server (one per
    name, so opening a name twice reopens one database)."""
    opened: list[Catalog] = []
    databases: dict[str, str] = {}
    make_url = (
        request.getfixturevalue("make_postgres_url") if catalog_backend == "postgresql" else None
    )

    def make(name: str = "catalog.db") -> Catalog:
        if make_url is None:
            url = f"sqlite:///{tmp_path / name}"
        else:
            url = databases.setdefault(name, make_url())
        catalog = open_catalog(url)
        opened.append(catalog)
        return catalog

    yield make
    for catalog in opened:
        catalog.dispose()


def _add_repo(conn, name: str) -> None:
    conn.execute(insert(schema.repos).values(name=name, type="user", description="", created=0.0))


def _repo_names(catalog: Catalog) -> list[str]:
    with catalog.read() as conn:
        return list(conn.execute(select(schema.repos.c.name).order_by("name")).scalars())


def test_open_creates_every_table(make_catalog) -> None:
    catalog = make_catalog()

    assert set(inspect(catalog.engine).get_table_names()) == set(schema.metadata.tables)


def test_reopening_keeps_the_rows(make_catalog) -> None:
    with make_catalog().write() as conn:
        _add_repo(conn, "kept")

    assert _repo_names(make_catalog()) == ["kept"]


@pytest.mark.parametrize("catalog_backend", ["sqlite"])
def test_sqlite_runs_in_wal_mode_with_foreign_keys(make_catalog) -> None:
    catalog = make_catalog()

    with catalog.read() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_write_commits_when_the_block_ends(make_catalog) -> None:
    catalog = make_catalog()

    with catalog.write() as conn:
        _add_repo(conn, "a")

    assert _repo_names(catalog) == ["a"]


def test_write_rolls_back_when_the_block_raises(make_catalog) -> None:
    catalog = make_catalog()

    with pytest.raises(RuntimeError), catalog.write() as conn:
        _add_repo(conn, "lost")
        raise RuntimeError("abort")

    assert _repo_names(catalog) == []


def test_a_branch_of_a_missing_repo_is_refused(make_catalog) -> None:
    catalog = make_catalog()

    with pytest.raises(IntegrityError), catalog.write() as conn:
        conn.execute(insert(schema.branches).values(repo="nope", name="m", created=0.0))


def test_writers_on_two_connections_do_not_lose_updates(make_catalog) -> None:
    catalog = make_catalog()
    barrier = threading.Barrier(4)

    def work(w: int) -> None:
        barrier.wait()
        for i in range(10):
            with catalog.write() as conn:
                _add_repo(conn, f"r{w}-{i}")

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(_repo_names(catalog)) == 40


def test_writers_never_both_read_a_branch_head_and_both_move_it(make_catalog) -> None:
    # Read-then-write, as moving a branch head is: without the write lock taken when the
    # transaction starts, two writers read one head and one increment is lost.
    catalog = make_catalog()
    with catalog.write() as conn:
        _add_repo(conn, "r")
        conn.execute(insert(schema.branches).values(repo="r", name="m", head="0", created=0.0))
    branch = (schema.branches.c.repo == "r") & (schema.branches.c.name == "m")
    barrier = threading.Barrier(4)

    def work() -> None:
        barrier.wait()
        for _ in range(10):
            with catalog.write() as conn:
                head = conn.execute(select(schema.branches.c.head).where(branch)).scalar_one()
                conn.execute(update(schema.branches).where(branch).values(head=str(int(head) + 1)))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    with catalog.read() as conn:
        assert conn.execute(select(schema.branches.c.head).where(branch)).scalar_one() == "40"


@pytest.mark.parametrize(
    "url",
    ["nosuchdialect://host/db", "sqlite:////nonexistent-folder/for/sure/catalog.db"],
)
def test_an_unopenable_catalog_raises_catalog_error(url: str) -> None:
    with pytest.raises(CatalogError) as info:
        open_catalog(url)

    assert isinstance(info.value, CairnError)


def test_an_unopenable_catalog_does_not_leak_its_password() -> None:
    # Checks that a secret is absent from the message, not how the message is worded.
    with pytest.raises(CatalogError) as info:
        open_catalog("nosuchdialect://user:s3cret-pw@host/db")

    assert "s3cret-pw" not in str(info.value)


def test_an_in_memory_catalog_works_on_one_thread() -> None:
    catalog = open_catalog("sqlite://")
    with catalog.write() as conn:
        _add_repo(conn, "a")

    assert _repo_names(catalog) == ["a"]
    catalog.dispose()


def test_an_in_memory_catalog_is_one_database_for_every_thread() -> None:
    catalog = open_catalog("sqlite://")
    with catalog.write() as conn:
        _add_repo(conn, "a")
    seen: list[object] = []

    def other() -> None:
        try:
            seen.append(_repo_names(catalog))
        except Exception as exc:  # reported by the main thread
            seen.append(exc)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    catalog.dispose()

    assert seen == [["a"]]


# -- PostgreSQL -------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_postgresql_urls_open_through_psycopg(make_postgres_url, scheme: str) -> None:
    url = make_postgres_url().replace("postgresql://", f"{scheme}://", 1)

    catalog = open_catalog(url)

    assert catalog.engine.dialect.name == "postgresql"
    assert catalog.engine.dialect.driver == "psycopg"
    assert set(inspect(catalog.engine).get_table_names()) == set(schema.metadata.tables)
    catalog.dispose()


def test_an_unreachable_database_raises_one_line_without_the_password() -> None:
    with pytest.raises(CatalogError) as info:
        open_catalog("postgresql://cairn:s3cret-pw@127.0.0.1:9/catalog")  # port 9: refused

    message = str(info.value)
    assert "s3cret-pw" not in message
    assert "\n" not in message


def test_a_postgresql_catalog_without_psycopg_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if it were not installed

    with pytest.raises(CatalogError) as info:
        open_catalog("postgresql://cairn@127.0.0.1:9/catalog")

    assert "cairn[postgres]" in str(info.value)


def test_a_catalog_from_before_a_column_was_added_gets_it_with_its_default(make_catalog) -> None:
    # An older cairn made model_versions without ``trusted``: ``create_all`` skips tables
    # that exist, so without the migration every read of a version would fail.
    with make_catalog().write() as conn:
        conn.execute(insert(schema.models).values(name="m", created=0.0, updated=0.0))
        conn.execute(
            insert(schema.model_versions).values(
                name="m",
                version=1,
                repo="r",
                commit="c",
                path="/m.pkl",
                flavor="python",
                created=0.0,
            )
        )
        conn.execute(text("ALTER TABLE model_versions DROP COLUMN trusted"))
    catalog = make_catalog()
    columns = [c["name"] for c in inspect(catalog.engine).get_columns("model_versions")]
    assert "trusted" in columns
    versions = schema.model_versions
    with catalog.write() as conn:
        conn.execute(
            insert(versions).values(
                name="m",
                version=2,
                repo="r",
                commit="c",
                path="/m.pkl",
                flavor="python",
                created=0.0,
                trusted=True,
            )
        )
    with catalog.read() as conn:
        rows = conn.execute(select(versions.c.version, versions.c.trusted)).all()
    assert sorted(rows) == [(1, False), (2, True)]
