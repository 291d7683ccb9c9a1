"""The AWS CLI (PyPI ``awscli``) against the gateway, as users type it: ``aws s3 ls``,
``aws s3 cp`` both ways and ``aws s3 sync`` of a folder, with ``--endpoint-url``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import S3_TEST_ENV, S3_UNSET_ENV
from tests.gateway.conftest import gateway

from cairn.api.protocol import ClientProtocol


def _aws(url: str, *args: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in S3_UNSET_ENV}
    env.update(S3_TEST_ENV)
    done = subprocess.run(
        [sys.executable, "-m", "awscli", "--endpoint-url", url, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_aws_s3_ls_cp_and_sync(local: ClientProtocol, tmp_path: Path) -> None:
    old = local.files.put("training@master:/iris.csv", b"a,b\n1,2\n")
    local.files.put("training@master:/iris.csv", b"a,b\n3,4\n")
    up = tmp_path / "up"
    (up / "sub").mkdir(parents=True)
    (up / "x.txt").write_bytes(b"x\n")
    (up / "sub" / "y.txt").write_bytes(b"y\n")
    with gateway(local) as url:
        listed = _aws(url, "s3", "ls", "s3://training/master/", cwd=tmp_path)
        assert listed.split()[-2:] == ["8", "iris.csv"]
        assert _aws(url, "s3", "ls", cwd=tmp_path).split()[-1] == "training"

        _aws(url, "s3", "cp", "up/x.txt", "s3://training/master/new/x.txt", cwd=tmp_path)
        assert local.files.read("training@master:/new/x.txt") == b"x\n"
        _aws(url, "s3", "cp", "s3://training/master/iris.csv", "now.csv", cwd=tmp_path)
        assert (tmp_path / "now.csv").read_bytes() == b"a,b\n3,4\n"
        _aws(url, "s3", "cp", f"s3://training/{old.id}/iris.csv", "then.csv", cwd=tmp_path)
        assert (tmp_path / "then.csv").read_bytes() == b"a,b\n1,2\n"

        _aws(url, "s3", "sync", "up", "s3://training/dev/synced/", cwd=tmp_path)
        assert local.files.read("training@dev:/synced/sub/y.txt") == b"y\n"
        again = _aws(url, "s3", "sync", "up", "s3://training/dev/synced/", cwd=tmp_path)
        assert "upload:" not in again  # nothing changed, nothing sent
        _aws(url, "s3", "sync", "s3://training/dev/synced/", "down", cwd=tmp_path)
        assert (tmp_path / "down" / "sub" / "y.txt").read_bytes() == b"y\n"
        assert (tmp_path / "down" / "x.txt").read_bytes() == b"x\n"
        recursive = _aws(url, "s3", "ls", "--recursive", "s3://training/dev/", cwd=tmp_path)
        assert [line.split()[-1] for line in recursive.splitlines()] == [
            "dev/synced/sub/y.txt",
            "dev/synced/x.txt",
        ]
