"""Datums per second on the local executor versus a Ray cluster of 1, 2 and 3 nodes.

    python bench/ray_executor.py [--datums 2000] [--size-kib 1024] [--cpu-ms 5] [--repeat 2]
                                 [--out FILE]

One throw-away embedded store (a local folder and SQLite: every node is this machine, so
the Ray executor accepts it) holds one repo of N one-file datums of ``--size-kib`` KiB each
(distinct bytes at the head of each file, so each datum reads its own file). A batching
Python transform (``datum_batching``, cairn.sdk) reads its datum's file, burns ``--cpu-ms``
of CPU and writes a 64-byte digest. The same spec runs, in this one process and run, as a
fresh pipeline on each executor, in rounds that pair runs of equal CPUs so that the load
of a shared machine weighs on both alike: ``--repeat`` times local with 1 worker then Ray
with a head node of 1 CPU; a second node of 1 CPU joins, then ``--repeat`` times local with
2 workers and Ray on 2 nodes; a third node joins, then ``--repeat`` times Ray on 3 nodes
(ray.cluster_utils.Cluster, all on this machine). Prints each job's wall time and
datums/s, keeps each configuration's fastest, checks that every run wrote the same outputs
with the same lineage, and reports Ray's overhead per datum as
(T_ray,1 node - T_local,1 worker) / N: the same single worker, with and without Ray.
Datums run on the host (CAIRN_SANDBOX=none), as the nodes would need bubblewrap too.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

from cairn.catalog import CatalogChunkIndex, open_catalog
from cairn.data import DataStore, Ref
from cairn.pipelines import Pipelines, load_specs
from cairn.storage import ChunkStore, LocalObjectStore

TRANSFORM = """\
import hashlib
import os
import time

from cairn.sdk import datums

pfs = os.environ["CAIRN_PFS"]
cpu = float(os.environ["BENCH_CPU_MS"]) / 1000
for _datum_id in datums():
    [name] = os.listdir(f"{pfs}/in")
    with open(f"{pfs}/in/{name}", "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    end = time.process_time() + cpu
    while time.process_time() < end:
        pass
    with open(f"{pfs}/out/{name}.sha256", "w") as f:
        f.write(digest)
"""


def make_store(root: Path, count: int, size: int) -> DataStore:
    catalog = open_catalog(f"sqlite:///{root}/catalog.db")
    data = DataStore(
        catalog,
        ChunkStore(
            LocalObjectStore(root / "objects", fsync=False), index=CatalogChunkIndex(catalog)
        ),
    )
    data.create_repo("in")
    body = os.urandom(size)
    for start in range(0, count, 200):  # a commit per 200 files keeps memory small
        files = [
            (f"f{i:06d}.bin", io.BytesIO(i.to_bytes(8, "big") + body[8:]))
            for i in range(start, min(count, start + 200))
        ]
        data.put_files("in", None, files)
    return data


def run(
    data: DataStore, root: Path, label: str, executor: str, workers: int | None
) -> tuple[float, dict]:
    pipelines = Pipelines(
        data, data.catalog, work_dir=root / "work", parallelism=workers, executor=executor
    )
    spec_dir = root / "spec"
    spec_dir.mkdir(exist_ok=True)
    (spec_dir / "transform.py").write_text(TRANSFORM)
    doc = {
        "pipeline": {"name": f"work-{label}"},
        "transform": {
            "cmd": [sys.executable, "transform.py"],
            "datum_batching": True,
            "env": {"BENCH_CPU_MS": os.environ["BENCH_CPU_MS"]},
        },
        "input": {"pfs": {"repo": "in", "glob": "/*"}},
        "salt": "bench",  # the same datum hashes in every run, so lineage compares
    }
    pipelines.create_pipeline(load_specs(yaml.safe_dump(doc))[0], spec_dir)
    started = time.perf_counter()
    [job] = pipelines.propagate()
    elapsed = time.perf_counter() - started
    if job.state != "success":
        raise SystemExit(f"{label}: job {job.state}: {job.reason}")
    tree = data.resolve(Ref(f"work-{label}", "master")).tree
    return elapsed, {p: (e.hash, e.datum) for p, e in data.trees.walk(tree)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datums", type=int, default=2000)
    parser.add_argument("--size-kib", type=int, default=1024)
    parser.add_argument("--cpu-ms", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    from ray.cluster_utils import Cluster

    os.environ["BENCH_CPU_MS"] = str(args.cpu_ms)
    os.environ["CAIRN_SANDBOX"] = "none"
    # The nodes' workers run the transform with this interpreter and this checkout of cairn.
    src = Path(__file__).resolve().parents[1] / "src"
    os.environ["PYTHONPATH"] = f"{src}:{os.environ.get('PYTHONPATH', '')}"
    n = args.datums
    print(
        f"{n} datums of {args.size_kib} KiB, {args.cpu_ms} ms of CPU each; {os.cpu_count()} cores"
    )
    rows: list[dict] = []
    trees = []
    with tempfile.TemporaryDirectory(prefix="cairn-ray-bench-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        data = make_store(root, n, args.size_kib << 10)
        print(f"store built in {time.perf_counter() - started:.1f} s")

        def record(label: str, elapsed: float, tree: dict) -> None:
            trees.append(tree)
            label = label.rsplit("#", 1)[0]
            rows.append(
                {"run": label, "seconds": round(elapsed, 2), "datums_per_s": round(n / elapsed, 1)}
            )
            print(f"{label:>14}: {elapsed:8.2f} s  {n / elapsed:8.1f} datums/s", flush=True)

        common = dict(num_cpus=1, object_store_memory=80 << 20)
        cluster = Cluster(
            initialize_head=True, head_node_args=dict(common, include_dashboard=False)
        )
        os.environ["RAY_ADDRESS"] = cluster.address
        try:
            for nodes in (1, 2, 3):
                if nodes > 1:
                    cluster.add_node(**common)
                for round_ in range(args.repeat):
                    tag = f"{nodes}-{round_}"
                    if nodes < 3:
                        record(f"local-{nodes}#", *run(data, root, f"l{tag}", "local", nodes))
                    record(f"ray-{nodes}-node#", *run(data, root, f"r{tag}", "ray", None))
        finally:
            import ray

            ray.shutdown()
            cluster.shutdown()
        data.catalog.dispose()
    same = all(t == trees[0] for t in trees)
    by: dict[str, float] = {}
    for r in rows:
        by[r["run"]] = min(by.get(r["run"], r["seconds"]), r["seconds"])
    print("fastest of each: " + ", ".join(f"{k} {v:.2f} s ({n / v:.1f}/s)" for k, v in by.items()))
    overhead_ms = (by["ray-1-node"] - by["local-1"]) / n * 1000
    print(f"outputs and lineage identical across runs: {same}")
    print(f"Ray overhead per datum (1 node vs 1 local worker): {overhead_ms:.2f} ms")
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "datums": n,
                    "size_kib": args.size_kib,
                    "cpu_ms": args.cpu_ms,
                    "cores": os.cpu_count(),
                    "runs": rows,
                    "fastest_seconds": by,
                    "repeat": args.repeat,
                    "ray_overhead_ms_per_datum": round(overhead_ms, 2),
                    "identical": same,
                },
                indent=2,
            )
            + "\n"
        )
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
