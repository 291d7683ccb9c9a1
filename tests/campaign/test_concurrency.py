"""Concurrency: writers in separate processes on one branch, two runners at once,
concurrent model registrations. The collection racing a put is
tests/data/test_gc_race.py and tests/data/test_gc_reuse_machine.py (gc with grace 0
beside puts that reuse what it would delete)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from cairn.client import Client
from cairn.data import parse_ref

from .harness import Tally

ROOT = Path(__file__).resolve().parents[2]
WRITERS, COMMITS = 8, 100


def spawn(call: str, *args: str) -> subprocess.Popen[str]:
    code = f"import sys; from tests.campaign.workloads import {call}; {call}(*sys.argv[1:])"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_eight_writers_of_a_hundred_commits_lose_nothing(tmp_path: Path, tally: Tally) -> None:
    home = tmp_path / "store"
    client = Client(home, auto_run=False)
    client.data.create_repo("w")
    procs = [spawn("writer", str(home), str(w), str(COMMITS)) for w in range(WRITERS)]
    outs = [p.communicate(timeout=300) for p in procs]
    errors = [
        (p.returncode, err[-800:]) for p, (_, err) in zip(procs, outs, strict=True) if p.returncode
    ]
    acked = [line for out, _ in outs for line in out.split()]
    tally.trials = WRITERS * COMMITS
    head = client.data.inspect_commit("w", "master")
    got = {
        path.lstrip("/"): client.data.chunks.read_bytes(entry.content)
        for path, entry in client.data.walk_files(parse_ref(f"w@{head.id}"))
    }
    want = {f"w{w}/c{i}": f"{w}:{i}".encode() for w in range(WRITERS) for i in range(COMMITS)}
    history = {c.id for c in client.data.list_commits("w", "master")}
    tally.lost = len(set(want) - set(got)) + len(set(acked) - history)
    tally.corrupt = sum(got.get(k) != v for k, v in want.items() if k in got)
    tally.stuck = len(errors)
    client.data.catalog.dispose()
    assert errors == []
    assert len(acked) == WRITERS * COMMITS == len(set(acked))
    assert (tally.lost, tally.corrupt) == (0, 0)


def test_concurrent_registrations_number_without_gaps(tmp_path: Path) -> None:
    home = tmp_path / "store"
    client = Client(home, auto_run=False)
    client.data.create_repo("models")
    client.data.put_files("models", None, [("echo/run.py", io.BytesIO(b"print('[]')"))])
    procs = [spawn("registrar", str(home), str(w), "5") for w in range(6)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [
        (p.returncode, err[-800:]) for p, (_, err) in zip(procs, outs, strict=True) if p.returncode
    ] == []
    numbers = sorted(int(n) for out, _ in outs for n in out.split())
    assert numbers == list(range(1, 31))
    assert sorted(v.version for v in client.models.versions("m")) == numbers
    client.data.catalog.dispose()


def test_two_runners_at_once_run_each_job_once(tmp_path: Path) -> None:
    home = tmp_path / "store"
    work = tmp_path / "work"
    work.mkdir()
    client = Client(home, auto_run=False)
    client.data.create_repo("in")
    client.data.put_files("in", None, [(f"x{i}", io.BytesIO(b"%d" % i)) for i in range(20)])
    spec = {
        "pipeline": {"name": "cp"},
        "transform": {"cmd": ["sh", "-c", 'cp "$CAIRN_PFS"/in/* "$CAIRN_PFS"/out/']},
        "input": {"pfs": {"repo": "in", "glob": "/*"}},
    }
    (work / "cp.json").write_text(json.dumps(spec))
    env = {**os.environ, "CAIRN_HOME": str(home), "CAIRN_AUTO_RUN": "0"}
    cairn = str(Path(sys.executable).with_name("cairn"))
    subprocess.run([cairn, "create", "pipeline", "-f", "cp.json"], cwd=work, env=env, check=True)
    runners = [
        subprocess.Popen(
            [cairn, "run", "--once"], cwd=work, env=env, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    errs = [r.communicate(timeout=300)[1] for r in runners]
    assert [r.returncode for r in runners] == [0, 0], errs
    jobs = client.jobs.list("cp")
    assert [j.state for j in jobs] == ["success"]
    datums = client.jobs.datums(f"cp@{jobs[0].id}")
    assert sorted(d.state for d in datums) == ["success"] * 20
    client.data.catalog.dispose()
