"""Crash consistency beyond puts: ``cairn gc``, a running job of 200 datums, the
prediction log's flush, and a ``cairn server`` killed mid-upload. SIGKILL at seeded
random moments; after each kill fsck is clean, finished commits read back as written,
and running the work again finishes it with no manual step."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from cairn.client import Client
from cairn.serving.predlog import read_records

from .conftest import SEED
from .harness import Runner, Tally, commit_digests, fsck_problems

GC_TRIALS = 14
JOB_TRIALS = 12
PREDLOG_TRIALS = 20
SERVER_TRIALS = 6
DATUMS = 200


def finished_digests(home: Path, repos: list[str]) -> dict[tuple[str, str], dict[str, str]]:
    client = Client(home, auto_run=False)
    try:
        data = client.data
        return {
            (repo, c.id): commit_digests(data, repo, c.id)
            for repo in repos
            for c in data.list_commits(repo)
            if c.state == "finished"
        }
    finally:
        client.data.catalog.dispose()


def check(home: Path, known: dict[tuple[str, str], dict[str, str]], tally: Tally) -> None:
    """fsck, then each finished commit in ``known`` still reads back as recorded."""
    client = Client(home, auto_run=False)
    try:
        problems = fsck_problems(client.data)
        if problems:
            tally.corrupt += 1
            tally.notes.append(f"fsck: {problems[:3]}")
        for (repo, commit), want in known.items():
            if commit_digests(client.data, repo, commit) != want:
                tally.corrupt += 1
                tally.notes.append(f"{repo}@{commit} changed")
    finally:
        client.data.catalog.dispose()


def test_gc_killed_at_random_moments(runner: Runner, tally: Tally) -> None:
    rng = random.Random(SEED + 2)
    runner.ok("init")
    runner.ok("create", "repo", "keep")

    def make_garbage() -> None:
        # live data (a new commit of keep) and garbage (a repo of 100 files, deleted)
        for name in ("keep", "junk"):
            folder = runner.cwd / name
            folder.mkdir(exist_ok=True)
            for i in range(100):
                (folder / f"f{i}").write_bytes(rng.randbytes(rng.randint(1, 3000)))
        runner.ok("create", "repo", "junk")
        runner.ok("put", "file", "-r", "junk@master:/", "-f", "junk")
        runner.ok("put", "file", "-r", "keep@master:/", "-f", "keep")
        runner.ok("delete", "repo", "junk")

    # Kill moments are drawn within how long a whole gc of this work takes on this machine
    # (measured once, unkilled), so a fast machine is not just killing finished runs.
    make_garbage()
    whole = runner.run("gc", "--grace", "0")
    assert whole.exitcode == 0, whole.output
    for trial in range(GC_TRIALS):
        make_garbage()
        known = finished_digests(runner.home, ["keep"])
        full = runner.run("gc", "--grace", "0", kill_after=rng.uniform(0.0, whole.seconds))
        tally.trials += 1
        tally.killed += full.killed
        check(runner.home, known, tally)
        again = runner.run("gc", "--grace", "0")  # the next collection finishes the work
        if again.exitcode != 0:
            tally.stuck += 1
            tally.notes.append(f"trial {trial}: gc after the kill: {again.output[-300:]}")
    check(runner.home, known, tally)
    assert tally.killed >= GC_TRIALS // 3, tally.line()
    assert (tally.lost, tally.corrupt, tally.stuck) == (0, 0, 0), tally.notes


def test_a_job_of_200_datums_killed_at_random_moments(runner: Runner, tally: Tally) -> None:
    rng = random.Random(SEED + 3)
    runner.ok("init")
    runner.ok("create", "repo", "in")
    folder = runner.cwd / "in"
    folder.mkdir()
    for i in range(DATUMS):
        (folder / f"x{i:03d}").write_text(f"{i} {rng.random()}\n")
    runner.ok("put", "file", "-r", "in@master:/", "-f", "in", "--no-wait")
    spec = {
        "pipeline": {"name": "up"},
        "transform": {
            "cmd": [
                "sh",
                "-c",
                'f=$(ls "$CAIRN_PFS"/in); tr a-z A-Z < "$CAIRN_PFS/in/$f" > "$CAIRN_PFS/out/$f"',
            ]
        },
        "input": {"pfs": {"repo": "in", "glob": "/*"}},
        "parallelism_spec": {"constant": 2},
    }
    (runner.cwd / "up.json").write_text(json.dumps(spec))
    auto = {"CAIRN_AUTO_RUN": "0"}
    runner.ok("create", "pipeline", "-f", "up.json", env=auto)
    first = runner.run("run", "--once", "--quiet")
    assert first.exitcode == 0, first.output
    span = first.seconds
    client = Client(runner.home, auto_run=False)
    try:
        assert [j.state for j in client.jobs.list("up")] == ["success"]
    finally:
        client.data.catalog.dispose()

    def expected() -> dict[str, str]:
        import blake3

        return {
            p.name: blake3.blake3(p.read_text().upper().encode()).hexdigest()
            for p in folder.iterdir()
        }

    known = finished_digests(runner.home, ["in", "up"])
    for trial in range(JOB_TRIALS):
        changed = rng.sample(range(DATUMS), 60)
        for i in changed:
            (folder / f"x{i:03d}").write_text(f"{i} {rng.random()} {trial}\n")
        runner.ok("put", "file", "-r", "in@master:/", "-f", "in", env=auto)
        done = runner.run("run", "--once", "--quiet", kill_after=rng.uniform(0.0, span * 0.5))
        tally.trials += 1
        tally.killed += done.killed
        check(runner.home, known, tally)
        # the next runner picks the work up: no job left running, the output current
        again = runner.run("run", "--once", "--quiet", timeout=120)
        if again.exitcode != 0:
            tally.stuck += 1
            tally.notes.append(f"trial {trial}: run after the kill: {again.output[-400:]}")
        client = Client(runner.home, auto_run=False)
        try:
            out = client.data.inspect_commit("up", "master")
            got = commit_digests(client.data, "up", out.id)
            stale = [j for j in client.jobs.list("up") if j.state == "running"]
        finally:
            client.data.catalog.dispose()
        if stale:
            tally.stuck += 1
            tally.notes.append(f"trial {trial}: jobs left {[(j.id, j.state) for j in stale]}")
        if {k.lstrip("/"): v for k, v in got.items()} != expected():
            tally.lost += 1
            tally.notes.append(f"trial {trial}: up@master is not the transform of in@master")
        known = finished_digests(runner.home, ["in", "up"])
    assert tally.killed >= JOB_TRIALS // 3, tally.line()
    assert (tally.lost, tally.corrupt, tally.stuck) == (0, 0, 0), tally.notes


def test_prediction_log_flush_killed_at_random_moments(runner: Runner, tally: Tally) -> None:
    rng = random.Random(SEED + 4)
    runner.ok("init")
    home = str(runner.home)
    acked: list[str] = []
    first = runner.run(home, "4", "25", call="tests.campaign.workloads:predlog_writer")
    assert first.exitcode == 0, first.output
    span = first.seconds
    acked += [r for line in first.output.splitlines() for r in json.loads(line)]
    for trial in range(PREDLOG_TRIALS):
        known = finished_digests(runner.home, ["plog"])
        done = runner.run(
            home,
            "4",
            "25",
            call="tests.campaign.workloads:predlog_writer",
            kill_after=rng.uniform(0.0, span * 0.7),
        )
        tally.trials += 1
        tally.killed += done.killed
        for line in done.output.splitlines():
            if line.startswith("["):
                acked += json.loads(line)
        check(runner.home, known, tally)
        client = Client(runner.home, auto_run=False)
        try:
            logged = {r["request_id"] for r in read_records(client.data, "plog")}
        finally:
            client.data.catalog.dispose()
        missing = set(acked) - logged
        if missing:
            tally.lost += 1
            tally.notes.append(f"trial {trial}: {len(missing)} acknowledged record(s) lost")
    # a new writer after all those kills works (nothing stuck)
    last = runner.run(home, "1", "5", call="tests.campaign.workloads:predlog_writer")
    tally.stuck += last.exitcode != 0
    assert tally.killed >= PREDLOG_TRIALS // 3, tally.line()
    assert (tally.lost, tally.corrupt, tally.stuck) == (0, 0, 0), tally.notes


def start_server(runner: Runner, port: int) -> subprocess.Popen[bytes]:
    """The real ``cairn server`` over the runner's store, without its pipeline worker."""
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("cairn")),
            "server",
            "--port",
            str(port),
            "--no-worker",
        ],
        env={**runner.env},
        cwd=runner.cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).status_code < 500:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    raise AssertionError("the server did not start")


