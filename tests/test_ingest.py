"""Puts of many local files through worker processes (cairn.data.ingest)."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

import cairn.api.embedded.local as local_module
import cairn.data.files as files
import cairn.data.ingest as ingest
from cairn.client import Client
from cairn.storage import NotRegularFile, StorageError


@pytest.fixture
def few(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let a put of 60 files count as 'many', so the tests stay small."""
    monkeypatch.setattr(files, "BULK_MIN", 50)
    monkeypatch.setattr(ingest, "MIN_FILES", 50)


def make_folder(root: Path, count: int, seed: int = 0) -> dict[str, bytes]:
    rng = random.Random(seed)
    made = {}
    for i in range(count):
        data = rng.randbytes(rng.randint(0, 3000)) if i % 3 else b"row,%d\n" % i * 200
        path = root / f"d{i % 4}" / f"f{i:03}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        made[f"d{i % 4}/f{i:03}.bin"] = data
    return made


def read_back(client: Client, out: Path) -> dict[str, bytes]:
    client.get_local("data@master:/", out)
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def test_many_files_go_through_worker_processes_and_read_back(
    tmp_path: Path, few: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = make_folder(tmp_path / "src", 60)
    client = Client.open(tmp_path / "home", auto_run=False)
    client.data.create_repo("data")
    calls = []
    real = ingest.ProcessIngest.store

    def spy(self: ingest.ProcessIngest, names: list[str]):  # type: ignore[no-untyped-def]
        calls.append(len(names))
        return real(self, names)

    monkeypatch.setattr(ingest.ProcessIngest, "store", spy)

    client.put_local("data@master:/", [str(tmp_path / "src")], recursive=True)

    assert calls == [60]
    assert read_back(client, tmp_path / "out") == made
    assert client.fsck().problems == []


def test_a_put_again_reads_only_what_changed(tmp_path: Path, few: None) -> None:
    src = tmp_path / "src"
    made = make_folder(src, 60)
    client = Client.open(tmp_path / "home", auto_run=False)
    client.data.create_repo("data")
    old = os.path.getmtime(src / "d0" / "f000.bin") - 10
    for p in src.rglob("*.bin"):
        os.utime(p, (old, old))  # older than the racy window, so the stat cache records them
    client.put_local("data@master:/", [str(src)], recursive=True)

    (src / "d1" / "f001.bin").write_bytes(b"changed")
    made["d1/f001.bin"] = b"changed"
    commit = client.put_local("data@master:/", [str(src)], recursive=True)

    changes = client.diff_file(f"data@{commit.id}")
    assert [(c.path, c.status) for c in changes] == [("/d1/f001.bin", "modified")]
    assert read_back(client, tmp_path / "out") == made


def test_a_file_a_worker_cannot_read_is_its_os_error(tmp_path: Path, few: None) -> None:
    made = make_folder(tmp_path / "src", 10)
    client = Client.open(tmp_path / "home", auto_run=False)
    names = [(str(tmp_path / "src" / p), None) for p in made] + [(str(tmp_path / "gone.bin"), None)]
    pool = ingest.ProcessIngest(client.data.chunks, f"sqlite:///{tmp_path}/home/catalog.db")

    with pool, pytest.raises(FileNotFoundError):
        list(pool.store(names))


def test_a_worker_that_dies_is_a_storage_error(tmp_path: Path, few: None) -> None:
    client = Client.open(tmp_path / "home", auto_run=False)
    pool = ingest.ProcessIngest(client.data.chunks, f"sqlite:///{tmp_path}/home/catalog.db")
    with pool:
        for worker in pool._pool:
            worker.proc.kill()
            worker.proc.wait()
        with pytest.raises(StorageError):
            list(pool.store([(str(tmp_path), None)]))


def test_a_link_and_its_target_are_both_put_by_the_workers(tmp_path: Path, few: None) -> None:
    made = make_folder(tmp_path / "src", 60)
    (tmp_path / "src" / "latest").symlink_to("d0/f000.bin")
    (tmp_path / "src" / "leak").symlink_to(tmp_path / "outside")
    (tmp_path / "outside").write_bytes(b"secret")
    client = Client.open(tmp_path / "home", auto_run=False)
    client.data.create_repo("data")

    client.put_local("data@master:/", [str(tmp_path / "src")], recursive=True)

    assert read_back(client, tmp_path / "out") == {**made, "latest": made["d0/f000.bin"]}


def test_a_folder_swapped_for_a_link_is_refused_by_the_workers(
    tmp_path: Path, few: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    make_folder(src, 60)
    outside = tmp_path / "outside"
    make_folder(outside, 60, seed=1)  # the same names, other bytes
    client = Client.open(tmp_path / "home", auto_run=False)
    client.data.create_repo("data")
    real = local_module.walk_folder

    def walk_then_swap(root):  # type: ignore[no-untyped-def]
        found = real(root)
        (src / "d1").rename(tmp_path / "moved")
        (src / "d1").symlink_to(outside / "d1")
        return found

    monkeypatch.setattr(local_module, "walk_folder", walk_then_swap)

    with pytest.raises(NotRegularFile):
        client.put_local("data@master:/", [str(src)], recursive=True)

    assert client.data.list_commits("data") == []
