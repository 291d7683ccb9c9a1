"""``cairn server`` over the backends a team runs: objects on S3 (moto's server) and the
catalog on PostgreSQL (Debian's), reached by a remote client that holds no credentials:
puts, gets, a pipeline that runs in the server's worker, and auth."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.team_server import team_server

from cairn.api.remote.client import RemoteClient
from cairn.catalog.errors import PermissionDenied


def test_a_server_over_s3_and_postgresql(
    tmp_path: Path,
    make_s3_url: Callable[[], str],
    make_postgres_url: Callable[[], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = tmp_path / "server"
    home.mkdir()
    objects, catalog = make_s3_url(), make_postgres_url()
    (home / "config.toml").write_text(f'[store]\nobjects = "{objects}"\ncatalog = "{catalog}"\n')
    for name in ("CAIRN_OBJECTS_URL", "CAIRN_CATALOG_URL", "CAIRN_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CAIRN_SANDBOX", "none")
    spec_dir = tmp_path / "code"
    spec_dir.mkdir()
    (spec_dir / "upper.sh").write_text(
        'for f in "$CAIRN_PFS"/words/*; do\n'
        '  tr a-z A-Z < "$f" > "$CAIRN_PFS/out/$(basename "$f")"\n'
        "done\n"
    )
    spec = {
        "pipeline": {"name": "upper"},
        "transform": {"cmd": ["bash", "upper.sh"]},
        "input": {"pfs": {"repo": "words", "glob": "/*"}},
    }
    big = os.urandom(3 << 20)
    with team_server(home) as url:
        with RemoteClient(url) as anyone:
            root_token = anyone.auth.activate()
        with RemoteClient(url, root_token) as root:
            root.repos.create("words")
            root.files.put("words@master:/", {"a.txt": b"hello", "b.bin": big})
            root.pipelines.create([spec], spec_dir=spec_dir)
            # The write waited for the job, which ran in the server's worker.
            assert root.files.read("upper@master:/a.txt") == b"HELLO"
            assert root.files.read("words@master:/b.bin") == big
            [job] = root.jobs.list("upper")
            assert job.state == "success"
            _, reader = root.auth.create_token("reader")
            root.auth.set_role("repo", "upper", "reader", "repoReader")
        with RemoteClient(url, reader) as alice:
            assert alice.files.read("upper@master:/a.txt") == b"HELLO"
            assert [r.name for r in alice.repos.list()] == ["upper"]
            with pytest.raises(PermissionDenied, match="repoWriter"):
                alice.files.put("upper@master:/x.txt", b"no")
            out = tmp_path / "out"
            alice.files.download("upper@master:/", out)
            assert (out / "a.txt").read_bytes() == b"HELLO"
