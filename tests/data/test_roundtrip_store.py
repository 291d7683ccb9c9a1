"""Round trips through a DataStore with small chunks: what is put is what is read back.

Hypothesis draws the bytes; a 256-byte average chunk size puts many content-defined
chunk boundaries in even small files, so every read crosses them.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import blake3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cairn.catalog import open_catalog
from cairn.data import DataStore, parse_ref
from cairn.storage import ChunkStore, MemoryObjectStore

from .helpers import read

MAX_SIZE = 50_000

# Random bytes cut where FastCDC's gear hash says; repeated blocks make chunks that
# deduplicate, and long runs of one byte hit the maximum chunk size.
repeated = st.tuples(st.binary(min_size=1, max_size=300), st.integers(1, 150)).map(
    lambda t: (t[0] * t[1])[:MAX_SIZE]
)
runs = st.tuples(st.integers(0, 255), st.integers(0, MAX_SIZE)).map(lambda t: bytes([t[0]]) * t[1])
contents = st.one_of(st.binary(max_size=MAX_SIZE), repeated, runs)
EXAMPLES = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DataStore]:
    """One store for every example of a test (each example uses a repo of its own)."""
    catalog = open_catalog(f"sqlite:///{tmp_path}/catalog.db")
    yield DataStore(catalog, ChunkStore(MemoryObjectStore(), avg_size=256))
    catalog.dispose()


@pytest.fixture
def new_repo(store: DataStore) -> Callable[[], str]:
    """A factory of fresh repos: hypothesis runs every example against one store."""
    counter = itertools.count()

    def make() -> str:
        name = f"repo-{next(counter)}"
        store.create_repo(name)
        return name

    return make


@EXAMPLES
@given(data=contents)
def test_put_then_read_returns_the_same_bytes(
    store: DataStore, new_repo: Callable[[], str], data: bytes
) -> None:
    repo = new_repo()

    store.put_files(repo, None, [("/dir/file.bin", io.BytesIO(data))])

    assert read(store, f"{repo}@master:/dir/file.bin") == data
    info = store.inspect_file(parse_ref(f"{repo}@master:/dir/file.bin"))
    assert (info.size, info.hash) == (len(data), blake3.blake3(data).hexdigest())


@EXAMPLES
@given(first=contents, second=contents)
def test_append_twice_is_the_concatenation(
    store: DataStore, new_repo: Callable[[], str], first: bytes, second: bytes
) -> None:
    repo = new_repo()

    store.put_files(repo, None, [("log", io.BytesIO(first))], append=True)
    store.put_files(repo, None, [("log", io.BytesIO(second))], append=True)

    both = first + second
    assert read(store, f"{repo}@master:/log") == both
    assert read(store, f"{repo}@master^:/log") == first
    info = store.inspect_file(parse_ref(f"{repo}@master:/log"))
    assert (info.size, info.hash) == (len(both), blake3.blake3(both).hexdigest())


def test_small_chunks_cut_a_50kb_file_into_many(
    store: DataStore, new_repo: Callable[[], str]
) -> None:
    # The premise of the round trips above: reads cross many chunk boundaries.
    repo = new_repo()
    data = bytes(range(256)) * 40 + blake3.blake3(b"seed").digest(length=MAX_SIZE - 10_240)

    store.put_files(repo, None, [("big", io.BytesIO(data))])

    assert store.inspect_file(parse_ref(f"{repo}@master:/big")).chunks > 20
    assert read(store, f"{repo}@master:/big") == data
