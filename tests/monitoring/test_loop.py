"""The monitoring loop end to end, without an HTTP server: a training pipeline over a
``training`` repo, v1 champion served by an Endpoint that logs every request, traffic of
scikit-learn's breast-cancer rows (first mixed, then malignant only: a real shift of the
class mix), labels in a ``labels`` repo, and ticks until the challenger is promoted or
rolled back. Also a crash at two steps, resumed by a fresh Client."""

from __future__ import annotations

import io
import json
import random
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from cairn.client import Client
from cairn.ml.events import list_events
from cairn.pipelines.sandbox import sandbox_available
from cairn.serving.endpoint import Endpoint
from cairn.serving.predlog import PredictionLog
from cairn.serving.source import StoreSource

TRAIN = """
import glob, os
import joblib
import pandas as pd
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

pfs = os.environ["CAIRN_PFS"]
frame = pd.concat(pd.read_csv(f) for f in sorted(glob.glob(f"{pfs}/data/**/*.csv", recursive=True)))
x, y = frame.drop(columns="target"), frame["target"]
model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y)
sio.dump(model, f"{pfs}/out/model.skops")
joblib.dump(model, f"{pfs}/out/model.joblib")
"""


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.setenv("CAIRN_SANDBOX", "none")
    for name in ("CAIRN_PFS", "PACH_DATUM_ID", "CAIRN_DATUM_CHANNEL", "CAIRN_HOME"):
        monkeypatch.delenv(name, raising=False)
    sandbox_available.cache_clear()
    c = Client(tmp_path / "home", auto_run=True)
    yield c
    c.data.catalog.dispose()


@dataclass
class World:
    client: Client
    tmp: Path
    frame: pd.DataFrame
    endpoint: Endpoint
    log: PredictionLog
    labels: list[tuple[str, int]]
    labels_as: str = "csv"

    def send(self, rows: pd.DataFrame, *, flip: bool = False) -> list[Any]:
        """One request per row; the truth (flipped if asked) goes to labels@master."""
        self.endpoint.refresh()
        answers = []
        for _, row in rows.iterrows():
            frame = row.drop("target").to_frame().T.astype(float)
            p = self.endpoint.predict(frame)
            answers.append(p)
            label = int(row["target"])
            self.labels.append((p.request_id, 1 - label if flip else label))
        self.log.flush(timeout=30)
        if self.labels_as == "parquet":
            table = pd.DataFrame(self.labels, columns=["request_id", "label"])
            body = table.to_parquet(index=False)
        else:
            body = ("request_id,label\n" + "".join(f"{r},{y}\n" for r, y in self.labels)).encode()
        path = f"/labels.{self.labels_as}"
        self.client.data.put_files("labels", "master", [(path, io.BytesIO(body))])
        return answers


def rule(**retrain: Any) -> dict[str, Any]:
    return {
        "name": "cancer-drift",
        "model": "cancer@champion",
        "window": {"last": 50, "min_rows": 40},
        "tests": {"method": "test", "alpha": 0.05, "correction": "bonferroni"},
        "drift_share": 0.3,
        "schedule": {"interval": "1h"},
        "action": {
            "retrain": {
                "source": "window",
                "labels": "labels@master",
                "label": "target",
                "to": "training@master:/data/",
                "pipeline": "train",
                "model_path": "/model.skops",
                "canary": {"percent": 50, "requests": 8},
                "evaluate": {
                    "holdout": "holdout@master:/holdout.csv",
                    "label": "target",
                    "metric": "accuracy",
                    "tolerance": 0.0,
                },
                **retrain,
            }
        },
    }


@pytest.fixture
def world(client: Client, tmp_path: Path) -> Iterator[World]:
    frame = load_breast_cancer(as_frame=True).frame
    idx = pd.Series(range(len(frame)))
    base = frame[(idx % 4).isin([0, 2]).to_numpy()]
    client.create_repo("training")
    client.create_repo("holdout")
    client.create_repo("labels")
    client.data.put_files(
        "training", "master", [("/data/base.csv", io.BytesIO(base.to_csv(index=False).encode()))]
    )
    holdout = frame[((idx % 4 == 3) & (frame["target"] == 0)).to_numpy()]
    client.data.put_files(
        "holdout", "master", [("/holdout.csv", io.BytesIO(holdout.to_csv(index=False).encode()))]
    )
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "train.py").write_text(TRAIN)
    spec = {
        "pipeline": {"name": "train"},
        "transform": {"cmd": [sys.executable, "train.py"]},
        "input": {"pfs": {"repo": "training", "glob": "/", "name": "data"}},
    }
    (folder / "spec.json").write_text(json.dumps(spec))
    client.create_pipelines(folder / "spec.json")
    client.registry.register("cancer", "train@master:/model.skops")
    client.registry.set_alias("cancer", "champion", 1)
    client.deployments.ensure("cancer", "cancer", "champion")
    log = PredictionLog(client.data, max_seconds=0.05)
    endpoint = Endpoint(
        StoreSource(client.data, client.registry, client.deployments),
        "cancer",
        cache_dir=tmp_path / "cache",
        predlog=log,
        rng=random.Random(0),
    )
    endpoint.refresh()
    yield World(client, tmp_path, frame, endpoint, log, [])
    endpoint.close()
    log.close()


