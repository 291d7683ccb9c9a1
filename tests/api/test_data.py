"""Repos, branches, commits and files through the face, with the strings users type."""

from __future__ import annotations

import io
import random
from enum import StrEnum
from pathlib import Path

import pytest

from cairn.api import CommitState, FileLineage
from cairn.api.protocol import ClientProtocol
from cairn.data import (
    AlreadyExists,
    CommitStateError,
    InvalidPath,
    InvalidReference,
    NotFound,
    RepoInUse,
)
from cairn.storage.errors import FieldError

from .helpers import roundtrips


def test_repos_create_get_list_delete(client: ClientProtocol) -> None:
    made = client.repos.create("images", "photos")
    assert (made.name, made.type, made.description) == ("images", "user", "photos")
    with pytest.raises(AlreadyExists):
        client.repos.create("images")
    with pytest.raises(InvalidReference):
        client.repos.create("no spaces")
    client.files.put("images@master:/a.png", b"png")
    assert client.repos.get("images").size == 3
    assert [r.name for r in client.repos.list()] == ["images"]
    assert roundtrips(client.repos.list())[0]["branches"] == ["master"]
    client.repos.delete("images")
    with pytest.raises(NotFound):
        client.repos.get("images")


def test_files_take_the_strings_users_type(client: ClientProtocol) -> None:
    # Before the face, client.data.read_file("images@master:/x") raised AttributeError.
    client.repos.create("images")
    first = client.files.put("images@master:/a.png", b"one")
    client.files.put("images@master:/a.png", io.BytesIO(b"two"))
    assert client.files.read("images@master:/a.png") == b"two"
    assert client.files.read("images@master^:/a.png") == b"one"
    assert client.files.read(f"images@{first.id}:/a.png") == b"one"
    info = client.files.get("images@master:/a.png")
    assert (info.path, info.type, info.size) == ("/a.png", "file", 3)
    with pytest.raises(NotFound):
        client.files.read("images@master:/missing.png")
    with pytest.raises(InvalidPath):
        client.files.put("images@master^:/a.png", b"x")  # an ancestor is not writable
    with pytest.raises(InvalidPath):
        client.files.put("images@master", b"x")  # no path


def test_put_many_list_glob_diff_copy_delete(client: ClientProtocol) -> None:
    client.repos.create("images")
    commit = client.files.put(
        "images@master:/photos", {"a.png": b"a", "b/c.png": b"cc", "notes.txt": b"n"}
    )
    assert commit.state is CommitState.FINISHED and isinstance(commit.state, StrEnum)
    assert roundtrips(commit)["state"] == "finished"
    listed = client.files.list("images@master:/photos")
    assert [(f.path, f.type) for f in listed] == [
        ("/photos/a.png", "file"),
        ("/photos/b", "dir"),
        ("/photos/notes.txt", "file"),
    ]
    assert [f.path for f in client.files.glob("images@master", "/photos/**.png")] == [
        "/photos/a.png",
        "/photos/b/c.png",
    ]
    client.files.copy("images@master:/photos/a.png", "images@master:/copy/a.png")
    gone = client.files.delete("images@master:/photos/notes.txt", "images@master:/photos/b")
    assert [(c.path, c.status) for c in client.files.diff(f"images@{gone.id}")] == [
        ("/photos/b/c.png", "deleted"),
        ("/photos/notes.txt", "deleted"),
    ]
    changes = client.files.diff("images@master", f"images@{commit.id}")
    assert {(c.path, c.status) for c in changes} == {
        ("/copy/a.png", "added"),
        ("/photos/b/c.png", "deleted"),
        ("/photos/notes.txt", "deleted"),
    }
    assert client.files.read("images@master:/copy/a.png") == b"a"
    with pytest.raises(InvalidReference):
        client.files.delete("images@master:/copy/a.png", "images@other:/photos/a.png")


def test_open_streams_a_large_file_in_pieces(client: ClientProtocol) -> None:
    client.repos.create("blobs")
    body = bytes(range(256)) * 40_000  # 10 MB: several content-defined chunks
    client.files.put("blobs@master:/big.bin", body)
    with client.files.open("blobs@master:/big.bin") as stream:
        pieces = []
        while piece := stream.read(1 << 20):
            assert len(piece) <= 1 << 20
            pieces.append(piece)
    assert b"".join(pieces) == body
    with pytest.raises(InvalidPath):
        client.files.open("blobs@master:/")


