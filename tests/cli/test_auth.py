"""``cairn auth`` and tokens through the console script, against a real ``cairn server``
(issue 11, section 3): activate, tokens printed once on the last line, roles that a
reader meets as a one-line 403 naming the role, revocation at once, login into a context."""

from __future__ import annotations

import json
import time

import pytest

from .conftest import Cairn
from .test_server import _start_server, _stop


@pytest.mark.embedded_only("starts its own server")
def test_a_team_with_tokens_and_roles(cairn: Cairn) -> None:
    proc, url = _start_server(cairn, "--no-worker")
    try:
        deadline = time.monotonic() + 120  # a loaded 2-core CI machine starts it slowly
        while (probe := cairn("version", check=False, env={"CAIRN_URL": url})).returncode:
            assert time.monotonic() < deadline, f"the server did not answer: {probe.stderr}"
            time.sleep(0.2)
        cairn("config", "set", "context", "team", "--url", url, "--use")
        # The fixture names its store in CAIRN_HOME, which beats a context: unset it here.
        ctx = {"CAIRN_HOME": ""}
        activated = cairn("auth", "activate", env=ctx)
        root_token = activated.stdout.strip().splitlines()[-1]
        assert root_token.startswith("cairn_")
        assert "saved in this context" in activated.stderr
        # The saved token works: the context holds it now.
        cairn("create", "repo", "images", env=ctx)
        cairn("put", "file", "images@master:/a.txt", "-f", "-", input="hello", env=ctx)
        created = cairn("create", "token", "alice", "--ttl", "1d", env=ctx)
        alice = created.stdout.strip().splitlines()[-1]
        assert alice.startswith("cairn_") and alice != root_token
        assert alice not in created.stderr  # printed once
        cairn("auth", "set", "repo", "images", "repoReader", "alice", env=ctx)
        assert "alice" in cairn("auth", "get", "repo", "images", env=ctx).stdout

        as_alice = {"CAIRN_URL": url, "CAIRN_TOKEN": alice}
        assert cairn("get", "file", "images@master:/a.txt", env=as_alice).stdout == "hello"
        assert "alice" in cairn("auth", "whoami", env=as_alice).stdout
        assert "repoReader" in cairn("auth", "check", "repo", "images", env=as_alice).stdout
        refused = cairn(
            "put", "file", "images@master:/b.txt", "-f", "-", input="x", env=as_alice, check=False
        )
        assert refused.returncode == 1
        assert "repoWriter" in refused.stderr and "Traceback" not in refused.stderr
        listed = cairn("list", "token", "--raw", env=ctx)
        [alice_id] = [t["id"] for t in json.loads(listed.stdout) if t["subject"] == "alice"]
        assert alice not in listed.stdout  # never the text again
        cairn("revoke", "token", alice_id, env=ctx)
        gone = cairn("list", "repo", env=as_alice, check=False)
        assert gone.returncode == 1 and "token" in gone.stderr

        # No token at all: refused, and told how to get one.
        anonymous = cairn("list", "repo", env={"CAIRN_URL": url, "CAIRN_CONTEXT": ""}, check=False)
        assert anonymous.returncode == 1
        # auth login saves a token into the context after checking it with the server.
        cairn("auth", "logout", env=ctx)
        assert cairn("list", "repo", check=False, env=ctx).returncode == 1
        cairn("auth", "login", input=root_token + "\n", env=ctx)
        assert "images" in cairn("list", "repo", env=ctx).stdout
    finally:
        stderr = _stop(proc)
    assert root_token not in stderr and alice not in stderr  # tokens are never logged