def traffic(world: World) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = world.frame
    idx = pd.Series(range(len(frame)))
    pool = frame[(idx % 4 == 1).to_numpy()]
    return pool.iloc[:60], pool[pool["target"] == 0]


def kinds(client: Client) -> list[str]:
    return [e.kind for e in list_events(client.data.catalog, subject="cancer-drift")]


def drive_to_canary(world: World, *, flip: bool = False) -> None:
    c = world.client
    mixed, shifted = traffic(world)
    world.send(mixed)
    [state] = c.monitors.tick()
    assert state.step == "idle" and state.info["last_check"]["drifted"] is False
    world.send(shifted, flip=flip)
    [state] = c.monitors.tick()
    assert state.step == "canary", state
    assert kinds(c)[-5:] == [
        "monitor.drift",
        "monitor.data_committed",
        "monitor.model_trained",
        "monitor.challenger_registered",
        "monitor.canary",
    ]
    assert c.registry.aliases("cancer") == {"champion": 1, "challenger": 2}
    assert c.deployments.get("cancer").policy.percentages() == {
        "champion": 50.0,
        "challenger": 50.0,
    }


def test_drift_retrains_canaries_and_promotes(world: World) -> None:
    c = world.client
    c.monitors.create(rule())
    drive_to_canary(world)
    drift = list_events(c.data.catalog, subject="cancer-drift", kind="monitor.drift")[-1]
    assert drift.info["share_drifted"] >= 0.3 and drift.info["features"]
    assert drift.info["n_current"] == 50
    # The window went into training: the new model's lineage names that commit.
    committed = list_events(c.data.catalog, kind="monitor.data_committed")[-1].info
    lineage = c.registry.lineage("cancer/2")
    assert lineage["training"]["input_commits"]["data"]["commit"] == committed["commit"]
    assert committed["labelled"] == 50
    # Not enough canary requests yet: the monitor waits.
    [state] = c.monitors.tick()
    assert state.step == "canary"
    _, shifted = traffic(world)
    answers = world.send(shifted.iloc[:30])
    assert {a.version.version for a in answers} == {1, 2}
    [state] = c.monitors.tick()
    assert state.step == "idle"
    assert kinds(c)[-2:] == ["monitor.evaluated", "monitor.promoted"]
    evaluated = list_events(c.data.catalog, kind="monitor.evaluated")[-1].info
    assert evaluated["decision"] == "promote"
    assert evaluated["holdout"]["challenger"] >= evaluated["holdout"]["champion"]
    assert evaluated["live"]["challenger"]["requests"] >= 8
    assert c.registry.aliases("cancer") == {"champion": 2}
    assert c.deployments.get("cancer").policy.percentages() == {"champion": 100.0}
    assert state.info["last_cycle"]["outcome"] == "promoted"
    # The next check only looks at traffic after the promotion: no second cycle.
    [state] = c.monitors.tick()
    assert state.step == "idle" and state.cycle == 1


def test_a_pickle_challenger_is_registered_trusted_when_the_rule_says_so(world: World) -> None:
    # a joblib model_path needs ``trust: true`` in the rule (the rule refuses it otherwise);
    # the challenger is then registered trusted, so the endpoint loads it for the canary
    c = world.client
    c.monitors.create(rule(model_path="/model.joblib", trust=True))
    drive_to_canary(world)
    challenger = c.registry.get_version("cancer", 2)
    assert (challenger.path, challenger.trusted) == ("/model.joblib", True)
    _, shifted = traffic(world)
    answers = world.send(shifted.iloc[:30])
    assert {a.version.version for a in answers} == {1, 2}


