"""``cairn server``, ``cairn version``, saved contexts and the commands that need the store
in their own process, through the console script."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from tests.team_server import free_port, team_server

from .conftest import CAIRN, Cairn


def _start_server(cairn: Cairn, *args: str) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in cairn.env.items() if k != "CAIRN_URL"}
    proc = subprocess.Popen(
        [CAIRN, "server", "--port", str(free_port()), *args],
        cwd=cairn.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    return proc, url


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    _, stderr = proc.communicate(timeout=60)
    return stderr


@pytest.mark.embedded_only("starts its own server")
def test_server_serves_the_store_to_clients_that_name_its_url(cairn: Cairn) -> None:
    proc, url = _start_server(cairn)
    try:
        assert url.startswith("http://127.0.0.1:")
        deadline = time.monotonic() + 30
        while cairn("list", "repo", check=False, env={"CAIRN_URL": url}).returncode:
            assert time.monotonic() < deadline, "the server did not answer"
            time.sleep(0.2)
        cairn("create", "repo", "images", env={"CAIRN_URL": url})
        cairn("put", "file", "images@master:/a.txt", "-f", "-", input="hi", env={"CAIRN_URL": url})
    finally:
        stderr = _stop(proc)

    assert "warning" not in stderr
    # the same store, embedded now that the server is gone
    assert cairn.get("images@master:/a.txt") == b"hi"


@pytest.mark.embedded_only("starts its own server")
def test_server_beyond_loopback_without_tls_warns(cairn: Cairn) -> None:
    proc, url = _start_server(cairn, "--host", "0.0.0.0", "--no-worker")
    stderr = _stop(proc)

    assert url.startswith("http://0.0.0.0:")
    assert "without TLS" in stderr


def test_version_names_the_server_when_there_is_one(cairn: Cairn, cairn_mode: str) -> None:
    found = cairn.raw("version")

    assert found["client"]
    if cairn_mode == "remote":
        assert found == {"client": found["client"], "server": found["client"], "url": cairn.url}
    else:
        assert found["server"] is None


def test_run_refuses_against_a_server(cairn: Cairn, cairn_mode: str) -> None:
    # (cairn serve works against a server: tests/server/test_serve_remote.py)
    if cairn_mode == "embedded":
        cairn("init")  # run reads a store; only init and writes create one
        assert cairn("run", "--once").returncode == 0
        return
    refused = [cairn.fails("run", "--once")]

    assert all(cairn.url in proc.stderr for proc in refused)
    assert "Traceback" not in "".join(proc.stderr for proc in refused)


@pytest.mark.embedded_only("the context names its own server")
def test_a_saved_context_chooses_the_server_until_it_is_deleted(
    cairn: Cairn, tmp_path: Path
) -> None:
    served = tmp_path / "served"
    env = {"CAIRN_HOME": ""}  # no store named: the context decides
    cairn("init")  # the store CAIRN_HOME names (a read never creates one)
    with team_server(served / "store", worker=False) as url:
        cairn("config", "set", "context", "team", "--url", url)
        cairn("config", "use", "context", "team")
        cairn("create", "repo", "remote-one", env=env)
        listed = cairn.raw("config", "list", "context")
        through_context = [r["name"] for r in cairn.raw("list", "repo", env=env)]
        # CAIRN_HOME names a store: it beats the saved context
        here = [r["name"] for r in cairn.raw("list", "repo")]
        cairn("config", "delete", "context", "team")

    assert listed == [{"name": "team", "url": url, "active": True}]
    assert through_context == ["remote-one"]
    assert here == []
    contexts = cairn.root / "config" / "contexts.toml"
    assert contexts.stat().st_mode & 0o777 == 0o600
    assert cairn.raw("config", "list", "context") == []
    cairn.fails("config", "use", "context", "team")


@pytest.mark.embedded_only("about choosing a server")
def test_an_unreachable_or_malformed_url_is_one_error_line(cairn: Cairn) -> None:
    unreachable = cairn.fails("list", "repo", env={"CAIRN_URL": f"http://127.0.0.1:{free_port()}"})
    malformed = cairn.fails("list", "repo", env={"CAIRN_URL": "ftp://somewhere"})

    assert "cannot reach cairn server" in unreachable.stderr
    assert "CAIRN_URL" in malformed.stderr
    assert "Traceback" not in unreachable.stderr + malformed.stderr
    cairn("init")  # a read never creates the store
    assert json.loads(cairn("list", "repo", "--raw").stdout) == []
    assert not os.path.exists(cairn.root / "config")


@pytest.mark.embedded_only("starts its own server")
def test_server_refuses_an_unknown_executor_before_serving(cairn: Cairn) -> None:
    env = {k: v for k, v in cairn.env.items() if k != "CAIRN_URL"}
    done = subprocess.run(
        [CAIRN, "server", "--port", str(free_port()), "--executor", "dask://x:8786"],
        cwd=cairn.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--executor" in done.stderr and not done.stdout
