"""End-to-end tests of the failures a new user hit (issue 18, section 1): each test is one
finding, run as the user ran it, through the real ``cairn`` command."""

from __future__ import annotations

import pytest

from .conftest import Cairn, single_error


# -- a read command does not create a store ---------------------------------------------
@pytest.mark.embedded_only("a server's store exists already; cairn init needs the store here")
def test_read_without_a_store_fails_naming_where_and_init_creates_one(cairn: Cairn) -> None:
    for command in (("list", "repo"), ("list", "pipeline"), ("logs", "-p", "x")):
        proc = cairn.fails(*command)
        single_error(proc)
        assert str(cairn.home) in proc.stderr
    assert not cairn.home.exists()

    assert str(cairn.home) in cairn("init").stdout
    assert (cairn.home / "catalog.db").exists()
    assert cairn.raw("list", "repo") == []
    cairn("init")  # again: says it exists, changes nothing


@pytest.mark.embedded_only("a server's store exists already")
def test_a_write_command_still_creates_the_store(cairn: Cairn) -> None:
    cairn("create", "repo", "images")
    assert [r["name"] for r in cairn.raw("list", "repo")] == ["images"]


# -- put file -r --delete mirrors a folder ------------------------------------------------
def _paths(cairn: Cairn, ref: str) -> list[str]:
    return sorted(f["path"] for f in cairn.raw("glob", "file", ref) if f["type"] == "file")


def test_put_folder_again_merges_and_delete_mirrors(cairn: Cairn) -> None:
    cairn.write("data/a.txt", "a")
    cairn.write("data/sub/b.txt", "b")
    cairn.write("data/c.txt", "c")
    cairn.write("other.txt", "o")
    cairn("create", "repo", "raw")
    cairn("put", "file", "raw@master:/other.txt", "-f", "other.txt")
    cairn("put", "file", "raw@master:/d", "-r", "-f", "data")
    (cairn.root / "data/c.txt").unlink()
    (cairn.root / "data/sub/b.txt").unlink()
    cairn.write("data/z.txt", "z")

    cairn("put", "file", "raw@master:/d", "-r", "-f", "data")  # merges: nothing leaves
    assert _paths(cairn, "raw@master:/**") == [
        "/d/a.txt",
        "/d/c.txt",
        "/d/sub/b.txt",
        "/d/z.txt",
        "/other.txt",
    ]
    before = len(cairn.raw("list", "commit", "raw@master"))

    cairn("put", "file", "raw@master:/d", "-r", "--delete", "-f", "data")

    assert _paths(cairn, "raw@master:/**") == ["/d/a.txt", "/d/z.txt", "/other.txt"]
    assert len(cairn.raw("list", "commit", "raw@master")) == before + 1  # one commit
    assert cairn.get("raw@master:/d/z.txt") == b"z"


def test_put_delete_needs_folders(cairn: Cairn) -> None:
    cairn.write("one.txt", "1")
    cairn("create", "repo", "raw")
    proc = cairn("put", "file", "raw@master:/d", "--delete", "-f", "one.txt", check=False)
    assert proc.returncode == 2  # a usage error, nothing written
    assert "not a folder: one.txt" in proc.stderr
    assert cairn.raw("list", "commit", "raw") == []