def test_a_worse_challenger_is_rolled_back_with_reasons(world: World) -> None:
    c = world.client
    c.monitors.create(rule())
    drive_to_canary(world, flip=True)  # the window's labels are wrong: a worse model
    _, shifted = traffic(world)
    world.send(shifted.iloc[:30], flip=True)
    [state] = c.monitors.tick()
    assert state.step == "idle"
    assert kinds(c)[-2:] == ["monitor.evaluated", "monitor.rolled_back"]
    rolled = list_events(c.data.catalog, kind="monitor.rolled_back")[-1].info
    assert rolled["version"] == 2 and rolled["champion"] == 1
    assert any("worse" in r for r in rolled["reasons"])
    assert c.registry.aliases("cancer") == {"champion": 1}
    assert c.deployments.get("cancer").policy.percentages() == {"champion": 100.0}


def test_a_replay_refuses_a_disagreeing_challenger_before_any_live_request(world: World) -> None:
    # v2 learns the shifted (malignant) window labelled benign: on the logged traffic it
    # disagrees with v1, so the gate rolls it back from challenger_registered, unserved.
    c = world.client
    c.monitors.create(rule(replay={"min_agreement": 0.95}))
    mixed, shifted = traffic(world)
    world.send(mixed)
    c.monitors.tick()
    world.send(shifted, flip=True)
    [state] = c.monitors.tick()
    assert state.step == "idle" and state.info["last_cycle"]["outcome"] == "rolled_back"
    assert kinds(c)[-3:] == [
        "monitor.challenger_registered",
        "monitor.evaluated",
        "monitor.rolled_back",
    ]
    evaluated = list_events(c.data.catalog, kind="monitor.evaluated")[-1].info
    gate = evaluated["replay"]
    assert gate["passed"] is False and gate["version"] == 2 and gate["agreement"] < 0.95
    assert gate["compared"] == len(mixed) + len(shifted)
    # No revision of the deployment ever routed to the challenger.
    targets = {r.target for rev in c.deployments.history("cancer") for r in rev.policy.routes}
    assert targets == {"champion"}
    assert c.registry.aliases("cancer") == {"champion": 1}


def test_a_replay_that_agrees_lets_the_challenger_into_its_canary(world: World) -> None:
    c = world.client
    c.monitors.create(rule(replay={"min_agreement": 0.5, "metric": "accuracy"}))
    drive_to_canary(world)
    canary = list_events(c.data.catalog, kind="monitor.canary")[-1].info
    gate = canary["replay"]
    assert gate["passed"] is True and gate["agreement"] >= 0.5
    labelled = gate["labels"]
    assert labelled["labelled"] == gate["compared"] and labelled["metric"] == "accuracy_score"
    assert labelled["candidate"] >= labelled["production"]


def test_a_canary_that_gets_no_traffic_is_rolled_back_after_max_seconds(world: World) -> None:
    c = world.client
    c.monitors.create(rule())
    drive_to_canary(world)
    [state] = c.monitors.tick()  # no request reached the challenger: keep waiting
    assert state.step == "canary"
    started = state.info["cycle"]["canary_started"]
    c.loop.clock = lambda: started + 3601  # the default max_seconds (1 h) has passed
    [state] = c.monitors.tick()
    assert state.step == "idle"
    rolled = list_events(c.data.catalog, kind="monitor.rolled_back")[-1].info
    assert any("canary timed out" in r for r in rolled["reasons"])
    assert c.registry.aliases("cancer") == {"champion": 1}
    assert c.deployments.get("cancer").policy.percentages() == {"champion": 100.0}


