"""One store for the console's tests, made as the quickstarts make theirs, in this process
(the face, not the CLI): the photographs through edges and montage (examples/quickstart),
the breast-cancer table through train twice with a run each, model cancer v1 (champion)
and v2 (challenger), deployment cancer, and a drift alert of monitor cancer-drift on
traffic of malignant rows only (examples/loop's shift); plus a folder of 120 files and a
text file changed once.

It takes about 30 s of CPU, so it is built once per test session: the first pytest-xdist
worker that needs it builds it under a file lock in the session's shared temporary folder,
and every module copies it (``shared``), since tests change it (a canary)."""

from __future__ import annotations

import fcntl
import json
import os
import random
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Ids:
    first_job: str  # edges' first job (13 processed)
    second_job: str  # edges' second job (13 processed, 13 skipped)
    runs: list[str]  # train's two runs, oldest first
    drift_event: int  # the id of the monitor.drift event


@dataclass
class Store(Ids):
    home: Path
    client: object  # cairn.client.Client over ``home``


def photographs() -> list[Path]:
    import skimage

    data = Path(skimage.__file__).parent / "data"
    return sorted(data.glob("*.png")) + sorted(data.glob("*.jpg"))


def build(home: Path) -> Ids:
    """Build the store at ``home``; needs CAIRN_SANDBOX=none (set by the caller) and a
    python3 on PATH with scikit-image and scikit-learn, as the quickstarts do."""
    from cairn.client import Client

    client = Client(home, auto_run=True)
    photos = photographs()
    half = (len(photos) + 1) // 2
    client.repos.create("images", "photographs shipped with scikit-image")
    first = {p.name: p.read_bytes() for p in photos[:half]}
    client.files.put("images@master:/", first, description=f"first {half} photographs")
    client.pipelines.create(ROOT / "examples" / "quickstart" / "pipelines.yaml")
    rest = {p.name: p.read_bytes() for p in photos[half:]}
    client.files.put("images@master:/", rest, description=f"the other {len(rest)} photographs")
    edges_jobs = client.jobs.list("edges")

    import pandas as pd
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.sample(frac=1.0, random_state=0)
    cut = int(len(frame) * 0.6)
    client.repos.create("training", "Wisconsin breast-cancer table (scikit-learn), in batches")
    ml = home.parent / "ml-spec"
    shutil.copytree(ROOT / "examples" / "ml", ml, dirs_exist_ok=True)
    client.files.put(
        "training@master:/part-1.csv",
        frame.iloc[:cut].to_csv(index=False).encode(),
        description="first batch",
    )
    client.pipelines.create(ml / "pipelines.yaml")
    client.models.register("cancer", "train@master:/model.skops", description="first batch")
    client.files.put(
        "training@master:/part-2.csv",
        frame.iloc[cut:].to_csv(index=False).encode(),
        description="second batch",
    )
    client.models.register("cancer", "train@master:/model.skops", description="both batches")
    client.models.set_alias("cancer@champion", 1)
    client.models.set_alias("cancer@challenger", 2)
    client.deployments.create("cancer", "cancer@champion")
    runs = [r.id for r in reversed(client.runs.list(pipeline="train"))]

    # Traffic of malignant rows only, logged as `cairn serve` logs it; then one tick of an
    # alert-only monitor finds the drift.
    from cairn.serving.endpoint import Endpoint
    from cairn.serving.predlog import PredictionLog
    from cairn.serving.source import StoreSource

    log = PredictionLog(client.data, max_seconds=0.05)
    endpoint = Endpoint(
        StoreSource(client.data, client.registry, client.deployments),
        "cancer",
        cache_dir=home.parent / "cache",
        predlog=log,
        rng=random.Random(0),
    )
    try:
        endpoint.refresh()
        shifted = frame.iloc[cut:][frame.iloc[cut:]["target"] == 0].iloc[:60]
        for _, row in shifted.iterrows():
            endpoint.predict(row.drop("target").to_frame().T.astype(float))
        log.flush(timeout=30)
    finally:
        endpoint.close()
        log.close()
    client.monitors.create(
        {
            "name": "cancer-drift",
            "model": "cancer@champion",
            "window": {"last": 50, "min_rows": 40},
            "tests": {"method": "test", "alpha": 0.05, "correction": "bonferroni"},
            "drift_share": 0.3,
            "schedule": {"interval": "1h"},
            "action": {"alert": {}},
        }
    )
    client.monitors.tick()
    [drift] = client.events.list(kind="monitor.drift")
    client.repos.create("many")
    client.files.put("many@master:/folder/", {f"f{i:03d}.txt": b"x" for i in range(120)})
    client.repos.create("notes")
    client.files.put("notes@master:/a.txt", b"one\ntwo\nthree\n")
    client.files.put("notes@master:/a.txt", b"one\n2\nthree\n")
    client.data.catalog.dispose()
    del pd
    return Ids(edges_jobs[-1].id, edges_jobs[0].id, runs, drift.id)


def shared(shared_tmp: Path, home: Path) -> Store:
    """A copy at ``home`` of the store built once under ``shared_tmp`` (a folder every
    worker of the session sees), built there first if no worker did yet."""
    from cairn.client import Client

    built = shared_tmp / "console-store"
    with open(shared_tmp / "console-store.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (built / "ids.json").exists():
            shutil.rmtree(built, ignore_errors=True)
            ids = build(built / "home")
            (built / "ids.json").write_text(json.dumps(asdict(ids)))
    ids = Ids(**json.loads((built / "ids.json").read_text()))
    shutil.copytree(built / "home", home)
    return Store(**asdict(ids), home=home, client=Client(home, auto_run=True))


def environment() -> dict[str, str]:
    """The variables the store's transforms need: no sandbox (as the other pipeline tests),
    and this interpreter's folder first on PATH (python3 with scikit-image)."""
    return {
        "CAIRN_SANDBOX": "none",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
