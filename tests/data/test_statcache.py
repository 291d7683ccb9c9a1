"""The stat cache: an unchanged file hits, any change of size, mtime or inode misses, a
racily-clean file is never recorded, entries outlive the process, preload is per folder."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import blake3
import pytest

from cairn.data import StatCache
from cairn.data.statcache import RACY_SECONDS
from cairn.storage import ChunkRef, Content

OLD = time.time() - 1000


def content_of(data: bytes, pieces: int = 1) -> Content:
    digest = blake3.blake3(data).hexdigest()
    refs = tuple(ChunkRef(blake3.blake3(bytes([i])).hexdigest(), i + 1) for i in range(pieces))
    return Content(digest, len(data), refs)


def old_file(path: Path, data: bytes, mtime: float = OLD) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return path


def reopened(cache: StatCache, folder: Path) -> StatCache:
    cache.close()
    again = StatCache(cache.path)
    again.preload(folder)
    return again


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "statcache.db"


def test_an_unchanged_file_hits(tmp_path: Path, db: Path) -> None:
    f = old_file(tmp_path / "d" / "a.bin", b"hello")
    content = content_of(b"hello", pieces=3)
    cache = StatCache(db)
    cache.record(str(f), os.stat(f), content)

    cache = reopened(cache, tmp_path / "d")
    assert cache.lookup(str(f), os.stat(f)) == content
    cache.close()


def test_nothing_recorded_misses(tmp_path: Path, db: Path) -> None:
    f = old_file(tmp_path / "a", b"x")
    cache = StatCache(db)
    cache.preload(tmp_path)
    assert cache.lookup(str(f), os.stat(f)) is None
    cache.close()


def _recorded(tmp_path: Path, db: Path, data: bytes = b"hello") -> tuple[Path, StatCache]:
    f = old_file(tmp_path / "d" / "a.bin", data)
    cache = StatCache(db)
    cache.record(str(f), os.stat(f), content_of(data))
    return f, reopened(cache, tmp_path / "d")


def test_a_new_size_misses(tmp_path: Path, db: Path) -> None:
    f, cache = _recorded(tmp_path, db)
    old_file(f, b"hello, world")  # same mtime as before
    assert cache.lookup(str(f), os.stat(f)) is None
    cache.close()


def test_a_new_mtime_misses(tmp_path: Path, db: Path) -> None:
    f, cache = _recorded(tmp_path, db)
    os.utime(f, (OLD + 1, OLD + 1))
    assert cache.lookup(str(f), os.stat(f)) is None
    cache.close()


def test_same_bytes_rewritten_in_place_misses(tmp_path: Path, db: Path) -> None:
    f, cache = _recorded(tmp_path, db)
    old_file(f, b"HELLO")  # same size, same mtime: only ctime tells
    assert cache.lookup(str(f), os.stat(f)) is None
    cache.close()


def test_a_replaced_file_misses(tmp_path: Path, db: Path) -> None:
    f, cache = _recorded(tmp_path, db)
    before = os.stat(f)
    replacement = old_file(tmp_path / "d" / "new.tmp", b"HELLO")
    os.replace(replacement, f)
    after = os.stat(f)
    assert after.st_ino != before.st_ino
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert cache.lookup(str(f), after) is None
    cache.close()


@pytest.mark.parametrize(
    "mtime",
    [
        pytest.param(lambda now: now, id="just now"),
        pytest.param(lambda now: int(now) - 1, id="whole-second mtime 1-2 s ago"),
    ],
)
def test_a_file_changed_just_now_is_not_recorded(tmp_path: Path, db: Path, mtime) -> None:
    f = old_file(tmp_path / "d" / "a", b"fresh", mtime=mtime(time.time()))
    cache = StatCache(db)
    cache.record(str(f), os.stat(f), content_of(b"fresh"))
    cache = reopened(cache, tmp_path / "d")
    assert cache.lookup(str(f), os.stat(f)) is None
    cache.close()


def test_a_fine_mtime_half_a_second_old_is_recorded(tmp_path: Path, db: Path) -> None:
    """Sub-second mtimes (ext4, XFS, APFS) need a window of 0.1 s, not 2 s, so a put
    again right after a copy still finds the files."""
    f = old_file(tmp_path / "d" / "a", b"x", mtime=time.time() - 0.5)
    if os.stat(f).st_mtime_ns % 1_000_000_000 == 0:
        pytest.skip("this file system keeps whole-second mtimes")
    cache = StatCache(db)
    cache.record(str(f), os.stat(f), content_of(b"x"))
    cache = reopened(cache, tmp_path / "d")
    assert cache.lookup(str(f), os.stat(f)) == content_of(b"x")
    cache.close()


def test_a_file_older_than_the_racy_window_is_recorded(tmp_path: Path, db: Path) -> None:
    f = old_file(tmp_path / "d" / "a", b"x", mtime=time.time() - RACY_SECONDS - 2)
    cache = StatCache(db)
    cache.record(str(f), os.stat(f), content_of(b"x"))
    cache = reopened(cache, tmp_path / "d")
    assert cache.lookup(str(f), os.stat(f)) == content_of(b"x")
    cache.close()


def test_entries_survive_close_and_reopen_many_times(tmp_path: Path, db: Path) -> None:
    folder = tmp_path / "d"
    made = {
        old_file(folder / f"f{i}", bytes([i]) * i): content_of(bytes([i]) * i, i % 4)
        for i in range(50)
    }
    cache = StatCache(db)
    for f, content in made.items():
        cache.record(str(f), os.stat(f), content)
    for _ in range(3):
        cache = reopened(cache, folder)
        assert {f: cache.lookup(str(f), os.stat(f)) for f in made} == made
    cache.close()


def test_a_later_record_replaces_the_entry(tmp_path: Path, db: Path) -> None:
    f, cache = _recorded(tmp_path, db, b"one")
    old_file(f, b"two", mtime=OLD + 5)
    cache.record(str(f), os.stat(f), content_of(b"two"))
    cache = reopened(cache, tmp_path / "d")
    assert cache.lookup(str(f), os.stat(f)) == content_of(b"two")
    cache.close()


def test_forget_drops_the_entry_for_good(tmp_path: Path, db: Path) -> None:
    f, cache = _recorded(tmp_path, db)
    cache.forget(str(f))
    assert cache.lookup(str(f), os.stat(f)) is None
    cache = reopened(cache, tmp_path / "d")
    assert cache.lookup(str(f), os.stat(f)) is None
    cache.close()


def test_preload_sees_its_folder_and_below_only(tmp_path: Path, db: Path) -> None:
    inside = [tmp_path / "a" / "x", tmp_path / "a" / "sub" / "y", tmp_path / "a" / "é" / "z"]
    outside = [
        tmp_path / "a2" / "x",
        tmp_path / "a-b" / "x",
        tmp_path / "a.b" / "x",
        tmp_path / "ab" / "x",
        tmp_path / "x",
        tmp_path / "a0",
    ]
    cache = StatCache(db)
    for f in inside + outside:
        old_file(f, f.name.encode())
        cache.record(str(f), os.stat(f), content_of(f.name.encode()))

    cache = reopened(cache, tmp_path / "a")
    assert all(cache.lookup(str(f), os.stat(f)) is not None for f in inside)
    assert [f for f in outside if cache.lookup(str(f), os.stat(f)) is not None] == []
    cache.close()


def test_records_from_many_threads_are_all_saved(tmp_path: Path, db: Path) -> None:
    folder = tmp_path / "d"
    files = [old_file(folder / f"f{i}", str(i).encode()) for i in range(200)]
    cache = StatCache(db)

    def work(part: list[Path]) -> None:
        for f in part:
            cache.record(str(f), os.stat(f), content_of(f.read_bytes()))

    threads = [threading.Thread(target=work, args=(files[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cache = reopened(cache, folder)
    assert all(cache.lookup(str(f), os.stat(f)) == content_of(f.read_bytes()) for f in files)
    cache.close()