def test_a_crash_resumes_and_never_promotes_an_unevaluated_model(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cairn.ml.registry import Registry
    from cairn.monitoring import steps

    c = world.client
    c.monitors.create(rule())
    mixed, shifted = traffic(world)
    world.send(mixed)
    c.monitors.tick()
    world.send(shifted)
    real_set_alias = Registry.set_alias

    def crash(self: Registry, name: str, alias: str, *args: Any, **kw: Any) -> Any:
        if alias == "challenger":
            raise RuntimeError("killed between register and set alias")
        return real_set_alias(self, name, alias, *args, **kw)

    monkeypatch.setattr(Registry, "set_alias", crash)
    with pytest.raises(RuntimeError):
        c.monitors.tick()
    assert c.monitors.state("cancer-drift").step == "model_trained"
    monkeypatch.setattr(Registry, "set_alias", real_set_alias)

    fresh = Client(c.home, auto_run=True)
    [state] = fresh.monitors.tick()
    assert state.step == "canary"
    assert [v.version for v in fresh.registry.list_versions("cancer")] == [1, 2]  # no duplicate
    world.send(shifted.iloc[:30])

    def no_evaluation(*args: Any, **kw: Any) -> Any:
        raise RuntimeError("killed while evaluating")

    monkeypatch.setattr(steps, "evaluate", no_evaluation)
    with pytest.raises(RuntimeError):
        fresh.monitors.tick()
    assert fresh.monitors.state("cancer-drift").step == "canary"
    assert fresh.registry.aliases("cancer")["champion"] == 1
    assert "monitor.promoted" not in kinds(fresh)
    monkeypatch.undo()
    fresh.data.catalog.dispose()

    again = Client(c.home, auto_run=True)
    [state] = again.monitors.tick()
    assert state.step == "idle" and state.info["last_cycle"]["outcome"] == "promoted"
    assert again.registry.aliases("cancer") == {"champion": 2}
    assert kinds(again).count("monitor.evaluated") == 1
    again.data.catalog.dispose()


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_alert_only_records_an_event_and_posts_the_report(world: World) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Hook.received = []
    try:
        c = world.client
        alert = rule()
        alert["action"] = {"alert": {"webhook": f"http://127.0.0.1:{server.server_port}/hook"}}
        c.monitors.create(alert)
        broken = {**alert, "name": "broken-hook"}
        broken["action"] = {"alert": {"webhook": "http://127.0.0.1:9/nothing", "timeout": 1}}
        c.monitors.create(broken)
        mixed, shifted = traffic(world)
        world.send(mixed)
        c.monitors.tick()
        assert _Hook.received == []
        world.send(shifted)
        states = {s.monitor: s for s in c.monitors.tick()}
        assert states["cancer-drift"].step == "idle" and states["cancer-drift"].cycle == 1
        assert c.loop.flush_webhooks(timeout=30)
        [posted] = _Hook.received
        assert posted["kind"] == "monitor.drift" and posted["monitor"] == "cancer-drift"
        assert posted["info"]["share_drifted"] >= 0.3
        assert kinds(c)[-1] == "monitor.drift"
        assert [e.kind for e in list_events(c.data.catalog, subject="broken-hook")][-2:] == [
            "monitor.drift",
            "monitor.webhook_failed",
        ]
        assert c.registry.aliases("cancer") == {"champion": 1}  # alert only: nothing moved
    finally:
        server.shutdown()


def test_parquet_labels_train_the_window_and_score_the_canary(world: World) -> None:
    # the loop reads labels as ``cairn monitor --labels`` does: Parquet too
    world.labels_as = "parquet"
    c = world.client
    c.monitors.create(rule())
    drive_to_canary(world)
    committed = list_events(c.data.catalog, kind="monitor.data_committed")[-1].info
    assert committed["labelled"] == 50
    _, shifted = traffic(world)
    world.send(shifted.iloc[:30])
    [state] = c.monitors.tick()
    assert state.step == "idle"
    evaluated = list_events(c.data.catalog, kind="monitor.evaluated")[-1].info
    challenger = evaluated["live"]["challenger"]
    assert challenger["labelled"] > 0 and evaluated["metric"] in challenger


class _SlowHook(BaseHTTPRequestHandler):
    """Answers after ``release`` is set or ``SLOW`` seconds, whichever comes first."""

    SLOW = 15.0
    release = threading.Event()
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(json.loads(body))
        self.release.wait(self.SLOW)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_a_slow_webhook_does_not_hold_the_tick(world: World) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowHook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _SlowHook.release.clear()
    _SlowHook.received = []
    try:
        c = world.client
        alert = rule()
        url = f"http://127.0.0.1:{server.server_port}/hook"
        alert["action"] = {"alert": {"webhook": url, "timeout": 30}}
        c.monitors.create(alert)
        mixed, shifted = traffic(world)
        world.send(mixed)
        c.monitors.tick()
        world.send(shifted)
        started = time.monotonic()
        [state] = c.monitors.tick()
        took = time.monotonic() - started
        assert state.cycle == 1 and kinds(c)[-1] == "monitor.drift"
        assert took < _SlowHook.SLOW / 2  # the tick did not wait for the webhook's answer
        _SlowHook.release.set()
        assert c.loop.flush_webhooks(timeout=30)
        assert [p["kind"] for p in _SlowHook.received] == ["monitor.drift"]
        assert "monitor.webhook_failed" not in kinds(c)
    finally:
        _SlowHook.release.set()
        server.shutdown()


def test_every_step_has_a_handler() -> None:
    from cairn.monitoring import loop

    assert set(loop._STEP_HANDLERS) == set(loop.MonitorStep)
    assert loop.STEPS == tuple(loop.MonitorStep)
