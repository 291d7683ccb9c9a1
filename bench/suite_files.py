"""Cases A (many small files) and B (a few large files): ``cairn put file -r`` against
``dvc add`` on the same folder, through their command lines.

A, per round (fresh stores each round; rounds alternate which tool goes first):

1. ``cp -r`` of the dataset into the round's folder (the reference row: a plain copy);
2. first put of the folder (cairn: ``cairn put file ds@master:/ -f data -r``; DVC:
   ``dvc add data`` in a fresh git + DVC repository, then ``git add`` + ``git commit`` of
   ``data.dvc``, timed apart);
3. the same put again with nothing changed;
4. 1% of the files rewritten and 1% added, in place, then the put again; the store's
   growth (bytes under ``$CAIRN_HOME/objects`` and ``.dvc/cache``) is recorded.

B, per round: first put of 4 large incompressible files, then 4 MiB overwritten in the
middle of one of them and the put again, with store growth. The source folder is moved
(renamed) into each DVC repository and back rather than copied, so the large bytes stay
in the page cache and in one place.

Before each round and each tool's side, dirty pages are written out (``os.sync``,
untimed), so no command pays for the previous one's writes.

Memory: one more first put of each dataset at a quarter of the file count (A) or file
size (B) into fresh stores, so peak RSS is known at two scales.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path

from suite_data import SmallFiles, apply, overwrite_middle, write_random
from suite_lib import MIB, Measure, Tools, cairn_store, drop, dvc_repo, growth, run, tree_bytes

REPO = "ds"
LARGE_FILES = 4


def _both(first_dvc: bool, cairn_side: Callable[[], dict], dvc_side: Callable[[], dict] | None):
    """Run both sides, DVC first when ``first_dvc``; DVC's side may be absent. Dirty pages
    are written out (untimed) before each side, so neither pays for the other's writes."""
    if dvc_side is None:
        os.sync()
        return cairn_side(), None
    sides = [dvc_side, cairn_side] if first_dvc else [cairn_side, dvc_side]
    out = []
    for side in sides:
        os.sync()
        out.append(side())
    return (out[1], out[0]) if first_dvc else (out[0], out[1])


def _put(tools: Tools, env: dict, cwd: Path, folder: str) -> Measure:
    return run(
        [tools.cairn, "put", "file", f"{REPO}@master:/", "-f", folder, "-r"], cwd=cwd, env=env
    )


def _check_count(tools: Tools, env: dict, cwd: Path, files: int, size: int) -> None:
    import json

    info = json.loads(
        run([tools.cairn, "inspect", "file", f"{REPO}@master:/", "--raw"], cwd=cwd, env=env).stdout
    )
    if info["count"] != files or info["size"] != size:
        raise AssertionError(
            f"cairn holds {info['count']} files, {info['size']} B; expected {files} files, {size} B"
        )


def _dvc_commit(tools: Tools, repo: Path, message: str) -> float:
    g = run(["git", "add", "data.dvc", ".gitignore"], cwd=repo, env=tools.env)
    g2 = run(["git", "commit", "-q", "-m", message], cwd=repo, env=tools.env)
    return g.wall_s + g2.wall_s


