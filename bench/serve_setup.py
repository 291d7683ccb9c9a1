"""What bench/serve.py sets up and drives: the model and its payloads, the cairn store and
the MLflow model folder holding that one fitted estimator, the two servers as child
processes, and the server's CPU time read from ``/proc``.

The model: ``Pipeline(StandardScaler, LogisticRegression)`` fitted on scikit-learn's
bundled breast-cancer table (569 rows, 30 named float columns; ``load_breast_cancer``,
nothing downloaded). The same fitted object is written twice: ``model.skops`` (cairn's
scikit-learn flavor, registered and aliased ``champion``) and an MLflow model folder by
``mlflow.sklearn.save_model`` with a signature inferred from the table, so both servers
check the columns of each request. Payloads are MLflow's ``dataframe_split`` JSON
(https://mlflow.org/docs/latest/deployment/deploy-model-locally/, "Inference API"): the
same bytes to both servers.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from suite_lib import run

MODEL = "breast-cancer"
MODEL_REPO = "models"
MODEL_PATH = "/breast-cancer/model.skops"


@dataclass(frozen=True)
class Model:
    """The fitted model's files, the payload files, and the predictions they must get."""

    skops: Path
    mlflow_dir: Path | None
    payloads: dict[str, Path]
    expected: dict[str, list]
    rows: dict[str, int]
    sklearn_version: str


def make_model(folder: Path, *, batch_rows: int, with_mlflow: bool) -> Model:
    """Fit the model, write it as ``model.skops`` (and as an MLflow folder when
    ``with_mlflow``), and write the single-row and ``batch_rows``-row payloads."""
    import sklearn
    import skops.io
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(X, y)
    folder.mkdir(parents=True, exist_ok=True)
    skops_file = folder / "model.skops"
    skops.io.dump(model, skops_file)
    mlflow_dir = None
    if with_mlflow:
        import mlflow.sklearn
        from mlflow.models import infer_signature

        mlflow_dir = folder / "mlflow-model"
        mlflow.sklearn.save_model(
            model,
            str(mlflow_dir),
            signature=infer_signature(X, model.predict(X)),
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
        )
    payloads, expected, rows = {}, {}, {}
    for name, frame in (("single", X.iloc[:1]), ("batch", X.iloc[:batch_rows])):
        body = {"dataframe_split": {"columns": list(frame.columns), "data": frame.values.tolist()}}
        payloads[name] = folder / f"{name}.json"
        payloads[name].write_text(json.dumps(body))
        expected[name] = model.predict(frame).tolist()
        rows[name] = len(frame)
    return Model(skops_file, mlflow_dir, payloads, expected, rows, sklearn.__version__)


def register_in_cairn(cairn: str, env: dict[str, str], model: Model, cwd: Path) -> None:
    """Put ``model.skops`` into a repo, register it and alias version 1 ``champion``."""
    run([cairn, "create", "repo", MODEL_REPO], cwd=cwd, env=env)
    run(
        [cairn, "put", "file", f"{MODEL_REPO}@master:{MODEL_PATH}", "-f", str(model.skops)],
        cwd=cwd,
        env=env,
    )
    run([cairn, "register", "model", MODEL, f"{MODEL_REPO}@master:{MODEL_PATH}"], cwd=cwd, env=env)
    run([cairn, "set", "alias", MODEL, "champion", "1"], cwd=cwd, env=env)


# -- servers --------------------------------------------------------------------------------
class ServerFailed(RuntimeError):
    """A server did not start, answered wrongly, or exited; the message holds its log."""


@dataclass
class Server:
    """One server as a child process in its own session (so its workers can be signalled
    as a group), its output in ``log``."""

    name: str
    cmd: list[str]
    env: dict[str, str]
    port: int
    log: Path
    proc: subprocess.Popen | None = None
    started_s: float = 0.0
    ready_s: float = 0.0
    stack: list[str] = field(default_factory=list)

    def start(self, timeout: float = 180.0) -> None:
        """Start and wait for ``GET /ping`` to answer 200; raises ServerFailed."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = self.log.open("ab")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            self.cmd,
            env=self.env,
            cwd=self.log.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        out.close()
        while True:
            if self.proc.poll() is not None:
                raise ServerFailed(f"{self.name} exited {self.proc.returncode}:\n{self.tail()}")
            if time.perf_counter() - t0 > timeout:
                self.stop()
                raise ServerFailed(f"{self.name} not ready after {timeout} s:\n{self.tail()}")
            try:
                status, _ = request(self.port, "GET", "/ping", None, timeout=2)
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        self.ready_s = time.perf_counter() - t0
        self.stack = [" ".join(_cmdline(p)) for p in tree_pids(self.proc.pid)]

    def cpu_s(self) -> float:
        """CPU seconds (user + system) so far of the server's live process tree."""
        assert self.proc is not None
        return tree_cpu_s(self.proc.pid)

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM to the server's process group (uvicorn shuts down gracefully, flushing
        what it must), SIGKILL after ``timeout`` s; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait()

    def tail(self, n: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""


def request(
    port: int, method: str, path: str, body: bytes | None, timeout: float = 30.0
) -> tuple[int, bytes]:
    """One HTTP/1.1 request to 127.0.0.1:``port``; returns (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def check_predictions(server: Server, model: Model) -> None:
    """Each payload's predictions from ``server`` equal the fitted model's; raises
    ServerFailed otherwise (nothing is timed against a server that answers wrongly)."""
    for name, file in model.payloads.items():
        status, body = request(server.port, "POST", "/invocations", file.read_bytes())
        if status != 200:
            raise ServerFailed(f"{server.name} answered {status} to {name}: {body[:2000]!r}")
        got = json.loads(body)
        preds = got.get("predictions") if isinstance(got, dict) else None
        if preds != model.expected[name]:
            raise ServerFailed(
                f"{server.name}'s predictions for {name} differ from the model's: "
                f"{str(preds)[:300]} vs {str(model.expected[name])[:300]}"
            )


def predlog_stats(server: Server) -> dict[str, float]:
    """cairn's prediction log counters from ``GET /metrics`` (state -> records, summed over
    deployments and workers: queued now; submitted, committed, dropped so far); empty for
    a server without them."""
    status, body = request(server.port, "GET", "/metrics", None)
    if status != 200:
        return {}
    out: dict[str, float] = {}
    for m in _LOG_RECORDS.finditer(body.decode(errors="replace")):
        out[m["state"]] = out.get(m["state"], 0.0) + float(m["value"])
    return out


def wait_predlog_drained(server: Server, timeout: float = 120.0) -> dict:
    """Poll ``/metrics`` until no record is queued; returns the last counters and how long
    the log took to catch up after the load stopped."""
    t0 = time.perf_counter()
    while True:
        stats = predlog_stats(server)
        waited = time.perf_counter() - t0
        if not stats or stats.get("queued", 0) == 0 or waited > timeout:
            return {"counters": stats, "drain_s": waited}
        time.sleep(0.25)


_LOG_RECORDS = re.compile(
    r'^cairn_prediction_log_records\{[^}]*state="(?P<state>[a-z]+)"[^}]*\}\s+(?P<value>\S+)',
    re.M,
)


# -- CPU time of a process tree, from /proc (Linux) -----------------------------------------
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds) of ``pid``, None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


def tree_pids(root: int) -> list[int]:
    """``root`` and its live descendants."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st:
                parents.setdefault(st[0], []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(parents.get(pid, []))
    return out


def tree_cpu_s(root: int) -> float:
    return sum(st[1] for pid in tree_pids(root) if (st := _stat(pid)))


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]
