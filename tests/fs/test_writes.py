"""Writes through ``cairn://``: a closed file is a commit on its branch, a transaction is
one commit per branch (or none when it fails), ``rm`` is a commit, and commits and
ancestors are refused as read-only."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn import NotFound
from cairn.api.protocol import ClientProtocol
from cairn.fs import CairnFileSystem, ReadOnlyRef


def history(client: ClientProtocol, ref: str = "training@master") -> list[str]:
    try:
        return [c.id for c in client.commits.list(ref)]
    except NotFound:  # no branch before its first commit
        return []


def test_a_closed_file_is_one_commit_on_its_branch(
    fs: CairnFileSystem, client: ClientProtocol
) -> None:
    with fs.open("cairn://training@master/a/b.txt", "wb") as f:
        f.write(b"one ")
        f.write(b"two")
        assert history(client) == []  # nothing until close
    assert len(history(client)) == 1
    assert client.files.read("training@master:/a/b.txt") == b"one two"
    with fs.open("training@master/a/b.txt", "ab") as f:
        f.write(b" three")
    assert fs.cat("training@master/a/b.txt") == b"one two three"
    assert len(history(client)) == 2
    fs.pipe("training@dev/c.txt", b"c")  # a new branch is made by its first write
    assert client.files.read("training@dev:/c.txt") == b"c"


def test_a_large_write_spills_to_disk_and_reads_back(fs: CairnFileSystem) -> None:
    body = bytes(range(256)) * (40 << 10)  # 10 MiB: over the in-memory spool and a block
    with fs.open("training@master/big.bin", "wb", block_size=1 << 20) as f:
        for i in range(0, len(body), 3 << 20):
            f.write(body[i : i + (3 << 20)])
    assert fs.size("training@master/big.bin") == len(body)
    assert fs.cat_file("training@master/big.bin", 5 << 20, (5 << 20) + 7) == body[5 << 20 :][:7]


def test_a_transaction_is_one_commit_per_branch(
    fs: CairnFileSystem, client: ClientProtocol
) -> None:
    fs.pipe({"training@master/old.txt": b"old", "training@master/keep/x": b"x"})
    before = history(client)
    with fs.transaction:
        for i in range(5):
            with fs.open(f"training@master/new/{i}.txt", "wb") as f:
                f.write(str(i).encode())
        fs.rm("training@master/old.txt")
        fs.copy("training@master/keep/x", "training@master/keep/y")
        fs.pipe("training@other/z", b"z")
        assert history(client) == before  # nothing is written before the block ends
    after = history(client)
    assert len(after) == len(before) + 1 and after[1:] == before
    assert len(history(client, "training@other")) == 1
    assert sorted(fs.find("training@master")) == [
        "training@master/keep/x",
        "training@master/keep/y",
        *[f"training@master/new/{i}.txt" for i in range(5)],
    ]


def test_bulk_put_copy_and_mv_are_one_commit_each(
    fs: CairnFileSystem, client: ClientProtocol, tmp_path: Path
) -> None:
    local = tmp_path / "local"
    (local / "deep").mkdir(parents=True)
    for i in range(20):
        (local / ("deep" if i % 2 else "") / f"{i}.txt").write_text(str(i))
    fs.put(str(local), "training@master/up", recursive=True)
    assert len(history(client)) == 1
    assert len(fs.find("training@master/up")) == 20
    assert fs.cat("training@master/up/deep/3.txt") == b"3"
    fs.copy("training@master/up", "training@master/copy", recursive=True)
    assert len(history(client)) == 2
    fs.mv("training@master/copy", "training@master/moved", recursive=True)
    assert len(history(client)) == 3
    assert len(fs.find("training@master/moved")) == 20
    assert not fs.exists("training@master/copy")


def test_a_failed_transaction_writes_nothing(fs: CairnFileSystem, client: ClientProtocol) -> None:
    fs.pipe("training@master/a", b"a")
    before = history(client)
    with pytest.raises(RuntimeError), fs.transaction:
        fs.pipe("training@master/b", b"b")
        fs.rm("training@master/a")
        raise RuntimeError("the caller's own error")
    assert history(client) == before
    assert fs.cat("training@master/a") == b"a" and not fs.exists("training@master/b")
    fs.pipe("training@master/c", b"c")  # the filesystem writes again after it
    assert len(history(client)) == len(before) + 1


def test_a_write_then_delete_and_a_delete_then_write_in_one_transaction(
    fs: CairnFileSystem,
) -> None:
    fs.pipe({"training@master/d/1": b"1", "training@master/d/2": b"2"})
    with fs.transaction:
        fs.pipe("training@master/d/1", b"new")  # then deleted with its folder
        fs.rm("training@master/d", recursive=True)
        fs.pipe("training@master/d/3", b"3")
    assert fs.find("training@master") == ["training@master/d/3"]


def test_rm_deletes_in_one_commit(fs: CairnFileSystem, client: ClientProtocol) -> None:
    fs.pipe({f"training@master/d/{i}": b"." for i in range(3)} | {"training@master/e": b"e"})
    n = len(history(client))
    with pytest.raises(IsADirectoryError):
        fs.rm("training@master/d")
    fs.rm(["training@master/d/0", "training@master/e"])
    assert len(history(client)) == n + 1
    fs.rm("training@master/d", recursive=True)
    assert len(history(client)) == n + 2
    assert fs.find("training@master") == []
    with pytest.raises(FileNotFoundError):
        fs.rm("training@master/gone")


def test_writes_to_a_commit_or_an_ancestor_are_refused(
    fs: CairnFileSystem, client: ClientProtocol
) -> None:
    fs.pipe("training@master/a", b"a")
    fs.pipe("training@master/a", b"b")
    commit = client.commits.get("training@master").id
    before = history(client)
    for target in (f"training@{commit}/a", f"training@{commit[:8]}/a", "training@master^/a"):
        with pytest.raises(ReadOnlyRef):
            fs.pipe(target, b"x")
        with pytest.raises(PermissionError):  # what fsspec callers catch
            fs.open(target, "wb")
        with pytest.raises(PermissionError):
            fs.rm(target)
    with pytest.raises(PermissionError):
        fs.copy("training@master/a", f"training@{commit}/c")
    assert history(client) == before
    assert fs.cat(f"training@{commit}/a") == b"b"  # reading a commit is fine


def test_missing_things_are_file_not_found(fs: CairnFileSystem) -> None:
    fs.pipe("training@master/a", b"a")
    for path in ("nope@master/a", "training@nobranch/a", "training@master/b"):
        with pytest.raises(FileNotFoundError):
            fs.cat(path)
        assert not fs.exists(path)
    with pytest.raises(FileNotFoundError):
        fs.ls("training@master/b")
    with pytest.raises(IsADirectoryError):
        fs.cat_file("training@master")
    with pytest.raises(FileExistsError):
        fs.open("training@master/a", "xb")
