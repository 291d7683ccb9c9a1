"""``cairn s3-gateway``: the real command in its own process over a fresh embedded
store, driven by boto3."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

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
        + ["s3-gateway", "--port", str(port)],
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
