"""The Client facade in-process: deferred runs and waiting on folded commits, and local
puts and gets (folders, single files, several files, progress callbacks)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import cairn
from cairn import CairnError, Client

COPY = 'cp -r "$CAIRN_PFS/words/." "$CAIRN_PFS/out/"'


@pytest.fixture
def open_client(tmp_path: Path) -> Iterator[Callable[..., Client]]:
    """A factory of Clients on one store folder (``tmp_path/store``), closed at the end."""
    opened: list[Client] = []

    def make(*, auto_run: bool = False) -> Client:
        client = Client(tmp_path / "store", auto_run=auto_run)
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.data.catalog.dispose()


@pytest.fixture
def client(open_client: Callable[..., Client]) -> Client:
    return open_client()


def put(client: Client, ref: str, data: bytes) -> cairn.CommitInfo:
    """Put ``data`` at ``repo@branch:/path`` through the facade (pipelines per auto_run)."""
    repo, _, rest = ref.partition("@")
    branch, _, path = rest.partition(":")
    return client.put_files(repo, branch, [(path, io.BytesIO(data))])


def copy_pipeline(client: Client, folder: Path, cmd: str = COPY) -> None:
    """A pipeline ``copy`` over repo ``words`` (one datum per file), by default copying."""
    spec = {
        "pipeline": {"name": "copy"},
        "transform": {"cmd": ["bash", "-c", cmd]},
        "datum_tries": 1,
        "input": {"pfs": {"repo": "words", "glob": "/*"}},
    }
    path = folder / "copy.json"
    path.write_text(json.dumps(spec))
    client.create_pipelines(path)


def test_package_exports_the_client_and_the_base_error() -> None:
    assert issubclass(cairn.InvalidPath, CairnError)
    assert Client is cairn.Client


# -- deferred runs -------------------------------------------------------------------------
def test_one_run_covers_two_puts_and_wait_returns_the_covering_commit(
    tmp_path: Path, open_client: Callable[..., Client]
) -> None:
    writer = open_client()
    writer.create_repo("words")
    copy_pipeline(writer, tmp_path)
    first = put(writer, "words@master:/a.txt", b"a")
    second = put(writer, "words@master:/b.txt", b"b")
    assert writer.pipelines.list_jobs("copy") == []

    [job] = open_client().run_pipelines()  # as a `cairn run` process would

    assert (job.id, job.state, job.processed) == (second.id, "success", 2)
    head = writer.wait_commit("copy", first.id, timeout=10)
    assert head.id == writer.data.inspect_commit("copy", "master").id == second.id
    assert [(p.repo, p.commit) for p in head.provenance] == [("words", second.id)]
    assert writer.wait_commit("copy", second.id, timeout=10).id == second.id


def test_wait_on_a_commit_folded_into_a_failed_job_raises(
    tmp_path: Path, open_client: Callable[..., Client]
) -> None:
    client = open_client()
    client.create_repo("words")
    copy_pipeline(client, tmp_path, cmd='test ! -e "$CAIRN_PFS/words/bad"')
    first = put(client, "words@master:/a.txt", b"a")
    second = put(client, "words@master:/bad", b"bad")
    [job] = client.run_pipelines()
    assert (job.id, job.state) == (second.id, "failure")
    with pytest.raises(cairn.PipelineError):
        client.wait_commit("copy", second.id, timeout=1)

    with pytest.raises(cairn.PipelineError):
        client.wait_commit("copy", first.id, timeout=1)


# -- put_local and get_local ---------------------------------------------------------------
def tree_of(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_folder_round_trip_keeps_nested_paths(tmp_path: Path, client: Client) -> None:
    client.create_repo("r")
    folder = tmp_path / "local"
    for rel, data in {"a.txt": b"alpha", "deep/er/b.bin": bytes(range(256)), "c": b""}.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)

    client.put_local("r@master:/sub", [str(folder)], recursive=True)
    out = tmp_path / "out"
    written = client.get_local("r@master:/sub", out)

    assert [f.path for f in client.list_file("r@master:/sub")] == [
        "/sub/a.txt",
        "/sub/c",
        "/sub/deep",
    ]
    assert tree_of(out) == tree_of(folder)
    assert sorted(written) == sorted(out / rel for rel in tree_of(folder))


def test_a_file_put_at_the_root_lands_under_its_name(tmp_path: Path, client: Client) -> None:
    client.create_repo("r")
    local = tmp_path / "name.txt"
    local.write_bytes(b"hello")

    client.put_local("r@master:/", [str(local)])

    assert [f.path for f in client.list_file("r@master:/")] == ["/name.txt"]
    client.get_local("r@master:/name.txt", tmp_path / "back.txt")
    assert (tmp_path / "back.txt").read_bytes() == b"hello"


def test_several_files_go_below_the_path(tmp_path: Path, client: Client) -> None:
    client.create_repo("r")
    paths = []
    for name in ("one", "two", "three"):
        paths.append(tmp_path / name)
        paths[-1].write_bytes(name.encode() * 3)

    commit = client.put_local("r@master:/dir", [str(p) for p in paths])

    assert len(client.data.list_commits("r")) == 1
    assert commit.size == sum(p.stat().st_size for p in paths)
    client.get_local("r@master:/dir", tmp_path / "back")
    assert tree_of(tmp_path / "back") == {p.name: p.read_bytes() for p in paths}


def test_a_folder_without_recursive_is_refused(tmp_path: Path, client: Client) -> None:
    client.create_repo("r")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "x").write_bytes(b"x")

    with pytest.raises(cairn.InvalidPath):
        client.put_local("r@master:/f", [str(tmp_path / "folder")])

    assert client.data.list_commits("r") == []


def test_progress_callbacks_see_the_plan_and_every_byte(tmp_path: Path, client: Client) -> None:
    client.create_repo("r")
    folder = tmp_path / "local"
    folder.mkdir()
    sizes = {"a": 10, "b": 3_000_000, "c": 0}
    for name, size in sizes.items():
        (folder / name).write_bytes(b"x" * size)
    plans: list[tuple[int | None, int]] = []
    seen: list[int] = []

    client.put_local(
        "r@master:/",
        [str(folder)],
        recursive=True,
        on_plan=lambda *a: plans.append(a),
        progress=seen.append,
    )

    assert plans == [(sum(sizes.values()), 3)]
    assert sum(seen) == sum(sizes.values())


def test_on_stored_runs_before_the_pipelines(
    tmp_path: Path, open_client: Callable[..., Client]
) -> None:
    client = open_client(auto_run=True)
    client.create_repo("words")
    copy_pipeline(client, tmp_path)  # no job: words has no commit yet
    local = tmp_path / "a.txt"
    local.write_bytes(b"a")
    jobs_when_stored: list[list[cairn.JobInfo]] = []

    commit = client.put_local(
        "words@master:/",
        [str(local)],
        on_stored=lambda: jobs_when_stored.append(client.pipelines.list_jobs("copy")),
    )

    assert jobs_when_stored == [[]]
    [job] = client.pipelines.list_jobs("copy")
    assert (job.id, job.state) == (commit.id, "success")
