"""Tests of cairn.pipelines.daemons: spout and service pipelines as long-lived processes,
supervised round by round as ``cairn run`` does. Every test is bounded in time and stops
the processes it started (the ``client`` fixture stops them whatever happens)."""

from __future__ import annotations

import io
import os
import socket
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cairn import Client
from cairn.data import DataError, NotFound, Ref
from cairn.pipelines import SpecError, load_specs

BIN = str(Path(sys.executable).parent)


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.setenv("CAIRN_SANDBOX", "none")
    monkeypatch.delenv("CAIRN_URL", raising=False)
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    found = Client(tmp_path / "store", auto_run=False)
    try:
        yield found
    finally:
        found.daemons.stop()
        found.data.catalog.dispose()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def until(check: Callable[[], Any], client: Client, seconds: float = 15.0) -> Any:
    """Run rounds (daemons, then pipelines) until ``check()`` is truthy; its value."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        client.daemons.sync()
        client.run_pipelines()
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not reached in {seconds} s; log: {logs(client)}")


def logs(client: Client) -> str:
    folder = client.daemons.folder
    return "".join(p.read_text() for p in folder.glob("*.log")) if folder.exists() else ""


def create(client: Client, tmp_path: Path, doc: str) -> None:
    client._pipelines.create_pipelines(load_specs(doc), tmp_path)


def files(client: Client, repo: str) -> dict[str, bytes]:
    """path -> bytes at the head of master ({} before its first commit)."""
    try:
        commit = client.data.resolve(Ref(repo, "master"))
    except NotFound:
        return {}
    return {
        path: b"".join(client.data.chunks.read(entry.content))
        for path, entry in client.data.trees.walk(commit.tree)
    }


# -- spec ----------------------------------------------------------------------------------
def test_a_spout_has_no_input_and_other_pipelines_need_one() -> None:
    [spout] = load_specs('{"pipeline": {"name": "s"}, "transform": {"cmd": ["true"]}, "spout": {}}')
    assert spout.spout is not None and spout.input is None and spout.pfs_inputs() == []
    with pytest.raises(SpecError) as both:
        load_specs(
            '{"pipeline": {"name": "s"}, "transform": {"cmd": ["true"]}, "spout": {},'
            ' "input": {"pfs": {"repo": "a", "glob": "/"}}}'
        )
    assert both.value.field == "input"
    with pytest.raises(SpecError) as neither:
        load_specs('{"pipeline": {"name": "s"}, "transform": {"cmd": ["true"]}}')
    assert neither.value.field == "input"


def test_a_service_spec_loads_with_pachyderms_fields() -> None:
    [spec] = load_specs(
        "pipeline: {name: web}\ntransform: {cmd: ['true']}\n"
        "input: {pfs: {repo: a, glob: /}}\n"
        "service: {internal_port: 8000, external_port: 30080, type: NodePort}\n"
    )
    assert spec.service is not None
    assert (spec.service.internal_port, spec.service.external_port) == (8000, 30080)
    assert spec.long_lived


# -- spouts --------------------------------------------------------------------------------
SPOUT = """
pipeline: {name: ticks}
spout: {}
transform:
  cmd:
    - bash
    - -c
    - |
      echo "$PPS_PIPELINE_NAME" |
        cairn put file "$CAIRN_OUTPUT_REPO@$CAIRN_OUTPUT_BRANCH:/run-$$" -f - && exit 3
