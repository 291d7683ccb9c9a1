"""Fixtures of the server tests: a store holding real scikit-learn models, and the real
``cairn serve`` in a subprocess on a free port.

The store (one per test session and xdist worker) holds model ``digits`` (versions 1-3:
logistic regressions on scikit-learn's handwritten digits, fitted on a bare array, so
their signature is positional) with aliases ``champion`` -> 1 and ``challenger`` -> 2,
model ``rollout`` (the same three, for the test that moves aliases under load),
and model ``cancer`` (version 1: fitted on the breast-cancer DataFrame, so its signature
names 30 columns) with ``champion`` -> 1. The fitted estimators stay in the test process,
so answers can be compared with in-process predictions.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import joblib
import pytest

CAIRN = shutil.which("cairn") or str(Path(sys.executable).with_name("cairn"))


@dataclass
class Models:
    home: Path
    digits: dict[int, Any]  # version -> fitted estimator
    cancer: Any
    digits_x: Any
    cancer_x: Any  # a DataFrame with the 30 named columns

    def overflowing_column(self) -> int:
        """A column of ``digits_x`` where 1e308, a finite double, makes version 1's scaling
        overflow, so that the model raises ValueError."""
        import numpy as np

        for j in range(self.digits_x.shape[1]):
            row = self.digits_x[:1].copy()
            row[0, j] = 1e308
            try:
                with np.errstate(over="ignore"):
                    self.digits[1].predict(row)
            except ValueError:
                return j
        raise AssertionError("no column overflows the model")


def _fit() -> dict[str, Any]:
    from sklearn.datasets import load_breast_cancer, load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_digits(return_X_y=True)
    digits = {
        version: make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=300)).fit(x, y)
        for version, c in ((1, 1.0), (2, 0.001), (3, 0.0001))
    }
    bc = load_breast_cancer(as_frame=True)
    cancer = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))
    cancer.fit(bc.data, bc.target)
    return {"digits": digits, "cancer": cancer, "digits_x": x, "cancer_x": bc.data}


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    from cairn.client import Client

    fitted = _fit()
    home = tmp_path_factory.mktemp("serve") / "store"
    client = Client.open(home, auto_run=False)
    try:
        client.create_repo("models")
        files = []
        for name, model in [*((f"d{v}", m) for v, m in fitted["digits"].items())] + [
            ("bc", fitted["cancer"])
        ]:
            buf = io.BytesIO()
            joblib.dump(model, buf)
            files.append((f"/{name}.joblib", io.BytesIO(buf.getvalue())))
        commit = client.data.put_files("models", "master", files)
        for name in ("digits", "rollout"):  # rollout: for the test that moves its aliases
            for version in (1, 2, 3):
                client.registry.register(name, f"models@{commit.id}:/d{version}.joblib", trust=True)
            client.registry.set_alias(name, "champion", 1)
            client.registry.set_alias(name, "challenger", 2)
        client.registry.register("cancer", f"models@{commit.id}:/bc.joblib", trust=True)
        client.registry.set_alias("cancer", "champion", 1)
    finally:
        client.data.catalog.dispose()
    return Models(home, fitted["digits"], fitted["cancer"], fitted["digits_x"], fitted["cancer_x"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running ``cairn serve``: its URL, process and an httpx client on it."""

    url: str
    port: int
    proc: subprocess.Popen[bytes]
    home: Path
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of /metrics: (name, sorted labels) -> value."""
        from prometheus_client.parser import text_string_to_metric_families

        text = self.http.get("/metrics").text
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def start_server(models: Models) -> Iterator[Callable[..., Server]]:
    """``start_server(spec, *args)`` runs ``cairn serve spec --port P *args`` on the
    session's store and returns once it answers /ping; servers stop at session end."""
    started: list[Server] = []

    def start(spec: str, *args: str, env: dict[str, str] | None = None) -> Server:
        port = free_port()
        log = models.home.parent / f"serve-{port}.log"
        proc = subprocess.Popen(
            [CAIRN, "serve", spec, "--port", str(port), *args],
            env={**os.environ, "CAIRN_HOME": str(models.home), **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=open(log, "wb"),  # noqa: SIM115  (the child owns it)
        )
        server = Server(f"http://127.0.0.1:{port}", port, proc, models.home)
        started.append(server)
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"cairn serve exited {proc.returncode}:\n{log.read_text()}")
            try:
                if server.http.get("/ping", timeout=2).status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                server.stop(signal.SIGKILL)
                pytest.fail(f"cairn serve did not answer /ping:\n{log.read_text()}")
            time.sleep(0.2)

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def digits(start_server: Callable[..., Server]) -> Server:
    """Deployment ``digits-api`` of ``digits@champion`` (positional columns), shared by
    the protocol tests, which do not change its policy; admin routes on."""
    return start_server("digits@champion", "--deployment", "digits-api", "--admin")


@pytest.fixture(scope="session")
def cancer(start_server: Callable[..., Server]) -> Server:
    """Deployment ``cancer`` of ``cancer@champion`` (30 named columns)."""
    return start_server("cancer@champion")
