#!/usr/bin/env python3
"""Storage growth, time and memory of cairn versus DVC on one large file and two edits.

The named peer is DVC ("DVC stores a whole file again for a small edit"). Both tools
are driven through their command lines, as users run them, in the same run and on
the same bytes, which the benchmark makes itself: deterministic pseudo-random bytes
(``random.Random(seed)``), incompressible like video.

1. Version 1: a file of N MiB. cairn: ``cairn put file data@master:/big.bin -f big.bin``
   (``CAIRN_HOME`` in a temporary folder). DVC: ``dvc add big.bin`` in a fresh git +
   DVC repository; the ``git commit`` of ``big.bin.dvc`` is timed separately.
2. Version 2: 4 KiB inserted in the middle (every later byte shifts); put / add again.
3. Version 3: 1 MiB appended; put / add again.
4. Peak RSS of cairn's put of an N/4 MiB and an N MiB file into fresh stores (the
   child's process tree polled every 10 ms with psutil, and the kernel's own
   ``ru_maxrss`` high-water mark from ``wait4``).
5. Read back of version 2: ``cairn get file data@master^:/big.bin -o out.bin`` versus
   ``git checkout HEAD~1 -- big.bin.dvc && dvc checkout big.bin``; both outputs are
   checked byte for byte against the source file.

Store sizes: every file under ``$CAIRN_HOME/objects`` versus every file under
``.dvc/cache``; "apparent" is the sum of file sizes, "disk" the allocated blocks.

Usage: ``python bench/storage_vs_dvc.py [--size-mb N] [--seed S] [--workdir DIR] [--keep]``.
Needs ``cairn``, ``dvc`` and ``psutil`` installed in the running interpreter's
environment, and ``git`` on PATH. Writes ``bench/results/storage_vs_dvc.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

MIB = 1 << 20
KIB = 1 << 10
PIECE = 4 * MIB  # generation / copy buffer
INSERT = 4 * KIB
APPEND = 1 * MIB

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"


# -- helpers ----------------------------------------------------------------------------
def tool(name: str) -> str:
    """The console script of ``name`` beside this interpreter, else on PATH."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if not found:
        sys.exit(f"{name} not found: install it in this environment (see bench/README.md)")
    return found


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run(cmd: list[str], *, cwd: Path, env: dict[str, str]) -> dict:
    """Run ``cmd``; return wall seconds, peak RSS of its process tree polled every 10 ms,
    and the kernel's ru_maxrss of the child. Raises on a non-zero exit."""
    # Output goes to temporary files, not pipes, so a chatty command cannot block.
    with tempfile.TemporaryFile() as so, tempfile.TemporaryFile() as se:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=so, stderr=se)
        ps = psutil.Process(proc.pid)
        status, usage, peak = _poll(proc, ps)
        wall = time.perf_counter() - t0
        so.seek(0)
        se.seek(0)
        out = so.read().decode(errors="replace")
        errout = se.read().decode(errors="replace")
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} exited {proc.returncode}\nstdout:\n{out}\nstderr:\n{errout}"
        )
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_polled": peak,
        "peak_rss_kernel": usage.ru_maxrss * 1024,  # Linux reports KiB
        "stdout": out,
    }


def _poll(proc: subprocess.Popen, ps: psutil.Process):
    """Wait for ``proc``, sampling its tree's RSS every 10 ms; return wait4's status and
    rusage, and the largest sample."""
    peak = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        peak = max(peak, tree_rss(ps))
        time.sleep(0.01)
    return status, usage, peak


def store_size(folder: Path) -> dict:
    apparent = disk = files = 0
    for dirpath, _dirs, names in os.walk(folder):
        for n in names:
            st = os.lstat(os.path.join(dirpath, n))
            apparent += st.st_size
            disk += st.st_blocks * 512
            files += 1
    return {"apparent": apparent, "disk": disk, "files": files}


def growth(before: dict, after: dict) -> dict:
    return {k: after[k] - before[k] for k in before}


