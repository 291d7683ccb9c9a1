"""Workloads the campaign kills that are not one ``cairn`` command: run in a fork of the
fork server (``forker.py``), given strings."""

from __future__ import annotations

import json
from pathlib import Path


def predlog_writer(home: str, batches: str, per_batch: str) -> None:
    """Submit ``batches`` x ``per_batch`` records to a PredictionLog over the store and
    flush after each batch; print one line per acknowledged (flushed) record id."""
    from cairn.client import Client
    from cairn.serving.predlog import PredictionLog, make_record

    client = Client(Path(home), auto_run=False)
    start = len(client.data.list_repos())  # any read: the store opens before the clock
    log = PredictionLog(client.data, "plog", max_records=int(per_batch), max_seconds=0.05)
    for b in range(int(batches)):
        ids = [f"{start}-{b}-{i}" for i in range(int(per_batch))]
        for rid in ids:
            log.submit(
                make_record(
                    request_id=rid,
                    deployment="camp",
                    model="m",
                    version=1,
                    protocol="mlflow",
                    inputs={"columns": ["x"], "data": [[b]]},
                    outputs=[b],
                    latency_ms=1.0,
                )
            )
        log.flush(timeout=60)
        print(json.dumps(ids), flush=True)
    log.close()


def writer(home: str, who: str, commits: str) -> None:
    """``commits`` one-file commits to ``w@master``, each at its own path; print the
    commit ids. Any exception is a failure the writer did not ask for."""
    import io

    from cairn.client import Client

    client = Client(Path(home), auto_run=False)
    for i in range(int(commits)):
        info = client.data.put_files(
            "w", None, [(f"w{who}/c{i}", io.BytesIO(f"{who}:{i}".encode()))]
        )
        print(info.id, flush=True)
    client.data.catalog.dispose()


def registrar(home: str, who: str, count: str) -> None:
    """Register ``count`` versions of model ``m`` (a command model); print each number."""
    from cairn.client import Client

    client = Client(Path(home), auto_run=False)
    for _ in range(int(count)):
        version = client.models.register("m", "models@master:/echo", command=["python3", "run.py"])
        print(version.version, flush=True)
    client.data.catalog.dispose()