def test_read_range_reads_only_the_chunks_that_hold_the_range(
    client: ClientProtocol, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cairn.storage.chunks import ChunkStore

    client.repos.create("blobs")
    body = random.Random(7).randbytes(6 << 20)  # incompressible: several chunks
    client.files.put("blobs@master:/big.bin", body)
    chunks = client.files.get("blobs@master:/big.bin").chunks
    assert chunks >= 4
    read = ChunkStore.read_chunk
    fetched: list[int] = []  # the server runs in this process, so both sides count here

    def counting(self: ChunkStore, ref: object, location: object = None) -> bytes:
        fetched.append(1)
        return read(self, ref, location)  # type: ignore[arg-type]

    monkeypatch.setattr(ChunkStore, "read_chunk", counting)
    assert (
        client.files.read_range("blobs@master:/big.bin", 3_000_000, 3_000_100)
        == (body[3_000_000:3_000_100])
    )
    assert 1 <= len(fetched) <= 2  # the chunk holding the range (two if it straddles)
    assert client.files.read_range("blobs@master:/big.bin", len(body) - 5) == body[-5:]
    assert client.files.read_range("blobs@master:/big.bin", 10, 1 << 40) == body[10:]
    assert client.files.read_range("blobs@master:/big.bin", 7, 7) == b""
    with pytest.raises(InvalidPath):
        client.files.read_range("blobs@master:/", 0, 1)
    with pytest.raises(NotFound):
        client.files.read_range("blobs@master:/missing", 0, 1)
    with pytest.raises(FieldError):
        client.files.read_range("blobs@master:/big.bin", -1, 4)


def test_upload_and_download_local_folders(client: ClientProtocol, tmp_path: Path) -> None:
    src = tmp_path / "photos"
    (src / "deep").mkdir(parents=True)
    (src / "a.png").write_bytes(b"a")
    (src / "deep" / "b.png").write_bytes(b"bb")
    client.repos.create("images")
    with pytest.raises(InvalidPath):
        client.files.upload("images@master:/photos", [src])  # a folder needs recursive
    client.files.upload("images@master:/photos", [src], recursive=True)
    written = client.files.download("images@master:/photos", tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in written) == [
        "a.png",
        "deep/b.png",
    ]
    assert (tmp_path / "out" / "deep" / "b.png").read_bytes() == b"bb"


def test_branches_and_commits(client: ClientProtocol) -> None:
    client.repos.create("images")
    opened = client.commits.start("images@dev", "by hand")
    assert opened.state is CommitState.OPEN and opened.branch == "dev"
    with pytest.raises(CommitStateError):
        client.commits.start("images@dev")
    client.files.put("images@dev:/a.png", b"a")  # goes into the open commit
    assert client.commits.get("images@dev").id == opened.id
    done = client.commits.finish("images@dev")
    assert done.state is CommitState.FINISHED and done.size == 1
    with pytest.raises(CommitStateError):
        client.commits.finish(f"images@{done.id}")
    assert client.commits.wait(f"images@{done.id}", timeout=5).id == done.id
    client.files.put("images@dev:/b.png", b"b")
    assert [c.parent for c in client.commits.list("images@dev")][-1] is None
    assert len(client.commits.list("images@dev", limit=1)) == 1
    assert len(client.commits.list("images")) == 2
    assert client.branches.get("images@dev").head == client.commits.get("images@dev").id
    made = client.branches.create("images@release", head="images@dev^")
    assert made.head == done.id
    assert [b.name for b in client.branches.list("images")] == ["dev", "release"]
    client.branches.delete("images@release")
    with pytest.raises(NotFound):
        client.branches.get("images@release")
    with pytest.raises(InvalidReference):
        client.branches.get("images")  # a branch needs its name


def test_lineage_of_a_user_put(client: ClientProtocol) -> None:
    client.repos.create("images")
    commit = client.files.put("images@master:/a.png", b"a")
    lineage = client.files.lineage("images@master:/a.png")
    assert isinstance(lineage, FileLineage)
    assert lineage.pipeline is None and lineage.origin and lineage.commit == commit.id
    assert FileLineage.from_json(roundtrips(lineage)) == lineage
    tree = client.commits.lineage("images@master")
    assert (tree.upstream.repo, tree.upstream.commit, tree.upstream.children) == (
        "images",
        commit.id,
        (),
    )


def test_a_repo_a_pipeline_reads_is_not_deleted_unless_forced(
    client: ClientProtocol, tmp_path: Path
) -> None:
    client.repos.create("words")
    client.pipelines.create(
        {
            "pipeline": {"name": "copy"},
            "transform": {"cmd": ["bash", "-c", "true"]},
            "input": {"pfs": {"repo": "words", "glob": "/*"}},
        },
        spec_dir=tmp_path,
    )
    with pytest.raises(RepoInUse):
        client.repos.delete("words")
    client.repos.delete("words", force=True)