def write_random(path: Path, size: int, seed: int) -> None:
    rng = random.Random(seed)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(PIECE, left)
            f.write(rng.randbytes(n))
            left -= n


def copy_range(src, dst, n: int) -> None:
    while n:
        piece = src.read(min(PIECE, n))
        if not piece:
            raise EOFError("short read")
        dst.write(piece)
        n -= len(piece)


def make_insert(src: Path, dst: Path, at: int, data: bytes) -> None:
    with open(src, "rb") as s, open(dst, "wb") as d:
        copy_range(s, d, at)
        d.write(data)
        shutil.copyfileobj(s, d, PIECE)


def make_append(src: Path, dst: Path, data: bytes) -> None:
    shutil.copyfile(src, dst)
    with open(dst, "ab") as d:
        d.write(data)


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while piece := f.read(PIECE):
            h.update(piece)
    return h.hexdigest()


def blake3_of(path: Path) -> str:
    import blake3

    h = blake3.blake3()
    with open(path, "rb") as f:
        while piece := f.read(PIECE):
            h.update(piece)
    return h.hexdigest()


def sh(cmd: list[str], **kw) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout.strip()


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = sh(["git", "-C", str(ROOT), "rev-parse", "HEAD"])
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    # The working tree may differ from HEAD (uncommitted edits); a digest of the
    # source files pins exactly what ran.
    src = hashlib.sha256()
    for p in sorted((ROOT / "src" / "cairn").rglob("*.py")):
        src.update(p.relative_to(ROOT).as_posix().encode() + b"\0" + p.read_bytes())
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_bytes": psutil.virtual_memory().total,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cairn_commit": commit,
        "cairn_src_sha256": src.hexdigest()[:16],
        "dvc_version": sh([tool("dvc"), "--version"]).splitlines()[-1],
    }


def fs_type(path: Path) -> str:
    try:
        return sh(["stat", "-f", "-c", "%T", str(path)])
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# -- the benchmark ----------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mb", type=int, default=256, help="size N of version 1 in MiB")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--workdir", type=Path, default=None, help="where temporary stores go")
    ap.add_argument(
        "--repeat", type=int, default=3, help="rounds on fresh stores; times are medians"
    )
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args = ap.parse_args()

    cairn, dvc = tool("cairn"), tool("dvc")
    work = Path(tempfile.mkdtemp(prefix="cairn-vs-dvc-", dir=args.workdir))
    started = time.perf_counter()
    print(f"work folder {work} ({fs_type(work)}); N = {args.size_mb} MiB", flush=True)

    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("CAIRN_", "GIT_"))}
    base_env.update(
        DVC_NO_ANALYTICS="1",
        GIT_AUTHOR_NAME="bench",
        GIT_AUTHOR_EMAIL="bench@example.invalid",
        GIT_COMMITTER_NAME="bench",
        GIT_COMMITTER_EMAIL="bench@example.invalid",
        GIT_CONFIG_NOSYSTEM="1",
    )
    try:
        data = make_data(args, work / "src")
        rounds, loads = [], []
        for i in range(args.repeat):
            print(f"-- round {i + 1} of {args.repeat}", flush=True)
            rdir = work / f"round-{i + 1}"
            rdir.mkdir()
            load = os.getloadavg()[0]
            one = one_round(data, cairn, dvc, rdir, base_env, dvc_first=bool(i % 2))
            loads.append([load, os.getloadavg()[0]])
            rounds.append(one)
            shutil.rmtree(rdir, ignore_errors=True)
        results = {
            "benchmark": "storage_vs_dvc",
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "size_mb": args.size_mb,
            "seed": args.seed,
            "repeat": args.repeat,
            "filesystem": fs_type(work),
            "machine": machine(),
            "loadavg_1min_per_round": loads,
            **merge(rounds),
        }
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    results["total_wall_s"] = time.perf_counter() - started
    report(results, args.out)


