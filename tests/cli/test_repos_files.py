"""End-to-end tests of repos, branches, commits and files through the ``cairn`` command.

Results are read back with ``--raw`` and ``json.loads`` (``Cairn.raw``), so every test
also checks that the ``--raw`` output of the commands it reads with is JSON.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import blake3
import pytest

from .conftest import Cairn, api, pfs, pipeline, seed, seed_repo, single_error

COPY_SH = 'cp -r "$CAIRN_PFS"/src/. "$CAIRN_PFS/out/"\n'


def tree_of(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` as relative posix path -> bytes."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def commit_ids(cairn: Cairn, ref: str) -> list[str]:
    return [c["id"] for c in cairn.raw("list", "commit", ref)]


def paths(files: list[dict]) -> list[str]:
    return [f["path"] for f in files]


# -- put and get -----------------------------------------------------------------------------
def test_put_get_random_binary_file_is_byte_identical(cairn: Cairn) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    local = cairn.write("blob.bin", data)
    cairn("create", "repo", "raw")

    cairn("put", "file", "raw@master:/deep/blob.bin", "-f", str(local))

    cairn("get", "file", "raw@master:/deep/blob.bin", "-o", "copy.bin")
    assert (cairn.root / "copy.bin").read_bytes() == data
    assert cairn.get("raw@master:/deep/blob.bin") == data
    info = cairn.raw("inspect", "file", "raw@master:/deep/blob.bin")
    assert info["size"] == len(data)
    assert info["hash"] == blake3.blake3(data).hexdigest()


def test_put_folder_recursively_and_get_it_back(cairn: Cairn) -> None:
    src = {
        "top.txt": b"top\n",
        "empty.dat": b"",
        "a/one.bin": os.urandom(5000),
        "a/b/two.txt": b"two\n" * 100,
        "a/b/c/three": b"\x00\x01\x02",
    }
    for rel, content in src.items():
        cairn.write(f"src/{rel}", content)
    cairn("create", "repo", "tree")

    cairn("put", "file", "tree@master:/", "-f", "src", "-r")

    assert sorted(paths(cairn.raw("list", "file", "tree@master:/"))) == [
        "/a",
        "/empty.dat",
        "/top.txt",
    ]
    cairn("get", "file", "tree@master:/", "-r", "-o", "whole")
    assert tree_of(cairn.root / "whole") == src
    cairn("get", "file", "tree@master:/a/b", "-r", "-o", "part")
    assert tree_of(cairn.root / "part") == {
        "two.txt": src["a/b/two.txt"],
        "c/three": src["a/b/c/three"],
    }


def test_put_folder_without_recursive_flag_is_refused(cairn: Cairn) -> None:
    cairn.write("src/x.txt", "x")
    cairn("create", "repo", "tree")

    cairn.fails("put", "file", "tree@master:/", "-f", "src")

    assert cairn.raw("list", "commit", "tree") == []


def test_get_folder_needs_recursive_and_output(cairn: Cairn) -> None:
    seed(cairn, "tree", {"dir/x.txt": "x"})

    cairn.fails("get", "file", "tree@master:/dir")
    cairn.fails("get", "file", "tree@master:/dir", "-r")


def test_put_from_stdin(cairn: Cairn) -> None:
    data = b"line one\n\x00binary\xff\xfe\r\nlast"
    cairn("create", "repo", "s")

    commit = cairn.put("s@master:/in/stdin.bin", data)

    assert cairn.get("s@master:/in/stdin.bin") == data
    assert cairn.get(f"s@{commit}:/in/stdin.bin") == data


def test_put_overwrites_and_append_extends(cairn: Cairn) -> None:
    cairn("create", "repo", "log")
    first = cairn.put("log@master:/log.txt", "one\n")
    cairn.put("log@master:/log.txt", "two\n")
    assert cairn.get("log@master:/log.txt") == b"two\n"

    cairn("put", "file", "log@master:/log.txt", "-f", "-", "-a", input=b"three\n")

    assert cairn.get("log@master:/log.txt") == b"two\nthree\n"
    assert cairn.get(f"log@{first}:/log.txt") == b"one\n"
    assert len(commit_ids(cairn, "log@master")) == 3


def test_append_to_a_missing_file_creates_it(cairn: Cairn) -> None:
    cairn("create", "repo", "log")
    cairn("put", "file", "log@master:/new.txt", "-f", "-", "-a", input=b"fresh")
    assert cairn.get("log@master:/new.txt") == b"fresh"


# -- commits -------------------------------------------------------------------------------
def test_start_put_finish_makes_one_commit(cairn: Cairn) -> None:
    seed(cairn, "batch", {"base.txt": "base"})
    cairn.write("a.txt", "A")
    cairn.write("b.txt", "B")

    opened = cairn("start", "commit", "batch@master").stdout.strip()
    cairn("put", "file", "batch@master:/a.txt", "-f", "a.txt")
    cairn("put", "file", f"batch@{opened}:/b.txt", "-f", "b.txt")

    info = cairn.raw("inspect", "commit", "batch@master")
    assert (info["id"], info["state"]) == (opened, "open")
    # As in Pachyderm, the branch head is the open commit, so readers see its files.
    assert paths(cairn.raw("list", "file", "batch@master:/")) == ["/a.txt", "/b.txt", "/base.txt"]
    cairn.fails("start", "commit", "batch@master")

    cairn("finish", "commit", "batch@master")

    info = cairn.raw("inspect", "commit", "batch@master")
    assert (info["id"], info["state"]) == (opened, "finished")
    assert len(commit_ids(cairn, "batch@master")) == 2
    assert cairn.get("batch@master:/b.txt") == b"B"
    cairn.fails("finish", "commit", f"batch@{opened}")
    cairn.fails("put", "file", f"batch@{opened}:/c.txt", "-f", "a.txt")


def test_ancestry_and_commit_ids(cairn: Cairn) -> None:
    ids = seed(cairn, "hist", *({"v.txt": f"version {n}"} for n in range(3)))

    assert commit_ids(cairn, "hist@master") == ids[::-1]
    assert cairn.get("hist@master:/v.txt") == b"version 2"
    assert cairn.get("hist@master^:/v.txt") == b"version 1"
    assert cairn.get("hist@master^2:/v.txt") == b"version 0"
    assert cairn.get("hist@master^^:/v.txt") == b"version 0"
    assert cairn.get(f"hist@{ids[1]}:/v.txt") == b"version 1"
    assert cairn.get(f"hist@{ids[1][:10]}:/v.txt") == b"version 1"
    commit = cairn.raw("inspect", "commit", "hist@master^")
    assert (commit["id"], commit["parent"]) == (ids[1], ids[0])
    cairn.fails("inspect", "commit", "hist@master^3")
    cairn.fails("put", "file", "hist@master^:/v.txt", "-f", "-", input=b"no")


def test_commit_commands_resolve_ancestry_to_the_parent(cairn: Cairn) -> None:
    oldest, parent, _head = seed(cairn, "r", {"a": "1"}, {"a": "2"}, {"a": "3"})
    [dev_done] = seed(cairn, "r", {"d": "1"}, branch="dev")
    with api(cairn) as client:
        dev_open = client.start_commit("r", "dev").id

    refused = cairn.fails("finish", "commit", "r@dev^")
    waited = cairn("wait", "commit", "r@master^", "--timeout", "5").stdout.strip()
    listed = cairn.raw("list", "commit", "r@master^")

    assert dev_done in refused.stderr
    single_error(refused)
    dev_head = cairn.raw("inspect", "commit", "r@dev")
    assert (dev_head["id"], dev_head["state"]) == (dev_open, "open")
    assert waited == f"r@{parent}"
    assert [c["id"] for c in listed] == [parent, oldest]


# -- file verbs ------------------------------------------------------------------------------
def test_diff_file_reports_added_modified_deleted(cairn: Cairn) -> None:
    first, _ = seed(
        cairn,
        "d",
        {"keep.txt": "keep", "change.txt": "change", "drop.txt": "drop"},
        {"change.txt": "changed!", "new/added.txt": "new", "drop.txt": None},
    )

    changes = {c["path"]: c for c in cairn.raw("diff", "file", "d@master")}

    assert {p: c["status"] for p, c in changes.items()} == {
        "/change.txt": "modified",
        "/drop.txt": "deleted",
        "/new/added.txt": "added",
    }
    assert (changes["/change.txt"]["old_size"], changes["/change.txt"]["new_size"]) == (6, 8)
    assert changes["/drop.txt"]["new_hash"] is None
    assert changes["/new/added.txt"]["old_hash"] is None
    reverse = cairn.raw("diff", "file", f"d@{first}", "d@master")
    assert {c["path"]: c["status"] for c in reverse} == {
        "/change.txt": "modified",
        "/drop.txt": "added",
        "/new/added.txt": "deleted",
    }
    assert cairn.raw("diff", "file", "d@master", "d@master") == []


def test_delete_file_and_folder(cairn: Cairn) -> None:
    seed(cairn, "d", {rel: rel for rel in ("a.txt", "dir/b.txt", "dir/sub/c.txt")})

    cairn("delete", "file", "d@master:/a.txt")
    cairn("delete", "file", "d@master:/dir/sub")

    assert paths(cairn.raw("list", "file", "d@master:/")) == ["/dir"]
    assert paths(cairn.raw("list", "file", "d@master:/dir")) == ["/dir/b.txt"]
    assert cairn.get("d@master^2:/a.txt") == b"a.txt"
    cairn.fails("delete", "file", "d@master:/a.txt")
    cairn.fails("get", "file", "d@master:/a.txt")
    assert len(commit_ids(cairn, "d@master")) == 3


def test_copy_file_and_folder_share_content(cairn: Cairn) -> None:
    seed(cairn, "c", {"dir/x.bin": os.urandom(2000), "dir/y/z.txt": "zzz"})
    seed(cairn, "other")

    cairn("copy", "file", "c@master:/dir/x.bin", "c@master:/x-copy.bin")
    cairn("copy", "file", "c@master:/dir", "other@master:/backup")

    original = cairn.raw("inspect", "file", "c@master:/dir/x.bin")
    copy = cairn.raw("inspect", "file", "c@master:/x-copy.bin")
    assert (copy["hash"], copy["size"]) == (original["hash"], original["size"])
    assert cairn.get("c@master:/x-copy.bin") == cairn.get("c@master:/dir/x.bin")
    cairn("get", "file", "other@master:/backup", "-r", "-o", "backup")
    cairn("get", "file", "c@master:/dir", "-r", "-o", "original")
    assert tree_of(cairn.root / "backup") == tree_of(cairn.root / "original")
    assert set(tree_of(cairn.root / "backup")) == {"x.bin", "y/z.txt"}
    cairn.fails("copy", "file", "c@master:/missing", "c@master:/m2")


def test_glob_file(cairn: Cairn) -> None:
    seed(
        cairn,
        "g",
        {rel: rel for rel in ("a.txt", "b.csv", "dir/c.txt", "dir/deep/d.txt", "other/e.csv")},
    )

    def glob(pattern: str) -> list[str]:
        return paths(cairn.raw("glob", "file", f"g@master:{pattern}"))

    assert glob("/*.txt") == ["/a.txt"]
    assert glob("/*") == ["/a.txt", "/b.csv", "/dir", "/other"]
    assert glob("/*/*.csv") == ["/other/e.csv"]
    assert glob("/**.txt") == ["/a.txt", "/dir/c.txt", "/dir/deep/d.txt"]
    assert glob("/{a,b}.*") == ["/a.txt", "/b.csv"]
    assert glob("/nothing*") == []


def test_inspect_file_raw(cairn: Cairn) -> None:
    data = b"hello inspect\n"
    _, last = seed(cairn, "i", {"dir/f.txt": data}, {"dir/g.txt": b"g"})

    info = cairn.raw("inspect", "file", "i@master:/dir/f.txt")
    folder = cairn.raw("inspect", "file", "i@master:/dir")

    assert info["path"] == "/dir/f.txt"
    assert info["type"] == "file"
    assert info["size"] == len(data)
    assert info["hash"] == blake3.blake3(data).hexdigest()
    assert info["chunks"] == 1
    assert info["datum"] is None
    assert info["commit"] == last
    assert (folder["type"], folder["count"], folder["size"]) == ("dir", 2, len(data) + 1)
    cairn.fails("inspect", "file", "i@master:/dir/nope")


# -- repos and branches ------------------------------------------------------------------------
def test_create_list_inspect_delete_repo(cairn: Cairn) -> None:
    cairn("create", "repo", "alpha", "-d", "first repo")
    cairn("create", "repo", "beta")
    cairn.put("alpha@master:/f", b"12345")

    repos = {r["name"]: r for r in cairn.raw("list", "repo")}
    assert set(repos) == {"alpha", "beta"}
    info = cairn.raw("inspect", "repo", "alpha")
    assert (info["type"], info["description"], info["size"]) == ("user", "first repo", 5)
    assert info["branches"] == ["master"]
    cairn.fails("create", "repo", "alpha")
    cairn.fails("create", "repo", "bad/name")

    cairn("delete", "repo", "alpha")

    assert [r["name"] for r in cairn.raw("list", "repo")] == ["beta"]
    cairn.fails("inspect", "repo", "alpha")
    cairn.fails("get", "file", "alpha@master:/f")
    cairn.fails("delete", "repo", "alpha")


def test_branches_with_head(cairn: Cairn) -> None:
    ids = seed(cairn, "b", *({"v": f"{n}"} for n in range(3)))

    cairn("create", "branch", "b@dev", "--head", "master^")
    dev = cairn.put("b@dev:/v", "dev")

    branches = {b["name"]: b["head"] for b in cairn.raw("list", "branch", "b")}
    assert branches == {"dev": dev, "master": ids[2]}
    assert cairn.raw("inspect", "commit", f"b@{dev}")["parent"] == ids[1]
    assert cairn.get("b@master:/v") == b"2"
    assert cairn.get("b@dev^:/v") == b"1"
    cairn("create", "branch", "b@fixed", "--head", ids[0])
    assert cairn.raw("inspect", "branch", "b@fixed")["head"] == ids[0]
    cairn("create", "branch", "b@empty")
    assert cairn.raw("inspect", "branch", "b@empty")["head"] is None
    cairn.fails("create", "branch", "b@x", "--head", "nosuchbranch")

    cairn("delete", "branch", "b@dev")

    assert [b["name"] for b in cairn.raw("list", "branch", "b")] == ["empty", "fixed", "master"]
    assert cairn.get(f"b@{dev}:/v") == b"dev"


def test_branch_head_may_name_its_repo_but_not_another(cairn: Cairn) -> None:
    _first, parent, _head = seed(cairn, "r", {"a": "1"}, {"a": "2"}, {"a": "3"})
    seed_repo(cairn, "other", {"x": "x"})

    cairn("create", "branch", "r@old", "--head", "r@master^")
    refused = cairn.fails("create", "branch", "r@stray", "--head", "other@master")

    single_error(refused)
    branches = {b["name"]: b["head"] for b in cairn.raw("list", "branch", "r")}
    assert branches["old"] == parent
    assert "stray" not in branches


def test_put_folder_skips_links_out_and_pipes_and_names_them(cairn: Cairn) -> None:
    cairn.write("outside.txt", "secret")
    cairn.write("src/a.txt", "a")
    (cairn.root / "src" / "latest").symlink_to("a.txt")
    (cairn.root / "src" / "leak").symlink_to(cairn.root / "outside.txt")
    os.mkfifo(cairn.root / "src" / "pipe")  # opening it would block the put forever
    cairn("create", "repo", "r")

    proc = cairn("put", "file", "r@master:/", "-f", "src", "-r", "--raw", timeout=60)

    assert {(s["path"], s["reason"]) for s in json.loads(proc.stdout)["skipped"]} == {
        ("src/leak", "link out of the folder"),
        ("src/pipe", "named pipe"),
    }
    assert "src/leak" in proc.stderr and "src/pipe" in proc.stderr
    assert paths(cairn.raw("list", "file", "r@master:/")) == ["/a.txt", "/latest"]
    assert cairn.get("r@master:/latest") == b"a"


def test_file_names_print_with_control_characters_escaped(cairn: Cairn) -> None:
    evil = "a\nb\x1b[31mred\x07"
    seed_repo(cairn, "r", {evil: "x", "[red]x": "y", "back\\slash": "z"})

    listed = cairn("list", "file", "r@master:/").stdout
    inspected = cairn("inspect", "file", f"r@master:/{evil}").stdout
    missing = cairn.fails("get", "file", "r@master:/no\x1b[2J").stderr

    for text in (listed, inspected, missing):
        assert not any(c in text for c in "\x1b\x07"), text
    assert len(listed.splitlines()) == 4  # the heading and one line per file
    assert "'/a\\nb\\x1b[31mred\\x07'" in listed
    assert "/[red]x " in listed  # rich markup is printed as it is
    assert "'/back\\\\slash'" in listed  # a backslash alone cannot fake an escape
    assert "'/a\\nb\\x1b[31mred\\x07'" in inspected
    assert "/no\\x1b[2J" in missing
    assert [f["path"] for f in cairn.raw("list", "file", "r@master:/")] == [
        "/[red]x",
        "/a\nb\x1b[31mred\x07",
        "/back\\slash",
    ]


def test_get_o_replaces_a_link_and_leaves_its_target(cairn: Cairn) -> None:
    seed_repo(cairn, "r", {"f.txt": "new"})
    target = cairn.write("target.txt", "keep")
    (cairn.root / "out.txt").symlink_to(target)

    cairn("get", "file", "r@master:/f.txt", "-o", "out.txt")

    assert target.read_text() == "keep"
    assert not (cairn.root / "out.txt").is_symlink()
    assert (cairn.root / "out.txt").read_text() == "new"


# -- refusals --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, cairn_mode: str) -> Iterator[Cairn]:
    """A repo with one commit, /dir/sub/f.txt, for tests that must change nothing."""
    c = Cairn(tmp_path_factory.mktemp("guarded") / "work")
    c.root.mkdir()
    seed(c, "p", {"dir/sub/f.txt": "inside"})
    c.write("f.txt", "data")
    with c.serving(cairn_mode) as served:
        yield served


def outside_files(c: Cairn) -> list[Path]:
    return sorted(p for p in c.root.parent.rglob("*") if c.home not in (p, *p.parents))


@pytest.mark.parametrize(
    ("path", "stdin"),
    [
        ("/../escape.txt", False),
        ("/a/../../escape.txt", True),
        ("/a/./b", False),
        ("/./x", True),
        ("/a/..", False),
    ],
)
def test_put_refuses_dot_paths(guarded: Cairn, path: str, stdin: bool) -> None:
    before = outside_files(guarded)
    source = ["-f", "-"] if stdin else ["-f", "f.txt"]

    guarded.fails("put", "file", f"p@master:{path}", *source, input=b"data" if stdin else None)

    assert len(guarded.raw("list", "commit", "p")) == 1
    assert outside_files(guarded) == before


@pytest.mark.parametrize("path", ["/..", "/../..", "/dir/../..", "/dir/./sub"])
def test_get_recursive_refuses_dot_paths_and_writes_nothing(guarded: Cairn, path: str) -> None:
    before = outside_files(guarded)

    guarded.fails("get", "file", f"p@master:{path}", "-r", "-o", "out")

    assert outside_files(guarded) == before


def test_get_recursive_writes_only_under_output(cairn: Cairn) -> None:
    seed(cairn, "p", {"dir/sub/f.txt": "inside", "top.txt": "top"})
    outside = {p for p in cairn.root.rglob("*") if "store" not in p.parts}

    cairn("get", "file", "p@master:/dir", "-r", "-o", "out")

    new = {p for p in cairn.root.rglob("*") if "store" not in p.parts} - outside
    assert new and all(p.is_relative_to(cairn.root / "out") for p in new)


def test_pipeline_output_repo_refuses_user_writes(cairn: Cairn) -> None:
    seed_repo(cairn, "src", {"a.txt": "a"})
    cairn.write("copy.sh", COPY_SH)
    cairn(
        "create",
        "pipeline",
        "-f",
        str(cairn.spec(pipeline("copy", pfs("src"), ["bash", "copy.sh"]))),
    )
    before = commit_ids(cairn, "copy")

    cairn.fails("put", "file", "copy@master:/b.txt", "-f", "-", input=b"b")
    cairn.fails("start", "commit", "copy@master")
    cairn.fails("delete", "file", "copy@master:/a.txt")
    cairn.fails("copy", "file", "src@master:/a.txt", "copy@master:/c.txt")

    assert commit_ids(cairn, "copy") == before
    assert paths(cairn.raw("list", "file", "copy@master:/")) == ["/a.txt"]


def test_delete_repo_read_by_a_pipeline_needs_force(cairn: Cairn) -> None:
    seed_repo(cairn, "src", {"a.txt": "a"})
    cairn.write("copy.sh", COPY_SH)
    cairn(
        "create",
        "pipeline",
        "-f",
        str(cairn.spec(pipeline("copy", pfs("src"), ["bash", "copy.sh"]))),
    )

    cairn.fails("delete", "repo", "src")

    assert "src" in [r["name"] for r in cairn.raw("list", "repo")]
    assert cairn.get("src@master:/a.txt") == b"a"

    cairn("delete", "repo", "src", "--force")

    assert [r["name"] for r in cairn.raw("list", "repo")] == ["copy"]
    cairn.fails("inspect", "repo", "src")
