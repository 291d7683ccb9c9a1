"""A slow model does not hold the server: while every prediction thread waits on a model
that sleeps, the health, metrics and admin routes still answer at once (issue 18: before,
``GET /ping`` waited for the model, 2.6 s behind a 3 s prediction)."""

from __future__ import annotations

import io
import sys
import threading
import time
from collections.abc import Callable

import httpx
from tests.server.conftest import Models, Server

from cairn.server.app import PREDICT_THREADS

SLEEP = 1.5  # seconds each prediction takes
# A command model: reads the MLflow request on stdin, sleeps, answers one 0 per row.
SLEEPY = (
    "import json, sys, time\n"
    "rows = json.load(sys.stdin)['dataframe_split']['data']\n"
    f"time.sleep({SLEEP})\n"
    "print(json.dumps([0] * len(rows)))\n"
)
QUICK = 0.05  # seconds a route may take while the predictions are busy


def _register_sleepy(models: Models) -> None:
    from cairn.client import Client
    from cairn.data import NotFound

    client = Client.open(models.home, auto_run=False)
    try:
        try:
            client.registry.resolve("sleepy/1")
            return
        except NotFound:
            pass
        client.data.create_repo("sleepy")
        commit = client.data.put_files("sleepy", "master", [("/model.py", io.BytesIO(b"#\n"))])
        client.registry.register(
            "sleepy",
            f"sleepy@{commit.id}:/model.py",
            flavor="command",
            command=[sys.executable, "-c", SLEEPY],
            timeout=60,
        )
    finally:
        client.data.catalog.dispose()


def test_health_metrics_and_admin_answer_while_predictions_are_busy(
    models: Models, start_server: Callable[..., Server]
) -> None:
    _register_sleepy(models)
    server = start_server("sleepy/1", "--admin")
    answers: list[int] = []

    def predict() -> None:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            body = {"dataframe_split": {"columns": ["x"], "data": [[1.0]]}}
            answers.append(http.post("/invocations", json=body).status_code)

    # More requests than prediction threads: some predict, the rest wait their turn.
    busy = [threading.Thread(target=predict) for _ in range(PREDICT_THREADS + 2)]
    for thread in busy:
        thread.start()
    time.sleep(0.5)  # the models are sleeping now
    took: dict[str, float] = {}
    try:
        for method, path in [
            ("GET", "/ping"),
            ("GET", "/health"),
            ("GET", "/v2/health/live"),
            ("GET", "/v2/health/ready"),
            ("GET", "/metrics"),
            ("POST", "/admin/log/flush"),
        ]:
            best = None
            for _ in range(3):  # the fastest of three: the machine is shared, the loop not
                started = time.perf_counter()
                reply = server.http.request(method, path)
                elapsed = time.perf_counter() - started
                assert reply.status_code == 200, (path, reply.text)
                best = elapsed if best is None else min(best, elapsed)
            took[path] = best
        assert max(took.values()) < QUICK, took
        assert all(t.is_alive() for t in busy), "the predictions ended before the timing"
    finally:
        for thread in busy:
            thread.join(60)
    assert answers == [200] * len(busy)
