"""The prediction log: what is acknowledged is in the repo, in the documented format, even
after the writing process is killed; drops are counted; concurrent writers lose nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cairn.client import Client
from cairn.data import Ref
from cairn.serving.predlog import PredictionLog, make_record, read_records


def _record(i: int, deployment: str = "web", **extra: object) -> dict[str, object]:
    return make_record(
        request_id=f"r{i}",
        deployment=deployment,
        model="digits",
        version=1 + i % 2,
        protocol="mlflow" if i % 3 else "v2",
        inputs={"columns": ["a", "b"], "data": [[i, float(i) / 2]]},
        outputs=[i % 10],
        latency_ms=0.5,
        **extra,  # type: ignore[arg-type]
    )


def test_records_are_committed_in_the_documented_format(client):
    log = PredictionLog(client.data, max_records=1000, max_seconds=60)
    frame = pd.DataFrame({"x": [1.5, np.nan], "label": ["a", "b"]})
    log.submit(
        make_record(
            request_id="q1",
            deployment="web",
            model="digits",
            version=2,
            protocol="v2",
            inputs=frame,
            outputs=np.array([3, 7]),
            latency_ms=1.25,
            target="challenger",
            time_=1735732800.5,  # 2025-01-01T12:00:00.5Z
        )
    )
    commit = log.flush(timeout=60)
    log.close()
    assert commit == client.data.inspect_branch("predictions", "master").head
    paths = [p for p, _ in client.data.walk_files(Ref("predictions", commit))]
    [path] = paths
    folder, day, name = path.split("/")
    assert (folder, day) == ("web", "2025-01-01")
    stamp, pid, seq = name.removesuffix(".jsonl").split("-")
    assert stamp == "20250101T120000.500000Z" and pid == str(os.getpid())
    body = b"".join(client.data.read_file(Ref("predictions", commit, path=path)))
    [line] = body.decode().splitlines()
    assert json.loads(line) == {
        "request_id": "q1",
        "time": 1735732800.5,
        "deployment": "web",
        "model": "digits",
        "version": 2,
        "target": "challenger",
        "protocol": "v2",
        "method": "predict",
        "inputs": {"columns": ["x", "label"], "data": [[1.5, "a"], [None, "b"]]},
        "outputs": [3, 7],
        "latency_ms": 1.25,
        "shadow": False,
        "status": "ok",
        "error": None,
    }
    assert log.stats["committed"] == 1 and log.stats["dropped"] == 0


_values = st.one_of(
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.booleans(),
    st.none(),
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    batches=st.lists(
        st.lists(
            st.tuples(st.sampled_from(["web", "api", "b-2"]), st.lists(_values, max_size=4)),
            max_size=15,
        ),
        min_size=1,
        max_size=3,
    ),
    max_records=st.integers(1, 20),
)
def test_everything_flushed_is_there_after_reopening(tmp_path_factory, batches, max_records):
    home = tmp_path_factory.mktemp("log") / "home"
    client = Client(home, auto_run=False)
    log = PredictionLog(client.data, max_records=max_records, max_seconds=30)
    sent: dict[str, dict[str, object]] = {}
    acked = None
    for batch in batches:
        for deployment, row in batch:
            i = len(sent)
            record = make_record(
                request_id=f"r{i}",
                deployment=deployment,
                model="m",
                version=1,
                protocol="mlflow",
                inputs={"columns": [f"c{j}" for j in range(len(row))], "data": [row]},
                outputs=row,
                latency_ms=0.1,
            )
            assert log.submit(record)
            sent[record["request_id"]] = json.loads(json.dumps(record))  # type: ignore[index]
        acked = log.flush(timeout=60)
    log.close()
    client.data.catalog.dispose()
    again = Client(home, auto_run=False)
    try:
        if not sent:
            assert acked is None
            return
        found = {r["request_id"]: r for r in read_records(again.data, commit=acked)}
        assert found == sent
    finally:
        again.data.catalog.dispose()


def test_a_full_queue_counts_drops_and_a_blocked_commit_loses_nothing(client, caplog):
    client.create_repo("predictions")
    client.data.start_commit("predictions", "master")  # somebody's open commit blocks the log
    log = PredictionLog(client.data, max_records=5, max_seconds=0.05, queue_size=10)
    for i in range(5):
        assert log.submit(_record(i))
    with pytest.raises(TimeoutError):
        log.flush(timeout=1)  # the writer took the five and keeps failing
    assert log.stats["errors"] >= 1 and "open commit" in log.stats["last_error"]
    accepted = [log.submit(_record(i)) for i in range(5, 20)]
    assert accepted == [True] * 10 + [False] * 5
    stats = log.stats
    assert (stats["submitted"], stats["dropped"], stats["queued"]) == (15, 5, 15)
    assert sum("dropping records" in r.getMessage() for r in caplog.records) == 1  # one burst
    client.data.finish_commit("predictions", "master")
    commit = log.flush(timeout=60)
    log.close()
    got = sorted(int(r["request_id"][1:]) for r in read_records(client.data, commit=commit))
    assert got == list(range(15))
    assert log.stats["committed"] == 15 and log.stats["dropped"] == 5


def test_close_commits_what_is_queued_and_later_submits_are_dropped(client):
    log = PredictionLog(client.data, max_records=1000, max_seconds=60)
    for i in range(30):
        log.submit(_record(i, deployment=f"d{i % 3}"))
    log.close()
    assert log.stats["committed"] == 30 and log.stats["commits"] == 1
    assert not log.submit(_record(99))
    assert log.stats["dropped"] == 1
    assert {r["deployment"] for r in read_records(client.data)} == {"d0", "d1", "d2"}
    assert len(list(read_records(client.data, deployment="d1"))) == 10


_WRITER = textwrap.dedent(
    """
    import sys, time
    from cairn.client import Client
    from cairn.serving.predlog import PredictionLog, make_record

    home, tag, count, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    client = Client(home, auto_run=False)
    log = PredictionLog(client.data, max_records=25, max_seconds=0.05)

    def record(i):
        return make_record(request_id=f"{tag}-{i}", deployment="web", model="m", version=1,
                           protocol="mlflow", inputs={"columns": ["x"], "data": [[i]]},
                           outputs=[i], latency_ms=0.1)

    for i in range(count):
        assert log.submit(record(i))
        if mode == "close" and i % 20 == 19:  # many small commits, racing the other process
            log.flush(timeout=120)
    print(log.flush(timeout=120), flush=True)
    if mode == "kill":
        for i in range(count, count + 100000):  # never acknowledged: may or may not land
            log.submit(record(i))
        time.sleep(600)
    log.close()
    print(log.stats["dropped"], flush=True)
    """
)


def _writer(home: Path, tag: str, count: int, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(home), tag, str(count), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_logging_into_one_repo_lose_nothing(client):
    client.create_repo("predictions")  # else both would race to create it (also handled)
    home = client.home
    procs = [_writer(home, tag, 400, "close") for tag in ("a", "b")]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert out.split()[1] == "0"  # nothing dropped
    ids = [r["request_id"] for r in read_records(client.data)]
    assert len(ids) == len(set(ids)) == 800
    assert set(ids) == {f"{t}-{i}" for t in "ab" for i in range(400)}


def test_a_killed_process_keeps_every_acknowledged_record(client):
    proc = _writer(client.home, "k", 300, "kill")
    assert proc.stdout is not None
    acked = proc.stdout.readline().strip()
    assert acked, proc.stderr.read() if proc.stderr else ""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    client.data.catalog.dispose()
    again = Client(client.home, auto_run=False)
    try:
        at_ack = {r["request_id"] for r in read_records(again.data, commit=acked)}
        assert {f"k-{i}" for i in range(300)} <= at_ack
        at_head = {r["request_id"] for r in read_records(again.data)}
        assert at_ack <= at_head
    finally:
        again.data.catalog.dispose()
