"""cairn's own ingest pool (cairn.data.ingest.ProcessIngest) against a ProcessPoolExecutor
with a forkserver context doing the same work (issue 10: keep ours only with the numbers).

    python bench/ingest_pool.py [--files 20000] [--repeat 3] [--workers 2] [--workdir DIR]

Makes ``--files`` small files (1-20 KiB, half CSV-like text, half random bytes, 100
folders, seed 0) in a scratch folder, then per round puts them into a fresh embedded store
(file objects, SQLite catalog) through ``DataStore.put_files(..., bulk=POOL)``, which is
the path ``cairn put file -r`` takes for thousands of files, once with each pool, in
alternating order. Each put runs in a fresh Python process, as each ``cairn put`` does, so
the forkserver's own start is paid every time, as a user would pay it. Times are wall
seconds of the whole put (worker start-up, hashing, compression, packing, the tree and the
commit), medians over the rounds; each round checks that both commits hold the same paths
with the same hashes.

The executor variant keeps ProcessIngest's contract: every worker opens its own catalog
and chunk store once (the executor's initializer), takes 64 files a task, and flushes its
pack buffer before the put commits. An executor cannot address its workers, so the flush
is one task per worker held at a barrier until every worker has taken one.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from cairn.catalog import CatalogChunkIndex, CatalogPins, open_catalog
from cairn.data import DataStore, parse_ref
from cairn.data.ingest import ProcessIngest
from cairn.storage import ChunkStore, Content, LocalObjectStore, StorageError

_TASK = 64  # files per task, as ProcessIngest
_AHEAD = 2  # tasks in flight per worker, as ProcessIngest
_store: ChunkStore | None = None  # a worker's own chunk store
_barrier: Any = None


def make_files(root: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` files of 1-20 KiB in 100 folders: even ones CSV-like text, odd ones random."""
    rng = random.Random(seed)
    paths = []
    for i in range(count):
        folder = root / f"d{i % 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        size = rng.randint(1024, 20 * 1024)
        if i % 2:
            data = rng.randbytes(size)
        else:
            line = ",".join(str(rng.randint(0, 10**6)) for _ in range(8)) + "\n"
            data = (line * (size // len(line) + 1)).encode()[:size]
        path = folder / f"f{i:06d}.bin"
        path.write_bytes(data)
        paths.append(path)
    return paths


def _init(settings: tuple[str, bool, int, int, str], barrier: Any) -> None:
    """A worker's set-up, as cairn.data.ingest._work's: its own catalog and chunk store."""
    global _store, _barrier
    root, fsync, avg_size, pack_size, catalog_url = settings
    catalog = open_catalog(catalog_url)
    _store = ChunkStore(
        LocalObjectStore(root, fsync=fsync),
        avg_size=avg_size,
        index=CatalogChunkIndex(catalog),
        pack_size=pack_size,
        pins=CatalogPins(catalog),
    )
    _barrier = barrier


def _task(names: list[tuple[str, tuple[int, int] | None]]) -> list[tuple[str, Any, Any]]:
    assert _store is not None
    out: list[tuple[str, Any, Any]] = []
    for name, expect in names:
        try:
            content, st = _store.write_path(name, follow=expect is None, expect=expect)
            out.append((name, content, st))
        except (OSError, StorageError) as exc:
            out.append((name, exc, None))
    return out


def _flush() -> int:
    """Flush this worker's packs once: the barrier keeps a worker from taking two flushes."""
    assert _store is not None
    _store.flush()
    _barrier.wait(timeout=60)
    return os.getpid()


class ForkserverIngest:
    """ProcessIngest's contract (a BulkStore) over ProcessPoolExecutor(forkserver)."""

    def __init__(self, chunks: ChunkStore, catalog_url: str, workers: int) -> None:
        self.chunks = chunks
        self.catalog_url = catalog_url
        self.workers = workers

    def __call__(
        self, names: list[tuple[str, tuple[int, int] | None]]
    ) -> Iterator[tuple[str, Content, os.stat_result]]:
        objects = self.chunks.objects
        assert isinstance(objects, LocalObjectStore)
        settings = (
            str(objects.root),
            objects.fsync,
            self.chunks.avg_size,
            self.chunks.pack_size,
            self.catalog_url,
        )
        ctx = multiprocessing.get_context("forkserver")
        # The server imports these once; each worker is a fork of it.
        ctx.set_forkserver_preload(["cairn.storage", "cairn.catalog"])
        barrier = ctx.Barrier(self.workers)
        tasks = [names[i : i + _TASK] for i in range(0, len(names), _TASK)]
        with ProcessPoolExecutor(
            self.workers, mp_context=ctx, initializer=_init, initargs=(settings, barrier)
        ) as pool:
            running: set[Future[list[tuple[str, Any, Any]]]] = set()
            while tasks or running:
                while tasks and len(running) < self.workers * _AHEAD:
                    running.add(pool.submit(_task, tasks.pop()))
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    for name, content, st in future.result():
                        if isinstance(content, OSError | StorageError):
                            raise content
                        yield name, content, st
            flushed = {f.result() for f in [pool.submit(_flush) for _ in range(self.workers)]}
            if len(flushed) != self.workers:
                raise StorageError("an ingest worker did not flush its packs")


def put(home: Path, root: Path, pool: str, workers: int) -> tuple[float, dict[str, str]]:
    """Wall seconds of one put of the files under ``root`` into a fresh store at ``home``
    with ``pool``, and the commit's {path: hash}."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    home.mkdir(parents=True)
    catalog_url = f"sqlite:///{home / 'catalog.db'}"
    catalog = open_catalog(catalog_url)
    data = DataStore(
        catalog,
        ChunkStore(
            LocalObjectStore(home / "objects"),
            index=CatalogChunkIndex(catalog),
            pins=CatalogPins(catalog),
        ),
    )
    data.create_repo("ds")
    items: list[tuple[str, Any]] = [(str(p.relative_to(root)), str(p)) for p in files]
    bulk: Any = (
        ProcessIngest(data.chunks, catalog_url, workers)
        if pool == "cairn"
        else ForkserverIngest(data.chunks, catalog_url, workers)
    )
    start = time.perf_counter()
    commit = data.put_files("ds", None, items, bulk=bulk)
    seconds = time.perf_counter() - start
    listing = {
        path: entry.content.hash for path, entry in data.walk_files(parse_ref(f"ds@{commit.id}"))
    }
    catalog.dispose()
    return seconds, listing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 8))
    parser.add_argument("--workdir", type=Path, default=None)
    # One put in this process: --put POOL HOME ROOT (what main runs in a child per round).
    parser.add_argument("--put", nargs=3, metavar=("POOL", "HOME", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.put:
        pool, home, root = args.put
        seconds, listing = put(Path(home), Path(root), pool, args.workers)
        print(json.dumps({"seconds": seconds, "listing": listing}))
        return
    work = Path(tempfile.mkdtemp(prefix="cairn-ingest-bench-", dir=args.workdir))
    try:
        root = work / "data"
        start = time.perf_counter()
        files = make_files(root, args.files)
        size = sum(p.stat().st_size for p in files)
        print(
            f"{len(files):,} files, {size / 2**20:.0f} MiB, made in "
            f"{time.perf_counter() - start:.1f} s; {args.workers} workers, "
            f"{os.cpu_count()} cores"
        )
        times: dict[str, list[float]] = {"cairn": [], "forkserver": []}
        for r in range(args.repeat):
            order = ["cairn", "forkserver"] if r % 2 == 0 else ["forkserver", "cairn"]
            listings = {}
            for pool in order:
                home = work / f"store-{pool}-{r}"
                child = subprocess.run(
                    [sys.executable, __file__, "--workers", str(args.workers)]
                    + ["--put", pool, str(home), str(root)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                result = json.loads(child.stdout)
                seconds, listings[pool] = result["seconds"], result["listing"]
                times[pool].append(seconds)
                shutil.rmtree(home)
                print(f"round {r + 1} {pool:>10}: {seconds:6.2f} s")
            assert listings["cairn"] == listings["forkserver"], "the two commits differ"
            assert len(listings["cairn"]) == len(files)
        for pool, values in times.items():
            print(
                f"{pool:>10}: median {statistics.median(values):.2f} s, "
                f"min {min(values):.2f} s, max {max(values):.2f} s "
                f"({len(files) / statistics.median(values):,.0f} files/s)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