# -- A ----------------------------------------------------------------------------------------
def case_a(tools: Tools, work: Path, *, scale: float, repeat: int, seed: int) -> dict:
    """Case A (see the module doc); returns every round's measurements."""
    count = max(20, round(20_000 * scale))
    gen = SmallFiles(seed)
    src = work / "A-src"
    total = gen.write(src, count)
    changes = gen.changes(count)
    old_sizes = sum((src / rel).stat().st_size for rel in changes if (src / rel).exists())
    changed_bytes = sum(len(b) for b in changes.values())
    after_total = total - old_sizes + changed_bytes
    after_count = count + sum(1 for rel in changes if not (src / rel).exists())
    print(
        f"A: {count} files, {total / MIB:.1f} MiB; change set {len(changes)} files, "
        f"{changed_bytes / MIB:.2f} MiB",
        flush=True,
    )

    rounds = []
    for r in range(repeat):
        rd = work / f"A-round-{r}"
        rd.mkdir()
        os.sync()
        cp = run(["cp", "-r", str(src), str(rd / "data")], cwd=rd, env=tools.env)

        def cairn_side(rd: Path = rd, check: bool = r == 0) -> dict:
            home = rd / "cairn-home"
            env = cairn_store(tools, home, REPO)
            objects = home / "objects"
            first = _put(tools, env, rd, "data")
            if check:
                _check_count(tools, env, rd, count, total)
            again = _put(tools, env, rd, "data")
            before = tree_bytes(objects)
            apply(rd / "data", changes)
            change = _put(tools, env, rd, "data")
            if check:
                _check_count(tools, env, rd, after_count, after_total)
            grown = growth(before, tree_bytes(objects))
            drop(home)
            return {
                "first": first.row(),
                "again": again.row(),
                "change": change.row(),
                "change_growth": grown,
            }

        def dvc_side(rd: Path = rd) -> dict:
            repo = rd / "dvc-repo"
            cache = dvc_repo(tools, repo)
            shutil.copytree(src, repo / "data")
            first = run([tools.dvc, "add", "-q", "data"], cwd=repo, env=tools.env)
            git_s = _dvc_commit(tools, repo, "v1")
            again = run([tools.dvc, "add", "-q", "data"], cwd=repo, env=tools.env)
            before = tree_bytes(cache)
            apply(repo / "data", changes)
            change = run([tools.dvc, "add", "-q", "data"], cwd=repo, env=tools.env)
            grown = growth(before, tree_bytes(cache))
            drop(repo)
            return {
                "first": first.row(),
                "git_commit_s": git_s,
                "again": again.row(),
                "change": change.row(),
                "change_growth": grown,
            }

        c, d = _both(bool(r % 2), cairn_side, dvc_side if tools.dvc else None)
        rounds.append({"cp": cp.row(), "cairn": c, "dvc": d, "loadavg": os.getloadavg()[0]})
        drop(rd)
        print(
            f"  round {r + 1}: cp {cp.wall_s:.2f} s; cairn first {c['first']['wall_s']:.2f} s,"
            f" again {c['again']['wall_s']:.2f} s, change {c['change']['wall_s']:.2f} s"
            + (
                f"; dvc first {d['first']['wall_s']:.2f} s, again {d['again']['wall_s']:.2f} s,"
                f" change {d['change']['wall_s']:.2f} s"
                if d
                else ""
            ),
            flush=True,
        )

    memory = _memory_a(tools, work, gen, count)
    drop(src)
    return {
        "files": count,
        "bytes": total,
        "change_files": len(changes),
        "change_bytes": changed_bytes,
        "rounds": rounds,
        "memory": memory,
    }


