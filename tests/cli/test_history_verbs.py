"""pachctl's verbs over history (issue 15, section 3): ``delete commit``, ``squash commit``,
``subscribe commit``, ``stop job``, ``delete job``, ``list datum -f``, ``inspect datum``."""

from __future__ import annotations

import queue
import signal
import subprocess
import threading
import time

from .conftest import CAIRN, Cairn, pfs, pipeline, seed

COPY = ["bash", "-c", 'cp -r "$CAIRN_PFS"/words/* "$CAIRN_PFS/out/"']


def _copier(cairn: Cairn) -> str:
    first = seed(cairn, "words", {"a.txt": "alpha"})[0]
    cairn.spec(pipeline("copy", pfs("words"), COPY))
    cairn("create", "pipeline", "-f", "spec.json")
    return first


def _paths(cairn: Cairn, ref: str) -> list[str]:
    return sorted(f["path"] for f in cairn.raw("list", "file", ref))


def test_delete_commit_takes_its_outputs_and_squash_keeps_the_childrens_data(
    cairn: Cairn,
) -> None:
    c1 = _copier(cairn)
    c2 = cairn.put("words@master:/b.txt", "beta")
    c3 = cairn.put("words@master:/c.txt", "gamma")
    # a commit with a child cannot be deleted: that would cut its history
    proc = cairn.fails("delete", "commit", f"words@{c2}")
    assert f"commit {c3} has it as parent" in proc.stderr
    # a head cannot be squashed: there is no child to keep its data
    proc = cairn.fails("squash", "commit", f"words@{c3}")
    assert "it is the head of words@master" in proc.stderr

    proc = cairn("squash", "commit", f"words@{c2}")
    assert f"squashed words@{c2}" in proc.stderr and f"squashed copy@{c2}" in proc.stderr
    assert [c["id"] for c in cairn.raw("list", "commit", "words@master")] == [c3, c1]
    assert len(cairn.raw("list", "commit", "copy@master")) == 2
    assert _paths(cairn, "copy@master") == ["/a.txt", "/b.txt", "/c.txt"]
    assert cairn.raw("lineage", "copy@master:/b.txt")["inputs"][0]["path"] == "/b.txt"

    proc = cairn("delete", "commit", f"words@{c3}")
    assert f"deleted words@{c3}" in proc.stderr and f"deleted copy@{c3}" in proc.stderr
    assert cairn.raw("inspect", "commit", "words@master")["id"] == c1
    assert _paths(cairn, "copy@master") == ["/a.txt"]
    assert c3 not in {j["id"] for j in cairn.jobs("copy")}  # its job went with it
    cairn.fails("inspect", "commit", f"words@{c3}")


def test_list_datum_previews_a_spec_and_inspect_datum_shows_one(cairn: Cairn) -> None:
    seed(cairn, "words", {"a.txt": "alpha", "b.txt": "beta"})
    cairn.spec(pipeline("copy", pfs("words"), COPY))
    preview = cairn.raw("list", "datum", "-f", "spec.json")
    assert sorted(i["path"] for d in preview for i in d["inputs"]) == ["/a.txt", "/b.txt"]
    assert cairn.raw("list", "pipeline") == []  # a preview creates nothing
    table = cairn("list", "datum", "-f", "spec.json").stdout
    assert "words:/a.txt" in table and "words:/b.txt" in table
    cairn("create", "pipeline", "-f", "spec.json")
    job = cairn.jobs("copy")[0]["id"]
    datums = cairn.raw("list", "datum", f"copy@{job}")
    assert sorted(d["id"] for d in datums) == sorted(d["id"] for d in preview)
    one = cairn.raw("inspect", "datum", f"copy@{job}", datums[0]["id"][:10])
    assert one["id"] == datums[0]["id"] and one["state"] == "success"
    shown = cairn("inspect", "datum", f"copy@{job}", datums[0]["id"][:10]).stdout
    assert "success" in shown and "words:/" in shown
    cairn.fails("inspect", "datum", f"copy@{job}", "zzzz")
    cairn.fails("list", "datum")  # neither a job nor a spec