def merge(rounds: list, path: str = "") -> object:
    """One result from several rounds of the same shape: times (keys ending ``_s``) are
    the median, with every round's value under ``<key>_rounds``; peak RSS is the largest;
    other numbers (sizes, counts) must agree, else the median is kept and the key is
    listed under ``varied``."""
    first = rounds[0]
    if isinstance(first, dict):
        out: dict = {}
        for k in first:
            vals = [r[k] for r in rounds]
            out[k] = merge(vals, f"{path}.{k}" if path else k)
            if k.endswith("_s") and len(rounds) > 1:
                out[f"{k}_rounds"] = vals
        if not path:
            out["varied"] = sorted(_VARIED)
        return out
    if isinstance(first, list):
        return [merge([r[i] for r in rounds], f"{path}[{i}]") for i in range(len(first))]
    if isinstance(first, bool) or not isinstance(first, (int, float)):
        return first
    if path.endswith("_s"):
        return statistics.median(rounds)
    if path.rsplit(".", 1)[-1].startswith("peak_rss"):
        return max(rounds)
    if len(set(rounds)) > 1:
        _VARIED.add(path)
        return statistics.median(rounds)
    return first


_VARIED: set[str] = set()


def make_data(args, src: Path) -> dict:
    """Versions 1-3 and the N/4 file, written once and reused by every round."""
    src.mkdir()
    n = args.size_mb * MIB
    quarter = max(1, args.size_mb // 4) * MIB
    v1, v2, v3, small = (src / f"{name}.bin" for name in ("v1", "v2", "v3", "quarter"))
    rng = random.Random(args.seed + 1)
    insert_at = n // 2
    print("making data ...", flush=True)
    write_random(v1, n, args.seed)
    make_insert(v1, v2, insert_at, rng.randbytes(INSERT))
    make_append(v2, v3, rng.randbytes(APPEND))
    write_random(small, quarter, args.seed + 2)
    versions = [
        ("v1", v1, f"new file, {n // MIB} MiB"),
        ("v2", v2, f"+4 KiB inserted at byte {insert_at}"),
        ("v3", v3, "+1 MiB appended"),
    ]
    return {
        "versions": versions,
        "sha": {name: digest(p) for name, p, _ in versions},
        "blake3": {name: blake3_of(p) for name, p, _ in versions},
        "v1": v1,
        "quarter": small,
    }


def one_round(
    data: dict, cairn: str, dvc: str, work: Path, base_env: dict, *, dvc_first: bool
) -> dict:
    """Both tools through versions 1-3, the read back and the memory runs, on fresh
    stores under ``work``. ``dvc_first`` swaps which tool runs first in each step."""
    versions, sha = data["versions"], data["sha"]
    small, v1 = data["quarter"], data["v1"]

    # cairn: the CLI, as users run it, on a store of its own.
    home = work / "cairn-home"
    cwork = work / "cairn-work"
    cwork.mkdir()
    cenv = {**base_env, "CAIRN_HOME": str(home)}
    run([cairn, "create", "repo", "data"], cwd=cwork, env=cenv)

    # DVC: a fresh git repository with DVC initialised; the cache goes to .dvc/cache.
    drepo = work / "dvc-repo"
    drepo.mkdir()
    denv = dict(base_env)
    run(["git", "init", "-q"], cwd=drepo, env=denv)
    run([dvc, "init", "-q"], cwd=drepo, env=denv)
    run([dvc, "config", "core.analytics", "false"], cwd=drepo, env=denv)
    run([dvc, "config", "core.site_cache_dir", str(work / "dvc-site-cache")], cwd=drepo, env=denv)
    run(["git", "add", "-A"], cwd=drepo, env=denv)
    run(["git", "commit", "-q", "-m", "dvc init"], cwd=drepo, env=denv)
    cache = drepo / ".dvc" / "cache"

    def cairn_version(name: str, path: Path) -> dict:
        shutil.copyfile(path, cwork / "big.bin")
        before = store_size(home / "objects")
        before_chunks = store_size(home / "objects" / "chunks")
        r = run(
            [cairn, "put", "file", "data@master:/big.bin", "-f", "big.bin", "-m", name],
            cwd=cwork,
            env=cenv,
        )
        after = store_size(home / "objects")
        after_chunks = store_size(home / "objects" / "chunks")
        raw = run([cairn, "inspect", "file", "data@master:/big.bin", "--raw"], cwd=cwork, env=cenv)
        info = json.loads(raw["stdout"])
        assert info["size"] == path.stat().st_size, info
        assert info["hash"] == data["blake3"][name], "cairn's BLAKE3 of the file differs"
        return {
            "time_s": r["wall_s"],
            "cpu_s": r["cpu_s"],
            "peak_rss": r["peak_rss_polled"],
            "peak_rss_kernel": r["peak_rss_kernel"],
            "store": after,
            "growth": growth(before, after),
            "chunk_growth": growth(before_chunks, after_chunks),
            "chunks_in_file": info.get("chunks"),
        }

    def dvc_version(name: str, path: Path) -> dict:
        # Replace the workspace file (a new inode: safe whatever the cache link type),
        # time `dvc add`, then time the git commit of the .dvc file separately.
        tmp = drepo / ".big.bin.tmp"
        shutil.copyfile(path, tmp)
        os.replace(tmp, drepo / "big.bin")
        before = store_size(cache)
        r = run([dvc, "add", "-q", "big.bin"], cwd=drepo, env=denv)
        after = store_size(cache)
        g = run(["git", "add", "big.bin.dvc", ".gitignore"], cwd=drepo, env=denv)
        g2 = run(["git", "commit", "-q", "-m", name], cwd=drepo, env=denv)
        return {
            "time_s": r["wall_s"],
            "cpu_s": r["cpu_s"],
            "git_commit_s": g["wall_s"] + g2["wall_s"],
            "peak_rss": r["peak_rss_polled"],
            "peak_rss_kernel": r["peak_rss_kernel"],
            "store": after,
            "growth": growth(before, after),
        }

    def both(cairn_step, dvc_step, *a):
        if dvc_first:
            d = dvc_step(*a)
            return cairn_step(*a), d
        c = cairn_step(*a)
        return c, dvc_step(*a)

    rows = []
    for name, path, what in versions:
        c, d = both(cairn_version, dvc_version, name, path)
        rows.append(
            {"version": name, "what": what, "size": path.stat().st_size, "cairn": c, "dvc": d}
        )
        print(
            f"  {name} ({what}): cairn put {c['time_s']:.2f} s,"
            f" +{c['growth']['apparent'] / MIB:.2f} MiB ({c['growth']['files']} objects);"
            f" dvc add {d['time_s']:.2f} s, +{d['growth']['apparent'] / MIB:.2f} MiB",
            flush=True,
        )

    # Read back version 2 (one commit before the head) and compare bytes.
    def cairn_read() -> dict:
        out = cwork / "out.bin"
        r = run(
            [cairn, "get", "file", "data@master^:/big.bin", "-o", str(out)], cwd=cwork, env=cenv
        )
        assert digest(out) == sha["v2"], "cairn get returned different bytes"
        out.unlink()
        return {
            "time_s": r["wall_s"],
            "cpu_s": r["cpu_s"],
            "peak_rss": r["peak_rss_polled"],
            "identical": True,
        }

    def dvc_read() -> dict:
        g = run(["git", "checkout", "-q", "HEAD~1", "--", "big.bin.dvc"], cwd=drepo, env=denv)
        r = run([dvc, "checkout", "-q", "big.bin"], cwd=drepo, env=denv)
        assert digest(drepo / "big.bin") == sha["v2"], "dvc checkout returned different bytes"
        return {
            "time_s": r["wall_s"],
            "cpu_s": r["cpu_s"],
            "git_checkout_s": g["wall_s"],
            "peak_rss": r["peak_rss_polled"],
            "identical": True,
        }

    cr, dr = both(cairn_read, dvc_read)
    print(
        f"  read v2: cairn get {cr['time_s']:.2f} s; dvc checkout {dr['time_s']:.2f} s", flush=True
    )

    # Memory: cairn's put of N/4 and of N into fresh stores; a no-op command for the
    # interpreter's own baseline. Version 1 above is the N run's time; repeat it here
    # so that both sizes run under the same conditions.
    mem = {}
    base = run([cairn, "list", "repo"], cwd=cwork, env=cenv)
    mem["baseline_list_repo"] = {
        "time_s": base["wall_s"],
        "peak_rss": base["peak_rss_polled"],
        "peak_rss_kernel": base["peak_rss_kernel"],
    }
    for label, path in (("quarter", small), ("full", v1)):
        mhome = work / f"mem-{label}"
        menv = {**base_env, "CAIRN_HOME": str(mhome)}
        run([cairn, "create", "repo", "data"], cwd=cwork, env=menv)
        r = run(
            [cairn, "put", "file", "data@master:/big.bin", "-f", str(path)], cwd=cwork, env=menv
        )
        mem[label] = {
            "size": path.stat().st_size,
            "time_s": r["wall_s"],
            "cpu_s": r["cpu_s"],
            "peak_rss": r["peak_rss_polled"],
            "peak_rss_kernel": r["peak_rss_kernel"],
        }
        shutil.rmtree(mhome)

    return {
        "versions": rows,
        "read_v2": {"cairn": cr, "dvc": dr},
        "memory": mem,
    }


# -- report -------------------------------------------------------------------------------
def mib(b: float) -> str:
    return f"{b / MIB:,.2f}"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.3f}" if b else "n/a"


