"""Named catalog locks (cairn.catalog.locks): exclusive across connections and processes,
released at the end of the block, on an error, and when the holding process is killed."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cairn.catalog import Catalog, open_catalog
from cairn.catalog.locks import lock_key

BACKENDS = ["sqlite", "postgresql", "memory"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def catalog_url(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> str:
    if backend == "postgresql":
        return request.getfixturevalue("make_postgres_url")()
    return f"sqlite:///{tmp_path / 'catalog.db'}" if backend == "sqlite" else "sqlite://"


@pytest.fixture
def open_url(catalog_url: str) -> Iterator[Callable[[], Catalog]]:
    """Opens the test's catalog again and again (separate engines and connections), as
    separate processes would; an in-memory catalog can only be shared, so it is returned
    each time."""
    opened: list[Catalog] = []

    def make() -> Catalog:
        if catalog_url == "sqlite://" and opened:
            return opened[0]
        catalog = open_catalog(catalog_url)
        opened.append(catalog)
        return catalog

    yield make
    for catalog in opened:
        catalog.dispose()


class Waiter:
    """A thread that takes ``catalog.lock(name)``, says when it holds it, and releases it
    when told."""

    def __init__(self, catalog: Catalog, name: str) -> None:
        self.holding = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(catalog, name), daemon=True)
        self.thread.start()

    def _run(self, catalog: Catalog, name: str) -> None:
        with catalog.lock(name):
            self.holding.set()
            self.release.wait(30)

    def finish(self) -> None:
        self.release.set()
        self.thread.join(10)


def test_a_held_lock_blocks_another_connection_until_released(open_url) -> None:
    first, second = open_url(), open_url()

    with first.lock("pipelines"):
        waiter = Waiter(second, "pipelines")
        assert not waiter.holding.wait(0.5)
    assert waiter.holding.wait(10)
    waiter.finish()


def test_without_waiting_a_held_lock_is_reported_not_waited_for(open_url) -> None:
    first, second = open_url(), open_url()

    with first.lock("daemon.s") as held, second.lock("daemon.s", wait=False) as also:
        assert (held, also) == (True, False)
    with second.lock("daemon.s", wait=False) as held:
        assert held
        waiter = Waiter(first, "daemon.s")  # held without waiting is held all the same
        assert not waiter.holding.wait(0.5)
    assert waiter.holding.wait(10)
    waiter.finish()


def test_locks_of_different_names_are_independent(open_url) -> None:
    first, second = open_url(), open_url()

    with first.lock("pipelines"):
        waiter = Waiter(second, "monitors")
        assert waiter.holding.wait(10)
        waiter.finish()


def test_an_error_in_the_block_releases_the_lock(open_url) -> None:
    catalog = open_url()

    with pytest.raises(KeyError), catalog.lock("pipelines"):
        raise KeyError("boom")

    waiter = Waiter(open_url(), "pipelines")
    assert waiter.holding.wait(10)
    waiter.finish()
    with catalog.lock("pipelines"):  # the same catalog takes it again too
        pass


_HOLDER = """
import sys, time
from cairn.catalog import open_catalog
with open_catalog(sys.argv[1]).lock("pipelines"):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_killed_holder_in_another_process_releases_the_lock(open_url, catalog_url) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, catalog_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        waiter = Waiter(open_url(), "pipelines")
        assert not waiter.holding.wait(0.5)

        holder.kill()  # SIGKILL: no exit handler runs
        holder.wait(10)
        started = time.monotonic()

        assert waiter.holding.wait(10)
        assert time.monotonic() - started < 5
        waiter.finish()
    finally:
        holder.kill()
        holder.wait(10)


def test_the_key_is_a_stable_hash_of_the_name_alone() -> None:
    # Every machine and every cairn version must compute the same key for a name.
    assert lock_key("pipelines") == lock_key("pipelines") == -5585824234854016637
    assert lock_key("pipelines") != lock_key("monitors")
    assert lock_key("pipelines") != int.from_bytes(b"cairnwri", "big", signed=True)


@pytest.mark.parametrize("backend", ["memory"])
@pytest.mark.parametrize("name", ["", ".hidden", "../up", "a/b", "x" * 101, "sp ace"])
def test_a_name_that_cannot_name_a_file_is_refused(open_url, name: str) -> None:
    with pytest.raises(ValueError):
        open_url().lock(name)