def test_server_killed_mid_upload(runner: Runner, tally: Tally) -> None:
    from tests.team_server import free_port

    rng = random.Random(SEED + 5)
    runner.ok("init")
    runner.ok("create", "repo", "up")
    big = runner.cwd / "big.bin"
    big.write_bytes(b"seed")
    runner.ok("put", "file", "up@master:/seed", "-f", "big.bin")
    # Kill moments are drawn within how long one whole remote put takes on this machine
    # (measured once, unkilled), so a fast machine is not just killing idle servers.
    big.write_bytes(rng.randbytes(8 << 20))
    port = free_port()
    server = start_server(runner, port)
    try:
        whole = runner.run(
            "put",
            "file",
            "up@master:/calibrate.bin",
            "-f",
            "big.bin",
            env={"CAIRN_URL": f"http://127.0.0.1:{port}"},
        )
    finally:
        server.terminate()
        server.wait(30)
    assert whole.exitcode == 0, whole.output
    for trial in range(SERVER_TRIALS):
        body = rng.randbytes(8 << 20)
        big.write_bytes(body)
        known = finished_digests(runner.home, ["up"])
        port = free_port()
        server = start_server(runner, port)
        url = {"CAIRN_URL": f"http://127.0.0.1:{port}"}
        timer = threading.Timer(
            rng.uniform(0.0, whole.seconds), lambda s=server: s.send_signal(signal.SIGKILL)
        )
        timer.start()
        put = runner.run(
            "put", "file", f"up@master:/f{trial}.bin", "-f", "big.bin", env=url, timeout=90
        )
        timer.join()
        server.wait(30)
        tally.trials += 1
        tally.killed += server.returncode == -signal.SIGKILL and put.exitcode != 0
        if put.exitcode != 0 and ("Traceback" in put.output or "error:" not in put.output):
            tally.notes.append(f"trial {trial}: the client's failure: {put.output[-300:]}")
            tally.stuck += 1
        check(runner.home, known, tally)
        client = Client(runner.home, auto_run=False)
        try:
            head = client.data.inspect_commit("up", "master")
            # the tree's stored paths have no leading slash
            has = f"f{trial}.bin" in commit_digests(client.data, "up", head.id)
        finally:
            client.data.catalog.dispose()
        if put.exitcode == 0 and not has:
            tally.lost += 1
            tally.notes.append(f"trial {trial}: an acknowledged put is not in up@master")
        if head.state != "finished":
            tally.stuck += 1
        # the writer retries against a server started again
        port = free_port()
        url = {"CAIRN_URL": f"http://127.0.0.1:{port}"}
        server = start_server(runner, port)
        try:
            again = runner.run("put", "file", f"up@master:/f{trial}.bin", "-f", "big.bin", env=url)
        finally:
            server.terminate()
            server.wait(30)
        if again.exitcode != 0:
            tally.stuck += 1
            tally.notes.append(f"trial {trial}: retry failed: {again.output[-300:]}")
    check(runner.home, finished_digests(runner.home, ["up"]), tally)
    assert tally.killed >= SERVER_TRIALS // 3, tally.line()
    assert (tally.lost, tally.corrupt, tally.stuck) == (0, 0, 0), tally.notes