def report(res: dict, out_dir: Path) -> None:
    m = res["machine"]
    lines = [
        "# cairn vs DVC: store growth, time and memory for one large file",
        "",
        f"- Date: {res['date']}; N = {res['size_mb']} MiB; seed {res['seed']}; "
        f"total run {res['total_wall_s']:.0f} s",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['ram_bytes'] / (1 << 30):.1f} GiB RAM; "
        f"{m['platform']}; Python {m['python']}; file system of the stores: {res['filesystem']}; "
        "1-min load average at the start / end of each round: "
        + ", ".join(f"{a:.1f}/{b:.1f}" for a, b in res["loadavg_1min_per_round"]),
        f"- cairn commit {m['cairn_commit']} (source sha256 {m['cairn_src_sha256']}); "
        f"DVC {m['dvc_version']}",
        "- Data: pseudo-random bytes (`random.Random(seed)`), incompressible. "
        f"Times are wall seconds (CLI start-up included), the median of {res['repeat']} rounds "
        "on fresh stores (every round is in the JSON; rounds alternate which tool goes first). "
        "DVC's time is `dvc add` alone; the `git commit` of the `.dvc` file is in its own column. "
        "Store = all files under `$CAIRN_HOME/objects` vs `.dvc/cache` (apparent bytes; "
        "allocated blocks in the JSON).",
        "",
        "## Store growth and time per version",
        "",
        "| version | change | file MiB | cairn +MiB (objects) | of which new chunks | DVC +MiB "
        "| growth cairn/DVC "
        "| cairn put s | dvc add s | time cairn/DVC | git commit s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for v in res["versions"]:
        c, d = v["cairn"], v["dvc"]
        lines.append(
            f"| {v['version']} | {v['what']} | {mib(v['size'])} "
            f"| {mib(c['growth']['apparent'])} ({c['growth']['files']}) "
            f"| {mib(c['chunk_growth']['apparent'])} ({c['chunk_growth']['files']}) "
            f"| {mib(d['growth']['apparent'])} "
            f"| {ratio(c['growth']['apparent'], d['growth']['apparent'])} "
            f"| {c['time_s']:.2f} | {d['time_s']:.2f} | {ratio(c['time_s'], d['time_s'])} "
            f"| {d['git_commit_s']:.2f} |"
        )
    lines += [
        "",
        "CPU seconds (user + system, from `wait4`; less sensitive than wall time to other "
        "load on the machine):",
        "",
        "| version | cairn put CPU s | dvc add CPU s | CPU cairn/DVC |",
        "|---|---:|---:|---:|",
    ]
    for v in res["versions"]:
        c, d = v["cairn"], v["dvc"]
        lines.append(
            f"| {v['version']} | {c['cpu_s']:.2f} | {d['cpu_s']:.2f} "
            f"| {ratio(c['cpu_s'], d['cpu_s'])} |"
        )
    last = res["versions"][-1]
    lines += [
        "",
        f"Store after all three versions: cairn {mib(last['cairn']['store']['apparent'])} MiB "
        f"({last['cairn']['store']['files']} objects), DVC "
        f"{mib(last['dvc']['store']['apparent'])} MiB; "
        f"ratio {ratio(last['cairn']['store']['apparent'], last['dvc']['store']['apparent'])}. "
        f"Chunks in the file per version: "
        + ", ".join(f"{v['version']} {v['cairn']['chunks_in_file']}" for v in res["versions"])
        + ".",
        "",
        "## Read back version 2 (the older version), byte-identical",
        "",
        "| tool | command | s | CPU s | peak RSS MiB |",
        "|---|---|---:|---:|---:|",
    ]
    rc, rd = res["read_v2"]["cairn"], res["read_v2"]["dvc"]
    lines += [
        f"| cairn | `cairn get file data@master^:/big.bin -o out.bin` | {rc['time_s']:.2f} "
        f"| {rc['cpu_s']:.2f} | {mib(rc['peak_rss'])} |",
        f"| DVC | `dvc checkout big.bin` (after `git checkout HEAD~1 -- big.bin.dvc`, "
        f"{rd['git_checkout_s']:.2f} s) | {rd['time_s']:.2f} | {rd['cpu_s']:.2f} "
        f"| {mib(rd['peak_rss'])} |",
        f"| ratio | cairn / DVC | {ratio(rc['time_s'], rd['time_s'])} "
        f"| {ratio(rc['cpu_s'], rd['cpu_s'])} | |",
        "",
        "## Peak memory of `cairn put file` (fresh store each)",
        "",
        "| run | file MiB | s | peak RSS MiB (polled tree, 10 ms) | ru_maxrss MiB (kernel) |",
        "|---|---:|---:|---:|---:|",
    ]
    mem = res["memory"]
    b = mem["baseline_list_repo"]
    lines.append(
        f"| `cairn list repo` (baseline: start-up) | - | {b['time_s']:.2f} "
        f"| {mib(b['peak_rss'])} | {mib(b['peak_rss_kernel'])} |"
    )
    for label, title in (("quarter", "`cairn put file`, N/4"), ("full", "`cairn put file`, N")):
        x = mem[label]
        lines.append(
            f"| {title} | {mib(x['size'])} | {x['time_s']:.2f} | {mib(x['peak_rss'])} "
            f"| {mib(x['peak_rss_kernel'])} |"
        )
    q, f = mem["quarter"], mem["full"]
    lines += [
        "",
        f"Peak RSS growth from N/4 to N: {mib(f['peak_rss_kernel'] - q['peak_rss_kernel'])} MiB "
        f"(kernel) for {mib(f['size'] - q['size'])} MiB more data. For reference, `dvc add` "
        f"of version 1 peaked at {mib(res['versions'][0]['dvc']['peak_rss'])} MiB.",
        "",
    ]
    if res.get("varied"):
        lines += [
            f"Numbers that differed between rounds (median shown): {', '.join(res['varied'])}.",
            "",
        ]
    md = "\n".join(lines)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "storage_vs_dvc.md").write_text(md)
    (out_dir / "storage_vs_dvc.json").write_text(json.dumps(res, indent=2) + "\n")
    print()
    print(md)
    print(f"wrote {out_dir / 'storage_vs_dvc.md'} and .json")


if __name__ == "__main__":
    main()
