"""End-to-end tests of the failures a new user hit (issue 18, section 1): each test is one
finding, run as the user ran it, through the real ``cairn`` command."""

from __future__ import annotations

import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
from tests.team_server import free_port

from . import test_deploy
from .conftest import CAIRN, Cairn, pfs, pipeline, single_error


# -- a read command does not create a store ---------------------------------------------
@pytest.mark.embedded_only("a server's store exists already; cairn init needs the store here")
def test_read_without_a_store_fails_naming_where_and_init_creates_one(cairn: Cairn) -> None:
    for command in (("list", "repo"), ("list", "pipeline"), ("logs", "-p", "x")):
        proc = cairn.fails(*command)
        single_error(proc)
        assert str(cairn.home) in proc.stderr
    assert not cairn.home.exists()

    assert str(cairn.home) in cairn("init").stdout
    assert (cairn.home / "catalog.db").exists()
    assert cairn.raw("list", "repo") == []
    cairn("init")  # again: says it exists, changes nothing


@pytest.mark.embedded_only("a server's store exists already")
def test_a_write_command_still_creates_the_store(cairn: Cairn) -> None:
    cairn("create", "repo", "images")
    assert [r["name"] for r in cairn.raw("list", "repo")] == ["images"]


# -- put file -r --delete mirrors a folder ------------------------------------------------
def _paths(cairn: Cairn, ref: str) -> list[str]:
    return sorted(f["path"] for f in cairn.raw("glob", "file", ref) if f["type"] == "file")


def test_put_folder_again_merges_and_delete_mirrors(cairn: Cairn) -> None:
    cairn.write("data/a.txt", "a")
    cairn.write("data/sub/b.txt", "b")
    cairn.write("data/c.txt", "c")
    cairn.write("other.txt", "o")
    cairn("create", "repo", "raw")
    cairn("put", "file", "raw@master:/other.txt", "-f", "other.txt")
    cairn("put", "file", "raw@master:/d", "-r", "-f", "data")
    (cairn.root / "data/c.txt").unlink()
    (cairn.root / "data/sub/b.txt").unlink()
    cairn.write("data/z.txt", "z")

    cairn("put", "file", "raw@master:/d", "-r", "-f", "data")  # merges: nothing leaves
    assert _paths(cairn, "raw@master:/**") == [
        "/d/a.txt",
        "/d/c.txt",
        "/d/sub/b.txt",
        "/d/z.txt",
        "/other.txt",
    ]
    before = len(cairn.raw("list", "commit", "raw@master"))

    cairn("put", "file", "raw@master:/d", "-r", "--delete", "-f", "data")

    assert _paths(cairn, "raw@master:/**") == ["/d/a.txt", "/d/z.txt", "/other.txt"]
    assert len(cairn.raw("list", "commit", "raw@master")) == before + 1  # one commit
    assert cairn.get("raw@master:/d/z.txt") == b"z"


def test_put_delete_needs_folders(cairn: Cairn) -> None:
    cairn.write("one.txt", "1")
    cairn("create", "repo", "raw")
    proc = cairn("put", "file", "raw@master:/d", "--delete", "-f", "one.txt", check=False)
    assert proc.returncode == 2  # a usage error, nothing written
    assert "not a folder: one.txt" in proc.stderr
    assert cairn.raw("list", "commit", "raw") == []


# -- cairn serve: an unset alias, and NAME/latest -----------------------------------------
iris = test_deploy.iris  # the fixture: model iris, versions 1 and 2


