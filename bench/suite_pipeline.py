"""Case P: a pipeline over one-file datums, full run and then 1% of the inputs changed.

The work (``suite_work.py``) costs about 1 ms of CPU per file and writes one output file
per input file; both tools run the same script with the same calibrated number of hash
rounds.

- DVC: a fresh git + DVC repository holding the inputs under ``data/``; ``dvc.yaml`` has
  one stage, ``python work.py dvc data out ROUNDS`` with ``deps: [work.py, data]`` and
  ``outs: [out]``. Timed: ``dvc repro`` (full), then 1% of the input files rewritten
  and ``dvc repro`` again (DVC reruns the whole stage: it has no notion of datums).
- cairn: a fresh store, repo ``inp`` holding the inputs (put untimed), then a pipeline
  with glob ``/*/*`` (one datum per file) and ``parallelism_spec.constant: 2``. Timed:
  ``cairn create pipeline`` (which runs the full job before returning), then a ``cairn
  put file -r`` of the changed files (which finishes a commit and runs the job over it
  before returning). Two modes, each on a store of its own: process per datum (today's
  default) and datum batching (``transform.datum_batching: true``; one process loops
  over ``cairn.sdk.datums()``). When the installed cairn rejects the batching spec, that
  mode is recorded as unsupported with the error, and the rest runs.

Each job's processed / skipped datum counts are read back with ``cairn list job --raw``
and the output repo's file count is checked.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import suite_work
from suite_data import SmallFiles, apply
from suite_lib import (
    BENCH,
    CommandFailed,
    Tools,
    cairn_store,
    drop,
    dvc_repo,
    run,
)

PARALLELISM = 2
MODES = ("datum", "batch")


def calibrate(target_s: float = 1e-3) -> int:
    """Hash rounds that cost about ``target_s`` of CPU on this machine."""
    n = 20_000
    best = float("inf")
    for _ in range(3):
        t0 = time.process_time()
        suite_work.work(b"x" * 10_000, n)
        best = min(best, time.process_time() - t0)
    return max(1, round(n * target_s / best))


def _spec(mode: str, rounds: int) -> dict:
    transform: dict = {
        # Beside the spec (the transform's working folder), as a user's script would be;
        # the datum sandbox shows the host's /tmp only for folders the command needs.
        "cmd": [sys.executable, "suite_work.py", mode, str(rounds)],
    }
    if mode == "batch":
        transform["datum_batching"] = True
    return {
        "pipeline": {"name": "proc"},
        "transform": transform,
        "input": {"pfs": {"repo": "inp", "branch": "master", "glob": "/*/*"}},
        "parallelism_spec": {"constant": PARALLELISM},
    }


def _last_job(tools: Tools, env: dict, cwd: Path) -> dict:
    jobs = json.loads(
        run([tools.cairn, "list", "job", "-p", "proc", "--raw"], cwd=cwd, env=env).stdout
    )
    return jobs[0]


def _check_job(tools: Tools, env: dict, cwd: Path) -> dict:
    """The newest job of ``proc``; raises with its logs unless it succeeded."""
    job = _last_job(tools, env, cwd)
    if job.get("state") != "success":
        logs = run([tools.cairn, "logs", "-p", "proc"], cwd=cwd, env=env).stdout
        raise CommandFailed(
            f"job {job.get('id')} {job.get('state')}: {job.get('reason')}\n{logs[-3000:]}"
        )
    return job


def _out_count(tools: Tools, env: dict, cwd: Path) -> int:
    info = json.loads(
        run([tools.cairn, "inspect", "file", "proc@master:/", "--raw"], cwd=cwd, env=env).stdout
    )
    return int(info["count"])


def _job_row(measure, job: dict) -> dict:
    return {
        **measure.row(),
        "processed": job.get("processed"),
        "skipped": job.get("skipped"),
        "total": job.get("total"),
        "state": job.get("state"),
    }


def _cairn_mode(tools: Tools, rd: Path, src: Path, changed: dict, mode: str, rounds: int) -> dict:
    home = rd / f"cairn-{mode}"
    env = cairn_store(tools, home, "inp")
    count = sum(1 for _ in src.rglob("*") if _.is_file())
    put = run([tools.cairn, "put", "file", "inp@master:/", "-f", str(src), "-r"], cwd=rd, env=env)
    spec = rd / f"spec-{mode}" / "spec.json"
    spec.parent.mkdir()
    spec.write_text(json.dumps(_spec(mode, rounds), indent=2))
    shutil.copyfile(BENCH / "suite_work.py", spec.parent / "suite_work.py")
    try:
        full = run([tools.cairn, "create", "pipeline", "-f", str(spec)], cwd=rd, env=env)
    except CommandFailed as e:
        drop(home)
        if mode == "batch":
            return {"unsupported": str(e).splitlines()[0][:300], "detail": str(e)[-1500:]}
        raise
    full_job = _check_job(tools, env, rd)
    if _out_count(tools, env, rd) != count:
        raise AssertionError(
            f"cairn ({mode}) wrote {_out_count(tools, env, rd)} outputs, expected {count}"
        )
    changes = rd / f"changes-{mode}"
    apply(changes, changed)
    change = run(
        [tools.cairn, "put", "file", "inp@master:/", "-f", str(changes), "-r"], cwd=rd, env=env
    )
    change_job = _check_job(tools, env, rd)
    drop(home)
    return {
        "setup_put": put.row(),
        "full": _job_row(full, full_job),
        "change": _job_row(change, change_job),
    }


def _dvc(tools: Tools, rd: Path, src: Path, changed: dict, rounds: int) -> dict:
    assert tools.dvc is not None
    repo = rd / "dvc-repo"
    dvc_repo(tools, repo)
    shutil.copytree(src, repo / "data")
    shutil.copyfile(BENCH / "suite_work.py", repo / "work.py")
    (repo / "dvc.yaml").write_text(
        "stages:\n"
        "  process:\n"
        f"    cmd: {sys.executable} work.py dvc data out {rounds}\n"
        "    deps: [work.py, data]\n"
        "    outs: [out]\n"
    )
    env = tools.env
    run(["git", "add", "dvc.yaml", "work.py"], cwd=repo, env=env)
    run(["git", "commit", "-q", "-m", "stage"], cwd=repo, env=env)
    full = run([tools.dvc, "repro", "-q"], cwd=repo, env=env)
    outs = sum(1 for p in (repo / "out").rglob("*") if p.is_file())
    run(["git", "add", "dvc.lock", ".gitignore"], cwd=repo, env=env)
    run(["git", "commit", "-q", "-m", "full run"], cwd=repo, env=env)
    apply(repo / "data", changed)
    change = run([tools.dvc, "repro", "-q"], cwd=repo, env=env)
    drop(repo)
    return {"full": {**full.row(), "outputs": outs}, "change": change.row()}


def case_p(
    tools: Tools,
    work: Path,
    *,
    scale: float,
    repeat: int,
    seed: int,
    modes: tuple[str, ...] = MODES,
) -> dict:
    """Case P (see the module doc); returns every round's measurements."""
    count = max(20, round(20_000 * scale))
    gen = SmallFiles(seed + 100)
    src = work / "P-src"
    gen.write(src, count)
    # 1% of the inputs change; no new files (DVC's stage and cairn's datums see the same).
    changed = {rel: b for rel, b in gen.changes(count).items() if (src / rel).exists()}
    rounds_n = calibrate()
    print(
        f"P: {count} one-file datums, {len(changed)} changed; {rounds_n} hash rounds "
        f"per file (~1 ms); cairn parallelism {PARALLELISM}",
        flush=True,
    )
    rounds = []
    for r in range(repeat):
        rd = work / f"P-round-{r}"
        rd.mkdir()
        row: dict = {"cairn": {}}
        order = list(modes)
        if tools.dvc:
            order = ["dvc", *order] if r % 2 else [*order, "dvc"]
        for side in order:
            os.sync()  # untimed: no side pays for the previous one's writes
            if side == "dvc":
                row["dvc"] = _dvc(tools, rd, src, changed, rounds_n)
                d = row["dvc"]
                print(
                    f"  round {r + 1}: dvc repro full {d['full']['wall_s']:.1f} s, "
                    f"after change {d['change']['wall_s']:.1f} s",
                    flush=True,
                )
            else:
                c = _cairn_mode(tools, rd, src, changed, side, rounds_n)
                row["cairn"][side] = c
                if "unsupported" in c:
                    modes = tuple(m for m in modes if m != side)  # same answer every round
                    print(
                        f"  round {r + 1}: cairn {side}: unsupported ({c['unsupported']})",
                        flush=True,
                    )
                else:
                    print(
                        f"  round {r + 1}: cairn {side}: full {c['full']['wall_s']:.1f} s "
                        f"({c['full']['processed']} datums), change "
                        f"{c['change']['wall_s']:.1f} s ({c['change']['processed']} processed,"
                        f" {c['change']['skipped']} skipped)",
                        flush=True,
                    )
        row["loadavg"] = os.getloadavg()[0]
        rounds.append(row)
        drop(rd)
    drop(src)
    return {
        "datums": count,
        "changed": len(changed),
        "hash_rounds": rounds_n,
        "parallelism": PARALLELISM,
        "rounds": rounds,
    }
