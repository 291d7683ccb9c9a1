"""``cairn s3-gateway``: the real command in its own process over a fresh embedded
store, driven by boto3."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from tests.gateway.conftest import s3_client
from tests.team_server import free_port

from cairn.client import Client


def test_the_command_serves_the_embedded_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = Client(home, auto_run=False)
    store.repos.create("training")
    store.files.put("training@master:/iris.csv", b"a,b\n1,2\n")
    store.data.catalog.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    env.update(CAIRN_HOME=str(home), CAIRN_CONFIG_DIR=str(tmp_path / "config"))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from cairn.cli import main; main()"]
        + ["s3-gateway", "--port", str(port), "--domain", "s3.test"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url == f"http://127.0.0.1:{port}", proc.stderr
        s3 = s3_client(url)
        deadline = time.monotonic() + 30
        while True:
            try:
                buckets = s3.list_buckets()["Buckets"]
                break
            except Exception:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "the gateway did not answer"
                time.sleep(0.1)
        assert [b["Name"] for b in buckets] == ["training"]
        virtual = httpx.get(f"{url}/master/iris.csv", headers={"Host": "training.s3.test"})
        assert virtual.content == b"a,b\n1,2\n"
        s3.put_object(Bucket="training", Key="master/new.csv", Body=b"x\n")
        assert s3.get_object(Bucket="training", Key="master/iris.csv")["Body"].read() == (
            b"a,b\n1,2\n"
        )
        s3.close()
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    check = Client(home, auto_run=False)
    assert check.files.read("training@master:/new.csv") == b"x\n"
    check.data.catalog.dispose()


def test_server_serves_s3_beside_the_api_with_keys_from_create_s3_key(tmp_path: Path) -> None:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    from cairn.api.remote.client import RemoteClient

    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    env.update(CAIRN_HOME=str(tmp_path / "home"), CAIRN_CONFIG_DIR=str(tmp_path / "config"))
    port, s3_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from cairn.cli import main; main()"]
        + ["server", "--no-worker", "--port", str(port), "--s3-port", str(s3_port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url == f"http://127.0.0.1:{port}", proc.stderr
        with RemoteClient(url) as anyone:
            root_token = anyone.auth.activate()
        with RemoteClient(url, root_token) as root:
            root.repos.create("training")
            root.files.put("training@master:/a.csv", b"x,y\n")
            root.auth.set_role("repo", "training", "ann", "repoReader")
            root_key, root_secret = root.auth.create_s3_key("root")
        made = subprocess.run(
            [sys.executable, "-c", "from cairn.cli import main; main()", "create", "s3-key", "ann"],
            env={**env, "CAIRN_URL": url, "CAIRN_TOKEN": root_token},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert made.returncode == 0, made.stderr
        key_id, secret = made.stdout.split()

        def s3(key: str, secret: str) -> object:
            return boto3.client(
                "s3",
                endpoint_url=f"http://127.0.0.1:{s3_port}",
                aws_access_key_id=key,
                aws_secret_access_key=secret,
                region_name="us-east-1",
                config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
            )

        ann, admin = s3(key_id, secret), s3(root_key.id, root_secret)
        assert ann.get_object(Bucket="training", Key="master/a.csv")["Body"].read() == b"x,y\n"  # type: ignore[attr-defined]
        try:
            ann.put_object(Bucket="training", Key="master/b.csv", Body=b"no")  # type: ignore[attr-defined]
            raise AssertionError("a reader's key wrote")
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "AccessDenied"
        admin.put_object(Bucket="training", Key="master/b.csv", Body=b"yes")  # type: ignore[attr-defined]
        with RemoteClient(url, root_token) as root:
            assert root.files.read("training@master:/b.csv") == b"yes"
            assert {k.subject for k in root.auth.list_s3_keys()} == {"root", "ann"}
        revoked = subprocess.run(
            [sys.executable, "-c", "from cairn.cli import main; main()"]
            + ["revoke", "s3-key", key_id],
            env={**env, "CAIRN_URL": url, "CAIRN_TOKEN": root_token},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert revoked.returncode == 0, revoked.stderr
        try:
            ann.get_object(Bucket="training", Key="master/a.csv")  # type: ignore[attr-defined]
            raise AssertionError("a revoked key read")
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "InvalidAccessKeyId"
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
