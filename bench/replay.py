"""Replay throughput against `cairn serve`'s, on the same rows, in the same run.

    PYTHONPATH=src python bench/replay.py [--rows 100000] [--requests 2000] [--threads 4]

Sets up a throwaway store: ``Pipeline(StandardScaler, LogisticRegression)`` fitted on
scikit-learn's bundled breast-cancer table (30 float columns), saved with skops and
registered as ``cancer`` (alias champion). Then:

1. **serve**: ``cairn serve cancer@champion --workers N`` (default 2, the cores of the
   machine it was written on) as a child process; ``--threads`` keep-alive clients
   send ``--requests`` single-row MLflow ``/invocations`` requests in all (rows of the
   table, cycled), each answered and logged; requests/s = rows/s over the wall time.
2. **replay**: the prediction log is filled to ``--rows`` single-row records of the same
   table rows (written with the log's own writer, ``PredictionLog``, as the server writes
   them), then ``cairn.monitoring.replay.replay`` answers them all with the same version,
   end to end (reading the log, building the frame, predicting in batches, comparing);
   rows/s over its wall time, and the predict calls alone.

Prints one JSON object; ``--out FILE`` writes it too. The ratio is replay rows/s over
served requests/s (the issue's target: at least 10x).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def setup(home: Path) -> tuple[list[str], list[list[float]]]:
    import skops.io
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import cairn

    frame = load_breast_cancer(as_frame=True).frame
    x = frame.drop(columns="target")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(x, frame["target"])
    path = home.parent / "model.skops"
    skops.io.dump(model, path)
    client = cairn.Client.open(home, auto_run=False)
    client.repos.create("models")
    client.put_files("models", "master", [("/model.skops", path.open("rb"))])
    client.models.register("cancer", "models@master:/model.skops", signature=None)
    client.models.set_alias("cancer@champion", 1)
    return [str(c) for c in x.columns], x.to_numpy().tolist()


def serve(home: Path, columns, rows, requests: int, threads: int, workers: int) -> dict:
    port = free_port()
    env = {**os.environ, "CAIRN_HOME": str(home)}
    cairn = [str(Path(sys.executable).parent / "cairn")]
    log = (home.parent / "serve.log").open("w")
    proc = subprocess.Popen(
        [*cairn, "serve", "cancer@champion", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.time() + 120
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/ping")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline or proc.poll() is not None:
                raise SystemExit("cairn serve did not start; see serve.log")
            time.sleep(0.3)
        bodies = [
            json.dumps({"dataframe_split": {"columns": columns, "data": [row]}}).encode()
            for row in rows
        ]
        errors = []

        def client(k: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            for i in range(k, requests, threads):
                conn.request(
                    "POST",
                    "/invocations",
                    body=bodies[i % len(bodies)],
                    headers={"Content-Type": "application/json", "x-request-id": f"s-{i}"},
                )
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    errors.append(response.status)

        pool = [threading.Thread(target=client, args=(k,)) for k in range(threads)]
        started = time.perf_counter()
        for w in pool:
            w.start()
        for w in pool:
            w.join()
        seconds = time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(60)
    return {
        "requests": requests,
        "threads": threads,
        "workers": workers,
        "errors": len(errors),
        "seconds": seconds,
        "requests_per_second": requests / seconds,
    }


def fill_log(home: Path, columns, rows, total: int) -> dict:
    import cairn
    from cairn.serving.predlog import PredictionLog, make_record

    client = cairn.Client.open(home, auto_run=False)
    log = PredictionLog(client.data, "predictions", max_records=10_000, queue_size=total + 1)
    now = time.time()
    started = time.perf_counter()
    for i in range(total):
        row = rows[i % len(rows)]
        log.submit(
            make_record(
                request_id=uuid.uuid4().hex,
                deployment="cancer",
                model="cancer",
                version=1,
                protocol="mlflow",
                inputs={"columns": columns, "data": [row]},
                outputs=[int(i % 2)],
                latency_ms=1.0,
                target="champion",
                time_=now + i * 1e-5,
            )
        )
    log.flush()
    log.close()
    return {"rows": total, "seconds": time.perf_counter() - started}


def replay_rows(home: Path, total: int) -> dict:
    import cairn
    from cairn.monitoring.replay import replay

    client = cairn.Client.open(home, auto_run=False)
    started = time.perf_counter()
    doc = replay(client.data, client.registry, "cancer@champion", "cancer", last=total)
    seconds = time.perf_counter() - started
    return {
        "rows": doc["compared"],
        "seconds": seconds,
        "rows_per_second": doc["compared"] / seconds,
        "predict_rows_per_second": doc["rows_per_second"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cairn-bench-replay-") as tmp:
        home = Path(tmp) / ".cairn"
        columns, rows = setup(home)
        served = serve(home, columns, rows, args.requests, args.threads, args.workers)
        filled = fill_log(home, columns, rows, args.rows)
        replayed = replay_rows(home, args.rows)
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "load_1m": os.getloadavg()[0],
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "serve": served,
        "log_fill": filled,
        "replay": replayed,
        "ratio": replayed["rows_per_second"] / served["requests_per_second"],
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
