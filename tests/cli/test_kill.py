"""A put killed half way (SIGKILL, no chance to clean up) leaves no partial commit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import CAIRN, Cairn

PIECE = 256 * 1024
TOTAL = 20 * 1024 * 1024


def chunk_count(cairn: Cairn) -> int:
    root = cairn.home / "objects" / "chunks"
    return sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def kill_put_midway(cairn: Cairn, ref: str) -> None:
    """Stream ~20 MB of random bytes into ``cairn put file REF -f -`` slowly and SIGKILL it
    once it has stored chunks of the stream but before the stream ends."""
    chunks_before = chunk_count(cairn)
    proc = subprocess.Popen(
        [CAIRN, "put", "file", ref, "-f", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=cairn.root,
        env=cairn.env,
    )
    sent = 0
    try:
        deadline = time.monotonic() + 60
        while sent < TOTAL - 4 * PIECE:
            assert proc.stdin is not None
            proc.stdin.write(os.urandom(PIECE))
            proc.stdin.flush()
            sent += PIECE
            time.sleep(0.005)
            if sent >= TOTAL // 2 and chunk_count(cairn) > chunks_before:
                break
            assert time.monotonic() < deadline, "the put stored no chunk in time"
        assert chunk_count(cairn) > chunks_before, "kill before any chunk was stored"
        assert proc.poll() is None, "the put ended before it was killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        try:
            assert proc.stdin is not None
            proc.stdin.close()
        except BrokenPipeError:
            pass
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def state(cairn: Cairn, repo: str) -> tuple[list, list]:
    commits = [(c["id"], c["state"], c["tree"]) for c in cairn.raw("list", "commit", repo)]
    files = [(f["path"], f["hash"]) for f in cairn.raw("list", "file", f"{repo}@master:/")]
    return commits, files


@pytest.mark.embedded_only(
    "kills the process that writes the chunks, which is the server when remote"
)
def test_killed_put_leaves_no_partial_commit(cairn: Cairn, tmp_path: Path) -> None:
    cairn("create", "repo", "big")
    cairn.put("big@master:/small.txt", "small")
    before = state(cairn, "big")

    kill_put_midway(cairn, "big@master:/big.bin")

    assert state(cairn, "big") == before
    cairn.fails("get", "file", "big@master:/big.bin")
    data = os.urandom(3 * 1024 * 1024)
    cairn.put("big@master:/big.bin", data)
    assert cairn.get("big@master:/big.bin") == data
    assert cairn.get("big@master:/small.txt") == b"small"
    assert len(cairn.raw("list", "commit", "big")) == 2


@pytest.mark.embedded_only(
    "kills the process that writes the chunks, which is the server when remote"
)
def test_killed_put_into_open_commit_leaves_it_as_it_was(cairn: Cairn) -> None:
    cairn("create", "repo", "big")
    opened = cairn("start", "commit", "big@master").stdout.strip()
    cairn.put("big@master:/small.txt", "small")
    before = state(cairn, "big")

    kill_put_midway(cairn, "big@master:/big.bin")

    assert state(cairn, "big") == before
    cairn("finish", "commit", "big@master")
    commits = cairn.raw("list", "commit", "big")
    assert [(c["id"], c["state"]) for c in commits] == [(opened, "finished")]
    files = cairn.raw("list", "file", "big@master:/")
    assert [f["path"] for f in files] == ["/small.txt"]
    assert cairn.get("big@master:/small.txt") == b"small"


@pytest.mark.embedded_only(
    "kills the CLI process running the job; remote, jobs run in the server's worker"
)
def test_a_killed_job_leaves_no_scratch_folder_after_the_next_run(cairn: Cairn) -> None:
    from cairn.client import Client
    from cairn.pipelines import load_specs

    spec = {
        "pipeline": {"name": "slow"},
        "transform": {"cmd": ["bash", "-c", 'touch "$CAIRN_PFS/out/started"; sleep 60']},
        "input": {"pfs": {"repo": "in", "glob": "/*"}},
    }
    setup = Client(cairn.home, auto_run=False)  # set-up only: each CLI call starts Python
    setup.data.create_repo("in")
    setup.pipelines.create_pipeline(load_specs(json.dumps(spec))[0], cairn.root)
    cairn.write("a.txt", "a")
    work = cairn.home / "work"
    # The put runs the job in its own process; kill that process mid-datum.
    proc = subprocess.Popen(
        [CAIRN, "put", "file", "in@master:/a.txt", "-f", "a.txt"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=cairn.root,
        env=cairn.env,
    )
    try:
        deadline = time.monotonic() + 60
        while not list(work.glob("slow/*/*/pfs/out/started")):
            assert proc.poll() is None, "the put ended before its job started the datum"
            assert time.monotonic() < deadline, "the datum did not start in time"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert list(work.glob("slow/*/*"))  # the scratch folder the killed job left
    setup.pipelines.set_state("slow", "paused")  # the next run must not start it again

    cairn("run", "--once")

    assert list(work.glob("slow/*/*")) == []
    assert [job["state"] for job in cairn.jobs("slow")] == ["killed"]
