"""``cairn serve`` with a remote store: a real ``cairn server`` (tests/team_server.py) holds
the store, and ``cairn serve`` runs as a subprocess with only ``CAIRN_URL`` (no store
folder): it fetches the model's files, follows the traffic policy and writes the
prediction log through the server, where other clients and ``cairn monitor`` see them."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pytest
from tests.server.conftest import CAIRN, free_port
from tests.team_server import team_server

from cairn.api.remote.client import RemoteClient
from cairn.catalog.errors import PermissionDenied

POLL = "0.2"  # seconds between the model server's policy checks
FOLLOW = 5.0  # seconds a change made by another client may take to be served


@dataclass
class World:
    url: str
    home: Path
    client: RemoteClient
    frame: Any  # breast-cancer features, 30 named columns
    fitted: dict[int, Any]  # version -> estimator
    tmp: Path


def _fit() -> tuple[Any, Any, dict[int, Any]]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    bc = load_breast_cancer(as_frame=True)
    fitted = {
        v: make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=300)).fit(
            bc.data, bc.target
        )
        for v, c in ((1, 1.0), (2, 1e-4))
    }
    return bc.data, bc.target, fitted


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("serve-remote")
    frame, target, fitted = _fit()
    with team_server(tmp / "store", worker=False) as url, RemoteClient(url) as client:
        client.repos.create("models")
        blobs = {}
        for version, model in fitted.items():
            buf = io.BytesIO()
            joblib.dump(model, buf)
            blobs[f"v{version}.joblib"] = buf.getvalue()
        commit = client.files.put("models@master:/", blobs)
        for version in fitted:
            client.models.register("cancer", f"models@{commit.id}:/v{version}.joblib", trust=True)
        client.models.set_alias("cancer@champion", 1)
        client.models.set_alias("cancer@challenger", 2)
        client.repos.create("cancer-data")
        train = frame.assign(target=target)
        client.files.put("cancer-data@master:/train.csv", train.to_csv(index=False).encode())
        yield World(url, tmp / "store", client, frame, fitted, tmp)


@dataclass
class Served:
    url: str
    proc: subprocess.Popen[bytes]
    http: httpx.Client
    cache: Path


def start_serve(world: World, *args: str, token: str | None = None) -> Served:
    """``cairn serve cancer@champion *args`` with CAIRN_URL set and no store folder; returns
    once it answers /ping."""
    port = free_port()
    cache = world.tmp / f"cache-{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    env.update(
        CAIRN_URL=world.url,
        CAIRN_CONFIG_DIR=str(world.tmp / "config"),  # no saved context of the user's
        CAIRN_SERVE_POLL=POLL,
        XDG_CACHE_HOME=str(cache),
    )
    if token is not None:
        env["CAIRN_TOKEN"] = token
    log = world.tmp / f"serve-{port}.log"
    proc = subprocess.Popen(
        [CAIRN, "serve", "cancer@champion", "--port", str(port), *args],
        env=env,
        cwd=world.tmp,  # no .cairn folder here or above: only the server has the store
        stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"),  # noqa: SIM115  (the child owns it)
    )
    served = Served(f"http://127.0.0.1:{port}", proc, httpx.Client(timeout=30), cache)
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            pytest.fail(f"cairn serve exited {proc.returncode}:\n{log.read_text()}")
        try:
            if served.http.get(f"{served.url}/ping", timeout=2).status_code == 200:
                return served
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"cairn serve did not answer /ping:\n{log.read_text()}")
        time.sleep(0.1)


def stop_serve(served: Served) -> None:
    served.http.close()
    served.proc.send_signal(signal.SIGTERM)
    try:
        served.proc.wait(30)
    except subprocess.TimeoutExpired:
        served.proc.kill()
        served.proc.wait()


@pytest.fixture(scope="module")
def served(world: World) -> Iterator[Served]:
    found = start_serve(world, "--admin")
    yield found
    stop_serve(found)


def invoke(served: Served, frame: Any) -> httpx.Response:
    body = {"dataframe_split": {"columns": list(frame.columns), "data": frame.values.tolist()}}
    return served.http.post(f"{served.url}/invocations", json=body)


def wait_for_version(served: Served, frame: Any, version: str) -> float:
    """Seconds until /invocations answers from ``version``; fails after FOLLOW."""
    started = time.monotonic()
    while True:
        r = invoke(served, frame)
        assert r.status_code == 200, r.text
        if r.headers["x-cairn-model-version"] == version:
            return time.monotonic() - started
        if time.monotonic() - started > FOLLOW:
            pytest.fail(f"still served by version {r.headers['x-cairn-model-version']}")
        time.sleep(0.05)


def test_serves_invocations_and_v2_from_files_fetched_through_the_server(
    world: World, served: Served
) -> None:
    frame = world.frame.iloc[:20]
    r = invoke(served, frame)
    assert r.status_code == 200, r.text
    assert r.headers["x-cairn-model-version"] == "1"
    np.testing.assert_array_equal(r.json()["predictions"], world.fitted[1].predict(frame))
    inputs = [
        {"name": c, "shape": [len(frame)], "datatype": "FP64", "data": frame[c].tolist()}
        for c in frame.columns
    ]
    r = served.http.post(f"{served.url}/v2/models/cancer/infer", json={"inputs": inputs})
    assert r.status_code == 200, r.text
    assert r.json()["model_version"] == "1"
    np.testing.assert_array_equal(r.json()["outputs"][0]["data"], world.fitted[1].predict(frame))
    meta = served.http.get(f"{served.url}/v2/models/cancer").json()
    assert [t["name"] for t in meta["inputs"]] == list(frame.columns)
    # The files came through the server into the user's cache, in a folder named by the
    # version's content hash; the model server has no store of its own.
    version = world.client.models.get("cancer/1")
    cached = served.cache / "cairn" / "serving" / "cancer" / f"1-{version.info['hash'][:16]}"
    assert (cached / "v1.joblib").read_bytes() == world.client.files.read(version.ref)
    assert not (world.tmp / ".cairn").exists()


def test_canary_rollback_and_alias_moves_by_another_client_take_effect(
    world: World, served: Served
) -> None:
    frame = world.frame.iloc[:3]
    deployments = world.client.deployments
    before = deployments.get("cancer").revision
    deployments.apply("cancer", canary=("challenger", 100))
    assert wait_for_version(served, frame, "2") < FOLLOW
    # a V2 path naming version 2 answers now, since the policy routes to it
    r = served.http.get(f"{served.url}/v2/models/cancer/versions/2/ready")
    assert r.json()["ready"] is True
    deployments.rollback("cancer")
    assert wait_for_version(served, frame, "1") < FOLLOW
    assert deployments.get("cancer").revision == before + 2
    world.client.models.set_alias("cancer@champion", 2)
    try:
        assert wait_for_version(served, frame, "2") < FOLLOW
    finally:
        world.client.models.rollback("cancer@champion")
    assert wait_for_version(served, frame, "1") < FOLLOW


def test_predictions_are_logged_through_the_server_where_monitor_reads_them(
    world: World, served: Served
) -> None:
    frame = world.frame.iloc[100:160]
    for start in range(0, len(frame), 20):
        assert invoke(served, frame.iloc[start : start + 20]).status_code == 200
    flushed = served.http.post(f"{served.url}/admin/log/flush").json()
    assert flushed["commit"] is not None
    assert world.client.commits.get("predictions@master").id == flushed["commit"]
    report = world.client.monitors.check(
        "cancer@champion",
        reference="cancer-data@master:/train.csv",
        last=60,
        min_rows=30,
    )
    assert report.window["rows"] == 60
    assert report.window["commit"] == flushed["commit"]
    assert report.deployment == "cancer"


def test_with_auth_active_it_serves_with_the_token_of_whoever_runs_it(
    tmp_path: Path,
) -> None:
    frame, target, fitted = _fit()
    with team_server(tmp_path / "store", worker=False) as url:
        root = RemoteClient(url).auth.activate()
        with RemoteClient(url, root) as admin:
            buf = io.BytesIO()
            joblib.dump(fitted[1], buf)
            admin.repos.create("models")
            commit = admin.files.put("models@master:/v1.joblib", buf.getvalue())
            admin.models.register("cancer", f"models@{commit.id}:/v1.joblib", trust=True)
            admin.models.set_alias("cancer@champion", 1)
            admin.deployments.create("cancer", "cancer@champion")
            admin.repos.create("predictions")
            _, alice = admin.auth.create_token("alice")
            admin.auth.set_role("model", "cancer", "alice", "repoReader")
            admin.auth.set_role("repo", "predictions", "alice", "repoWriter")
            world = World(url, tmp_path / "store", admin, frame, fitted, tmp_path)
            # alice reads the model, not the repo holding its files: enough to serve it
            with RemoteClient(url, alice) as as_alice, pytest.raises(PermissionDenied):
                as_alice.files.read(f"models@{commit.id}:/v1.joblib")
            served = start_serve(world, "--admin", token=alice)
            try:
                r = invoke(served, frame.iloc[:5])
                assert r.status_code == 200, r.text
                np.testing.assert_array_equal(r.json()["predictions"], fitted[1].predict(frame[:5]))
                # the admin routes ask the server: no token 401, a reader 403, root allowed
                flush = f"{served.url}/admin/log/flush"
                assert served.http.post(flush).status_code == 401
                as_reader = {"authorization": f"Bearer {alice}"}
                assert served.http.post(flush, headers=as_reader).status_code == 403
                as_root = {"authorization": f"Bearer {root}"}
                answer = served.http.post(flush, headers=as_root)
                assert answer.status_code == 200, answer.text
                assert admin.commits.get("predictions@master").id == answer.json()["commit"]
            finally:
                stop_serve(served)