def _memory_a(tools: Tools, work: Path, gen: SmallFiles, count: int) -> dict:
    """First put of a quarter of the files, fresh stores: peak RSS at a second scale."""
    quarter = max(5, count // 4)
    rd = work / "A-memory"
    gen.write(rd / "data", quarter)
    env = cairn_store(tools, rd / "cairn-home", REPO)
    out = {"files": quarter, "cairn": _put(tools, env, rd, "data").row()}
    if tools.dvc:
        repo = rd / "dvc-repo"
        dvc_repo(tools, repo)
        os.rename(rd / "data", repo / "data")
        out["dvc"] = run([tools.dvc, "add", "-q", "data"], cwd=repo, env=tools.env).row()
    drop(rd)
    return out


# -- B ----------------------------------------------------------------------------------------
def case_b(tools: Tools, work: Path, *, scale: float, repeat: int, seed: int) -> dict:
    """Case B (see the module doc); returns every round's measurements."""
    size = max(1 * MIB, round(256 * MIB * scale))
    patch_size = min(4 * MIB, size // 4)
    rng = random.Random(seed + 7)
    src = work / "B-src"
    src.mkdir()
    for i in range(LARGE_FILES):
        write_random(src / f"f{i}.bin", size, rng)
    patch = rng.randbytes(patch_size)
    total = size * LARGE_FILES
    print(
        f"B: {LARGE_FILES} files of {size / MIB:.0f} MiB; {patch_size / MIB:.0f} MiB "
        "overwritten in the middle of one",
        flush=True,
    )

    rounds = []
    for r in range(repeat):
        rd = work / f"B-round-{r}"
        rd.mkdir()

        def cairn_side(rd: Path = rd, check: bool = r == 0) -> dict:
            home = rd / "cairn-home"
            env = cairn_store(tools, home, REPO)
            objects = home / "objects"
            first = run(
                [tools.cairn, "put", "file", f"{REPO}@master:/", "-f", str(src), "-r"],
                cwd=rd,
                env=env,
            )
            if check:
                _check_count(tools, env, rd, LARGE_FILES, total)
            stored = tree_bytes(objects)
            old = overwrite_middle(src / "f0.bin", patch)
            try:
                edit = run(
                    [tools.cairn, "put", "file", f"{REPO}@master:/", "-f", str(src), "-r"],
                    cwd=rd,
                    env=env,
                )
            finally:
                overwrite_middle(src / "f0.bin", old)
            grown = growth(stored, tree_bytes(objects))
            drop(home)
            return {
                "first": first.row(),
                "first_stored": stored,
                "edit": edit.row(),
                "edit_growth": grown,
            }

        def dvc_side(rd: Path = rd) -> dict:
            repo = rd / "dvc-repo"
            cache = dvc_repo(tools, repo)
            data = repo / "data"
            os.rename(src, data)
            try:
                first = run([tools.dvc, "add", "-q", "data"], cwd=repo, env=tools.env)
                git_s = _dvc_commit(tools, repo, "v1")
                stored = tree_bytes(cache)
                old = overwrite_middle(data / "f0.bin", patch)
                try:
                    edit = run([tools.dvc, "add", "-q", "data"], cwd=repo, env=tools.env)
                finally:
                    _writable(data)
                    overwrite_middle(data / "f0.bin", old)
            finally:
                _writable(data)
                os.rename(data, src)
            grown = growth(stored, tree_bytes(cache))
            drop(repo)
            return {
                "first": first.row(),
                "git_commit_s": git_s,
                "first_stored": stored,
                "edit": edit.row(),
                "edit_growth": grown,
            }

        c, d = _both(bool(r % 2), cairn_side, dvc_side if tools.dvc else None)
        rounds.append({"cairn": c, "dvc": d, "loadavg": os.getloadavg()[0]})
        drop(rd)
        print(
            f"  round {r + 1}: cairn first {c['first']['wall_s']:.2f} s, edit "
            f"{c['edit']['wall_s']:.2f} s +{c['edit_growth']['apparent'] / MIB:.2f} MiB"
            + (
                f"; dvc first {d['first']['wall_s']:.2f} s, edit {d['edit']['wall_s']:.2f} s "
                f"+{d['edit_growth']['apparent'] / MIB:.2f} MiB"
                if d
                else ""
            ),
            flush=True,
        )

    drop(src)
    memory = _memory_b(tools, work, size // 4 or 1, seed)
    return {
        "files": LARGE_FILES,
        "file_bytes": size,
        "bytes": total,
        "patch_bytes": patch_size,
        "rounds": rounds,
        "memory": memory,
    }


def _writable(folder: Path) -> None:
    """DVC may leave workspace files read-only (link-type caches); make them writable."""
    for p in folder.iterdir():
        p.chmod(0o644)


def _memory_b(tools: Tools, work: Path, size: int, seed: int) -> dict:
    """First put of 4 files a quarter the size, fresh stores: peak RSS at a second scale."""
    rd = work / "B-memory"
    data = rd / "data"
    data.mkdir(parents=True)
    rng = random.Random(seed + 8)
    for i in range(LARGE_FILES):
        write_random(data / f"f{i}.bin", size, rng)
    env = cairn_store(tools, rd / "cairn-home", REPO)
    out = {"file_bytes": size, "cairn": _put(tools, env, rd, "data").row()}
    if tools.dvc:
        repo = rd / "dvc-repo"
        dvc_repo(tools, repo)
        os.rename(data, repo / "data")
        out["dvc"] = run([tools.dvc, "add", "-q", "data"], cwd=repo, env=tools.env).row()
    drop(rd)
    return out