---
pipeline: {name: copy}
input: {pfs: {repo: ticks, glob: /}}
transform: {cmd: [bash, -c, 'cp -r "$CAIRN_PFS/ticks/." "$CAIRN_PFS/out/"']}
"""


def test_a_spout_writes_its_output_through_the_cli_and_is_restarted_when_it_dies(
    client: Client, tmp_path: Path
) -> None:
    create(client, tmp_path, SPOUT)
    assert client.data.inspect_repo("ticks").type == "spout"

    # each run of the process writes one file, then exits 3: two files mean a restart
    written = until(lambda: len(files(client, "ticks")) >= 2 and files(client, "ticks"), client)

    assert set(written.values()) == {b"ticks\n"}
    until(lambda: files(client, "copy") == files(client, "ticks"), client)
    with pytest.raises(DataError):  # other pipelines' outputs still take no puts
        client.data.put_files("copy", None, [("x", io.BytesIO(b"x"))])


def test_a_spout_stops_when_its_pipeline_is_stopped_or_deleted(
    client: Client, tmp_path: Path
) -> None:
    create(client, tmp_path, "pipeline: {name: s}\nspout: {}\ntransform: {cmd: [sleep, '60']}")
    client.daemons.sync()
    pid = client.daemons.pids()["s"]
    assert alive(pid)

    client._pipelines.set_state("s", "paused")
    client.daemons.sync()
    assert not alive(pid) and client.daemons.pids() == {}

    client._pipelines.set_state("s", "running")
    client.daemons.sync()
    pid = client.daemons.pids()["s"]
    client._pipelines.delete_pipeline("s")
    client.daemons.sync()
    assert not alive(pid) and client.daemons.pids() == {}


def test_a_spout_that_cannot_start_is_retried_and_the_runner_goes_on(
    client: Client, tmp_path: Path
) -> None:
    create(client, tmp_path, "pipeline: {name: s}\nspout: {}\ntransform: {cmd: [./missing]}")

    client.daemons.sync()
    client.daemons.sync()

    assert client.daemons.pids() == {}
    assert "cannot start" in logs(client)


def test_two_runners_of_one_store_run_one_spout_and_the_second_takes_over(
    client: Client, tmp_path: Path
) -> None:
    create(client, tmp_path, "pipeline: {name: s}\nspout: {}\ntransform: {cmd: [sleep, '60']}")
    other = Client(client.home, auto_run=False)
    try:
        client.daemons.sync()
        other.daemons.sync()
        assert list(client.daemons.pids()) == ["s"] and other.daemons.pids() == {}

        client.daemons.stop()
        other.daemons.sync()

        assert list(other.daemons.pids()) == ["s"]
    finally:
        other.daemons.stop()
        other.data.catalog.dispose()


def test_the_runner_stops_its_spouts_when_it_ends(client: Client, tmp_path: Path) -> None:
    create(client, tmp_path, "pipeline: {name: s}\nspout: {}\ntransform: {cmd: [sleep, '60']}")
    rounds = []

    def stop_after_one_round() -> None:
        rounds.append(client.daemons.pids()["s"])
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        client.run_forever(on_round=stop_after_one_round)

    assert not alive(rounds[0])


# -- services ------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetch(port: int, path: str) -> bytes | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return bytes(response.read())
    except OSError:
        return None


def test_a_service_serves_its_whole_input_on_the_external_port_and_follows_new_commits(
    client: Client, tmp_path: Path
) -> None:
    internal, external = free_port(), free_port()
    client.data.create_repo("site")
    client.data.put_files(
        "site", None, [("index.html", io.BytesIO(b"v1")), ("a/b.txt", io.BytesIO(b"b"))]
    )
    create(
        client,
        tmp_path,
        f"""
pipeline: {{name: web}}
input: {{pfs: {{repo: site, glob: /*}}}}
transform:
  # the whole input is at $CAIRN_PFS/site, also named by $site as in Pachyderm
  cmd: [bash, -c, 'exec python3 -m http.server {internal} --bind 127.0.0.1 --directory "$site"']
service: {{internal_port: {internal}, external_port: {external}, type: NodePort}}
""",
    )
    assert until(lambda: fetch(external, "/index.html"), client) == b"v1"
    assert fetch(external, "/a/b.txt") == b"b"
    first = client.daemons.pids()["web"]

    client.data.put_files("site", None, [("index.html", io.BytesIO(b"v2"))])

    assert until(lambda: fetch(external, "/index.html") == b"v2", client)
    assert not alive(first)