def _ping(url: str, wait: float = 30) -> int:
    """The status of GET /ping once the server listens (it prints its URL just before)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=10) as reply:
                return int(reply.status)
        except urllib.error.URLError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.embedded_only("cairn serve needs the store in its process")
def test_serve_an_unset_alias_names_the_command_that_sets_it(iris: Cairn) -> None:
    proc = iris.fails("serve", "iris@prod", "--port", "1")
    single_error(proc)
    assert "cairn set alias iris prod" in proc.stderr
    assert iris.raw("list", "deployment") == []  # nothing made


@pytest.mark.embedded_only("cairn serve needs the store in its process")
def test_serve_latest_serves_the_latest_version(iris: Cairn) -> None:
    latest = iris.raw("inspect", "model", "iris/latest")["version"]
    proc = subprocess.Popen(
        [CAIRN, "serve", "iris/latest", "--port", str(free_port()), "--no-log"],
        cwd=iris.root,
        env=iris.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://"), proc.stderr.read() if proc.stderr else ""
        assert _ping(url) == 200
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=60)
    assert f"{latest} 100%" in stderr
    policy = iris.raw("inspect", "deployment", "iris")["policy"]
    assert [r["target"] for r in policy["routes"]] == [str(latest)]


# -- a failed job fails the command that ran it --------------------------------------------
def test_put_and_create_pipeline_exit_1_naming_the_failed_job(cairn: Cairn) -> None:
    cairn("create", "repo", "raw")
    cairn.put("raw@master:/a.txt", "a")
    spec = cairn.spec(pipeline("breaks", pfs("raw"), ["bash", "-c", "exit 3"]))

    proc = cairn.fails("create", "pipeline", "-f", str(spec))
    single_error(proc)
    assert "breaks@" in proc.stderr and "failure" in proc.stderr
    assert [p["name"] for p in cairn.raw("list", "pipeline")] == ["breaks"]  # stored all the same

    proc = cairn.fails("put", "file", "raw@master:/b.txt", "-f", "-", input="b")
    assert "breaks@" in proc.stderr
    assert cairn.get("raw@master:/b.txt") == b"b"  # the put itself is done

    # --no-wait keeps fire-and-forget: the put succeeds whatever the jobs do
    done = cairn("put", "file", "raw@master:/c.txt", "-f", "-", "--no-wait", input="c")
    assert done.stdout.startswith("raw@")


# -- cairn run says what it does ---------------------------------------------------------
@pytest.mark.embedded_only("cairn run needs the store in its process")
def test_run_prints_a_line_per_job_and_per_event_and_quiet_silences_them(
    cairn: Cairn,
) -> None:
    cairn("create", "repo", "raw")
    cairn("create", "pipeline", "-f", str(cairn.spec(pipeline("ok", pfs("raw"), ["true"]))))
    off = {"CAIRN_AUTO_RUN": "0"}
    cairn("put", "file", "raw@master:/a.txt", "-f", "-", input="a", env=off)
    quiet = cairn("run", "--once", "--quiet")
    assert quiet.stderr == ""
    cairn("put", "file", "raw@master:/b.txt", "-f", "-", input="b", env=off)

    run = subprocess.Popen(
        [CAIRN, "run", "--interval", "0.2"],
        cwd=cairn.root,
        env=cairn.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    assert run.stderr is not None
    reader = threading.Thread(target=lambda: lines.extend(run.stderr or []), daemon=True)
    reader.start()

    def printed(start: str) -> bool:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if any(line.startswith(start) for line in list(lines)):
                return True
            time.sleep(0.1)
        return False

    try:
        assert printed("ok: job "), lines
        rule = cairn.write("rule.json", '{"name": "watch", "model": "nosuch@champion"}')
        cairn("create", "monitor", "-f", str(rule))  # an event another process records
        assert printed("monitor.create watch: "), lines
    finally:
        run.terminate()
        run.wait(30)
        reader.join(10)
    assert sum(line.startswith("ok: job ") for line in lines) == 1


# -- a pipeline whose code is missing fails once and waits for a fix ------------------------
COPY_SH = 'cp -r "$CAIRN_PFS"/raw/. "$CAIRN_PFS/out/"\n'


def _missing_script_pipeline(cairn: Cairn) -> str:
    """Pipeline ``train`` over ``raw`` whose script train.sh does not exist yet: its
    creation fails at once (no datum runs, no retry) and names the script."""
    cairn("create", "repo", "raw")
    cairn.put("raw@master:/a.txt", "a")
    spec = str(cairn.spec(pipeline("train", pfs("raw"), ["bash", "train.sh"])))
    proc = cairn.fails("create", "pipeline", "-f", spec)
    assert "train.sh not found" in proc.stderr
    [job] = cairn.jobs("train")
    assert job["state"] == "failure" and job["failed"] == 0  # no datum ran
    return spec


def test_a_pipeline_whose_script_is_missing_waits_for_a_spec_update(cairn: Cairn) -> None:
    spec = _missing_script_pipeline(cairn)
    cairn.put("raw@master:/b.txt", "b")  # an unrelated commit does not run it again
    assert len(cairn.jobs("train")) == 1
    assert "failure" in cairn("list", "pipeline").stdout

    cairn.write("train.sh", COPY_SH)
    cairn("update", "pipeline", "-f", spec)
    assert cairn.jobs("train")[0]["state"] == "success"
    assert cairn.get("train@master:/b.txt") == b"b"


@pytest.mark.embedded_only("a server runs the code uploaded with the spec: update it there")
def test_rerun_pipeline_runs_it_once_the_script_is_there(cairn: Cairn) -> None:
    _missing_script_pipeline(cairn)
    cairn.write("train.sh", COPY_SH)
    cairn("rerun", "pipeline", "train")
    assert [j["state"] for j in cairn.jobs("train")] == ["success", "failure"]
    assert cairn.get("train@master:/a.txt") == b"a"
