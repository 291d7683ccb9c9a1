"""Pipelines created through ``cairn server`` run their transform in a copy of the spec's
folder that travelled as a code bundle (cairn.api.bundles), unpacked once per content,
safely; the client's folder is never read by the server."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import httpx
import pytest

import cairn.api.bundles as bundles
from cairn.api.bundles import BundleError, pack, unpack
from cairn.api.remote.client import RemoteClient

from .conftest import Server

COPY = 'for f in "$CAIRN_PFS"/words/*; do cp "$f" "$CAIRN_PFS/out/"; done\n'


def _spec_folder(folder: Path) -> Path:
    folder.mkdir()
    folder.chmod(0o755)
    (folder / "copy.sh").write_text(COPY)
    spec = {
        "pipeline": {"name": "copy"},
        "transform": {"cmd": ["bash", "copy.sh"]},
        "datum_tries": 1,
        "input": {"pfs": {"repo": "words", "glob": "/*"}},
    }
    path = folder / "copy.json"
    path.write_text(json.dumps(spec))
    return path


def _uploads(client: RemoteClient) -> list[str]:
    sent: list[str] = []

    def count(request: httpx.Request) -> None:
        if request.method == "POST" and request.url.path == "/api/v1/code":
            sent.append(request.url.path)

    client.transport.http.event_hooks["request"].append(count)
    return sent


def test_the_spec_folder_travels_and_the_transform_runs_on_the_server(
    remote: tuple[RemoteClient, Path], tmp_path: Path
) -> None:
    client, home = remote
    path = _spec_folder(tmp_path / "spec")
    client.repos.create("words")
    client.files.put("words@master:/a.txt", b"alpha")
    uploads = _uploads(client)
    [made] = client.pipelines.create(path)
    assert Path(made.spec_dir).parent == home / "code"
    assert client.files.read("copy@master:/a.txt") == b"alpha"
    # The client's folder is gone: the server runs its own copy.
    shutil.rmtree(tmp_path / "spec")
    client.files.put("words@master:/b.txt", b"beta")
    assert client.files.read("copy@master:/b.txt") == b"beta"
    # The same folder again: not sent again, not unpacked again.
    path = _spec_folder(tmp_path / "spec")
    unpacked = os.stat(made.spec_dir).st_ino
    [updated] = client.pipelines.update(path, reprocess=True)
    assert (updated.version, updated.spec_dir) == (2, made.spec_dir)
    assert os.stat(made.spec_dir).st_ino == unpacked
    assert len(uploads) == 1


def test_a_bundle_holds_the_folder_without_clutter_or_links_out(tmp_path: Path) -> None:
    folder = tmp_path / "spec"
    folder.mkdir()
    (folder / "run.sh").write_text("echo hi\n")
    (folder / "run.sh").chmod(0o755)
    (folder / "lib").mkdir()
    (folder / "lib" / "util.py").write_text("X = 1\n")
    for clutter in (".git", ".cairn", "__pycache__", ".venv", "node_modules"):
        (folder / clutter).mkdir()
        (folder / clutter / "big").write_bytes(b"x" * 1000)
    (folder / "inside").symlink_to("lib/util.py")
    (folder / "outside").symlink_to("/etc/passwd")
    (folder / "up").symlink_to("..")
    first, second = io.BytesIO(), io.BytesIO()
    assert pack(folder, first) == len("echo hi\n") + len("X = 1\n")
    pack(folder, second)
    assert first.getvalue() == second.getvalue()  # same files, same bytes, same id
    with tarfile.open(fileobj=io.BytesIO(first.getvalue())) as tar:
        names = {m.name: m for m in tar.getmembers()}
    assert set(names) == {"run.sh", "lib", "lib/util.py", "inside"}
    assert names["run.sh"].mode == 0o755 and names["inside"].linkname == "lib/util.py"
    out = tmp_path / "out"
    out.mkdir()
    first.seek(0)
    unpack(first, out)
    assert (out / "inside").read_text() == "X = 1\n" and os.access(out / "run.sh", os.X_OK)


def test_a_folder_over_the_limit_is_refused_before_sending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bundles, "MAX_BUNDLE_BYTES", 1000)
    (tmp_path / "big").write_bytes(b"x" * 1001)
    with pytest.raises(BundleError):
        pack(tmp_path, io.BytesIO())


def _tar(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"x", link: str = ""):  # type: ignore[no-untyped-def]
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data if kind == tarfile.REGTYPE else None


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(_tar(_member("../escape")), id="dotdot"),
        pytest.param(_tar(_member("/abs/path")), id="absolute"),
        pytest.param(_tar(_member("out", tarfile.SYMTYPE, link="/etc/passwd")), id="link-out"),
        pytest.param(_tar(_member("up", tarfile.SYMTYPE, link="../../x")), id="link-up"),
        pytest.param(_tar(_member("dev", tarfile.CHRTYPE)), id="device"),
        pytest.param(_tar(_member("hard", tarfile.LNKTYPE, link="x")), id="hard-link"),
        pytest.param(b"not a tar.gz at all", id="garbage"),
    ],
)
def test_an_unsafe_or_malformed_bundle_is_refused_and_leaves_nothing(
    server: Server, body: bytes
) -> None:
    response = server.http.post("/api/v1/code", content=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "BundleError"
    assert not (server.home.parent / "escape").exists()
    assert [p.name for p in (server.home / "code").iterdir()] == []


def test_a_bundle_over_the_limit_is_refused(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cairn.server.team.specs as specs

    monkeypatch.setattr(specs, "MAX_BUNDLE_BYTES", 1000)
    response = server.http.post("/api/v1/code", content=b"x" * 5000)
    assert response.status_code == 400 and response.json()["error"]["type"] == "BundleError"
    monkeypatch.setattr(bundles, "MAX_BUNDLE_BYTES", 1000)
    bomb = _tar(_member("zeros", data=bytes(100_000)))  # small compressed, large unpacked
    assert len(bomb) < 1000
    response = server.http.post("/api/v1/code", content=bomb)
    assert response.status_code == 400 and response.json()["error"]["type"] == "BundleError"
