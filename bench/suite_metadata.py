#!/usr/bin/env python3
"""Case M: metadata operations on a repo of n small files, through the Python API.

Run by the suite as two fresh child processes per n, so each has its own peak RSS:

- ``build HOME N``: a repo ``m`` of N files of a few bytes each (``/dNNNN/fNNNN``, as
  many folders as files per folder, about sqrt(N) each: 1000 x 1000 at one million),
  written into one open commit one folder per ``Client.put_files`` call, then finished.
  This is setup; its time and peak RSS are reported apart.
- ``ops HOME N REPEAT``: REPEAT times each, timed separately inside the process:
  commit one changed file (``Client.put_files`` of one small stream on ``master``; the
  new bytes under ``objects/trees`` are the new metadata of that commit), diff the two
  newest commits (``Client.diff_file``), list one folder (``Client.list_file``).

Each mode prints one JSON object on stdout.
"""

from __future__ import annotations

import io
import json
import math
import os
import random
import resource
import statistics
import sys
import time
from pathlib import Path

REPO = "m"


def shape(n: int) -> tuple[int, int]:
    """(folders, files per folder) for about ``n`` files."""
    per = max(1, math.isqrt(n))
    return math.ceil(n / per), per


def _peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _bytes_under(folder: Path) -> int:
    total = 0
    for dirpath, _dirs, names in os.walk(folder):
        for name in names:
            total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def build(home: Path, n: int) -> dict:
    from cairn import Client

    t0 = time.perf_counter()
    c = Client.open(home, auto_run=False)
    c.create_repo(REPO)
    folders, per = shape(n)
    commit = c.start_commit(REPO, "master")
    i = 0
    for d in range(folders):
        items = []
        for f in range(per):
            if i == n:
                break
            items.append((f"/d{d:04d}/f{f:04d}", io.BytesIO(b"%d\n" % i)))
            i += 1
        c.put_files(REPO, commit.id, items)
    c.finish_commit(REPO, commit.id)
    wall = time.perf_counter() - t0
    objects = home / "objects"
    return {
        "files": i,
        "folders": folders,
        "per_folder": per,
        "build_s": wall,
        "files_per_s": i / wall,
        "peak_rss": _peak(),
        "objects_bytes": _bytes_under(objects),
        "tree_bytes": _bytes_under(objects / "trees"),
    }


def ops(home: Path, n: int, repeat: int) -> dict:
    from cairn import Client

    c = Client.open(home, auto_run=False)
    folders, per = shape(n)
    rng = random.Random(n)
    trees = home / "objects" / "trees"
    commit_s, new_tree_bytes, new_object_bytes, ids = [], [], [], []
    for k in range(repeat):
        path = f"/d{rng.randrange(folders):04d}/f{rng.randrange(per):04d}"
        before_t, before_o = _bytes_under(trees), _bytes_under(home / "objects")
        t0 = time.perf_counter()
        info = c.put_files(REPO, "master", [(path, io.BytesIO(b"changed %d\n" % k))])
        commit_s.append(time.perf_counter() - t0)
        new_tree_bytes.append(_bytes_under(trees) - before_t)
        new_object_bytes.append(_bytes_under(home / "objects") - before_o)
        ids.append(info.id)
    diff_s, diff_changes = [], []
    for k in range(1, len(ids)):
        t0 = time.perf_counter()
        changes = c.diff_file(f"{REPO}@{ids[k]}", f"{REPO}@{ids[k - 1]}")
        diff_s.append(time.perf_counter() - t0)
        diff_changes.append(len(changes))
    list_s, listed = [], []
    for _ in range(repeat):
        folder = f"/d{rng.randrange(folders):04d}"
        t0 = time.perf_counter()
        entries = c.list_file(f"{REPO}@master:{folder}")
        list_s.append(time.perf_counter() - t0)
        listed.append(len(entries))
    return {
        "commit_s": commit_s,
        "commit_median_s": statistics.median(commit_s),
        "commit_new_tree_bytes": new_tree_bytes,
        "commit_new_tree_bytes_median": statistics.median(new_tree_bytes),
        "commit_new_object_bytes": new_object_bytes,
        "diff_s": diff_s,
        "diff_median_s": statistics.median(diff_s),
        "diff_changes": diff_changes,
        "list_s": list_s,
        "list_median_s": statistics.median(list_s),
        "list_entries": listed,
        "peak_rss": _peak(),
    }


def case_m(tools, work: Path, *, scale: float, repeat: int, budget_s: float) -> dict:
    """Build and measure at n = 10k, 100k and 1M files (times ``scale``), each in fresh
    child processes. A size whose build, extrapolated linearly from the previous size's
    rate, would take longer than ``budget_s`` is skipped and recorded as such."""
    from suite_lib import drop, run

    sizes = [max(4, round(n * scale)) for n in (10_000, 100_000, 1_000_000)]
    here = str(Path(__file__).resolve())
    out: list[dict] = []
    rate = None
    for n in sizes:
        if rate is not None and n / rate > budget_s:
            out.append(
                {
                    "n": n,
                    "skipped": f"projected build {n / rate:.0f} s > budget "
                    f"{budget_s:.0f} s (--m-budget)",
                }
            )
            print(f"M: n = {n}: skipped, projected build {n / rate:.0f} s", flush=True)
            continue
        home = work / f"M-{n}"
        drop(home)
        b = run([sys.executable, here, "build", str(home), str(n)], cwd=work, env=tools.env)
        built = json.loads(b.stdout)
        rate = built["files_per_s"]
        o = run(
            [sys.executable, here, "ops", str(home), str(n), str(max(repeat, 5))],
            cwd=work,
            env=tools.env,
        )
        measured = json.loads(o.stdout)
        drop(home)
        row = {
            "n": n,
            "build": {**built, "process": b.row()},
            "ops": {**measured, "process": o.row()},
        }
        out.append(row)
        print(
            f"M: n = {built['files']}: build {built['build_s']:.1f} s "
            f"({built['files_per_s']:.0f} files/s, peak {b.peak_rss / 2**20:.0f} MiB); "
            f"commit {measured['commit_median_s'] * 1e3:.1f} ms "
            f"(+{measured['commit_new_tree_bytes_median']} B of trees), "
            f"diff {measured['diff_median_s'] * 1e3:.1f} ms, "
            f"list {measured['list_median_s'] * 1e3:.1f} ms, "
            f"ops peak {o.peak_rss / 2**20:.0f} MiB",
            flush=True,
        )
    return {"sizes": out}


def main(argv: list[str]) -> None:
    mode, home, n = argv[1], Path(argv[2]), int(argv[3])
    if mode == "build":
        out = build(home, n)
    elif mode == "ops":
        out = ops(home, n, int(argv[4]))
    else:
        sys.exit(f"unknown mode {mode!r}: build or ops")
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv)
