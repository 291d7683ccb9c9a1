"""Datums per second: one process per datum versus datum batching (transform.datum_batching).

    python bench/datum_throughput.py [--datums 2000] [--mode both] [--workers 2] [--profile]

Builds a throw-away embedded store with one repo of N one-file datums (glob ``/*``) and runs
a pipeline whose Python transform does about 1 ms of work per datum (read the file, spin
1 ms, write it reversed), once per mode. Prints, per mode, the job's wall time and datums
per second, then checks that both modes wrote the same output tree. ``--profile`` runs each
job under cProfile and prints the top of the cumulative profile of the job runner (the
transform runs in child processes and is not in it). The sandbox is used when bwrap works,
unless ``CAIRN_SANDBOX=none``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from pathlib import Path

import yaml

from cairn.catalog import open_catalog
from cairn.data import DataStore, Ref
from cairn.pipelines import Pipelines, load_specs
from cairn.pipelines.sandbox import sandbox_available
from cairn.storage import ChunkStore, LocalObjectStore

TRANSFORM = """\
import os
import time

pfs = os.environ["CAIRN_PFS"]


def work():
    [name] = os.listdir(f"{pfs}/in")
    with open(f"{pfs}/in/{name}", "rb") as f:
        data = f.read()
    end = time.perf_counter() + 0.001  # about 1 ms of work per datum
    while time.perf_counter() < end:
        pass
    with open(f"{pfs}/out/{name}", "wb") as f:
        f.write(data[::-1])


if os.environ.get("CAIRN_DATUM_CHANNEL"):
    from cairn.sdk import datums

    for _datum_id in datums():
        work()
else:
    work()
"""


def run(root: Path, mode: str, count: int, workers: int, profile: bool) -> tuple[float, dict]:
    root.mkdir(parents=True)
    catalog = open_catalog(f"sqlite:///{root}/catalog.db")
    data = DataStore(catalog, ChunkStore(LocalObjectStore(root / "objects", fsync=False)))
    pipelines = Pipelines(data, catalog, work_dir=root / "work", parallelism=workers)
    data.create_repo("in")
    files = [(f"f{i:06d}.txt", io.BytesIO(f"datum {i}\n".encode())) for i in range(count)]
    data.put_files("in", None, files)
    spec_dir = root / "spec"
    spec_dir.mkdir()
    (spec_dir / "transform.py").write_text(TRANSFORM)
    doc = {
        "pipeline": {"name": "reverse"},
        "transform": {"cmd": [sys.executable, "transform.py"], "datum_batching": mode == "batch"},
        "input": {"pfs": {"repo": "in", "glob": "/*"}},
        "parallelism_spec": {"constant": workers},
        "salt": "bench",  # same datum hashes in both modes, so lineage compares
    }
    pipelines.create_pipeline(load_specs(yaml.safe_dump(doc))[0], spec_dir)
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    [job] = pipelines.propagate()
    if profiler:
        profiler.disable()
    elapsed = time.perf_counter() - started
    if job.state != "success":
        raise SystemExit(f"{mode}: job {job.state}: {job.reason}")
    if profiler:
        print(f"-- cProfile of the {mode} job (cumulative, top 25) --")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    tree = data.resolve(Ref("reverse", "master")).tree
    outputs = {path: (entry.hash, entry.datum) for path, entry in data.trees.walk(tree)}
    catalog.dispose()
    return elapsed, outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datums", type=int, default=2000)
    parser.add_argument("--mode", choices=["process", "batch", "both"], default="both")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    modes = ["process", "batch"] if args.mode == "both" else [args.mode]
    sandbox = "bwrap sandbox" if sandbox_available() else "host (no sandbox)"
    print(f"{args.datums} one-file datums, {args.workers} workers, {sandbox}")
    trees = {}
    with tempfile.TemporaryDirectory(prefix="cairn-datum-bench-") as tmp:
        for mode in modes:
            elapsed, trees[mode] = run(
                Path(tmp) / mode, mode, args.datums, args.workers, args.profile
            )
            rate = args.datums / elapsed
            print(f"{mode:>8}: {elapsed:8.2f} s  {rate:8.1f} datums/s")
    if len(trees) == 2:
        same = trees["process"] == trees["batch"]
        print(f"output trees identical (paths, content, datum lineage): {same}")
        if not same:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