def test_stop_job_ends_a_running_job_and_delete_job_removes_it(cairn: Cairn) -> None:
    seed(cairn, "words", {"a.txt": "a"})
    slow = ["bash", "-c", 'sleep 2; cp -r "$CAIRN_PFS"/words/* "$CAIRN_PFS/out/"']
    cairn.spec(pipeline("slow", pfs("words"), slow, parallelism_spec={"constant": 1}))
    cairn("create", "pipeline", "-f", "spec.json")
    done = cairn.jobs("slow")[0]
    proc = cairn.fails("stop", "job", f"slow@{done['id']}")
    assert "not running" in proc.stderr
    seed(cairn, "words", {f"{i}.txt": str(i) for i in range(6)})
    # a put runs the job (embedded, in the put's process; remote, the server's worker)
    runner = subprocess.Popen(
        [CAIRN, "put", "file", "words@master:/z.txt", "-f", "-"],
        cwd=cairn.root,
        env=cairn.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert runner.stdin is not None
        runner.stdin.write(b"z")
        runner.stdin.close()
        deadline = time.monotonic() + 60
        while not (found := [j for j in cairn.jobs("slow") if j["state"] == "running"]):
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.2)
        running = found[0]
        cairn("stop", "job", f"slow@{running['id']}")
        # paused, the pipeline runs nothing more (a server's worker would run the put's
        # commit next, and a deleted job's inputs again), so the put's wait ends
        cairn("stop", "pipeline", "slow")
        runner.wait(timeout=90)
    finally:
        runner.kill()
    job = cairn.raw("inspect", "job", f"slow@{running['id']}")
    assert job["state"] == "failure" and "stopped" in job["reason"]
    assert job["processed"] < 6 and job["output_commit"] is None
    cairn.fails("inspect", "commit", f"slow@{running['id']}")  # no output was written

    cairn("delete", "job", f"slow@{running['id']}")
    assert running["id"] not in {j["id"] for j in cairn.jobs("slow")}
    # a job that succeeded takes its output commit (the head) with it
    latest = next(j for j in cairn.jobs("slow") if j["state"] == "success")
    cairn("delete", "job", f"slow@{latest['id']}")
    assert latest["id"] not in {j["id"] for j in cairn.jobs("slow")}
    cairn.fails("inspect", "commit", f"slow@{latest['output_commit']}")


def _lines(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def test_subscribe_commit_prints_each_commit_as_it_lands(cairn: Cairn) -> None:
    first = seed(cairn, "words", {"a.txt": "a"})[0]
    procs = [
        subprocess.Popen(
            [CAIRN, "subscribe", "commit", "words@master", *extra, "--interval", "0.1"],
            cwd=cairn.root,
            env=cairn.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for extra in ((), ("--new",))
    ]
    try:
        every, new = (_lines(p) for p in procs)
        assert every.get(timeout=30).startswith(f"words@{first}")
        time.sleep(1.5)  # --new has looked once: what is there now is old to it
        second = seed(cairn, "words", {"b.txt": "b"})[0]
        assert every.get(timeout=30).startswith(f"words@{second}")
        assert new.get(timeout=30).startswith(f"words@{second}")
        assert new.empty()
    finally:
        for p in procs:
            p.send_signal(signal.SIGINT)
        codes = [p.wait(timeout=30) for p in procs]
    assert codes == [0, 0]


def test_restart_datum_runs_a_failed_datum_again_with_the_fixed_code(cairn: Cairn) -> None:
    seed(cairn, "words", {"a.txt": "alpha", "b.txt": "beta"})
    cairn.write(
        "copy.sh",
        'grep -q beta "$CAIRN_PFS"/words/* && exit 3\ncp "$CAIRN_PFS"/words/* "$CAIRN_PFS/out/"\n',
    )
    cairn.spec(pipeline("copy", pfs("words"), ["bash", "copy.sh"]))
    cairn("create", "pipeline", "-f", "spec.json", check=False)
    failed = cairn.jobs("copy")[0]
    assert failed["state"] == "failure"
    bad = next(
        d for d in cairn.raw("list", "datum", f"copy@{failed['id']}") if d["state"] == "failed"
    )
    proc = cairn("restart", "datum", f"copy@{failed['id']}", bad["id"][:12], check=False)
    assert proc.returncode == 1 and "failed" in proc.stderr  # the code is still wrong
    cairn.write("copy.sh", 'cp "$CAIRN_PFS"/words/* "$CAIRN_PFS/out/"\n')
    cairn("update", "pipeline", "-f", "spec.json")  # remote: the fixed folder goes along
    again = cairn.raw("restart", "datum", f"copy@{failed['id']}", bad["id"][:12])
    assert again["state"] == "success" and again["attempts"] > bad["attempts"]
    assert (
        cairn.raw("inspect", "datum", f"copy@{failed['id']}", bad["id"][:12])["state"] == "success"
    )
    proc = cairn.fails("restart", "datum", f"copy@{failed['id']}", bad["id"][:12])
    assert "not failed" in proc.stderr


def test_extract_then_restore_gives_the_same_store_byte_for_byte(cairn: Cairn) -> None:
    _copier(cairn)
    cairn.put("words@master:/b.txt", "beta")
    cairn("extract", "-o", "store.tgz")  # remote: the server's store, for a clusterAdmin
    # a store with data in it is not overwritten
    proc = cairn.fails("restore", "-i", "store.tgz")
    assert "restore needs an empty store" in proc.stderr
    if cairn.url is not None:  # the same store read in this process gives the same bytes
        Cairn(cairn.root)("extract", "-o", "local.tgz")
        assert (cairn.root / "local.tgz").read_bytes() == (cairn.root / "store.tgz").read_bytes()
    other = Cairn(cairn.root / "restored")
    other.root.mkdir()
    other("init")
    other("restore", "-i", str(cairn.root / "store.tgz"))
    assert other.raw("fsck")["problems"] == []
    assert other.get("copy@master:/b.txt") == b"beta"
    assert other.jobs("copy") == cairn.jobs("copy")
    other("extract", "-o", "again.tgz")
    assert (other.root / "again.tgz").read_bytes() == (cairn.root / "store.tgz").read_bytes()
