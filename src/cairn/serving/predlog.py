"""The prediction log: every request's record, batched off the request path into a repo.

Record format (one JSON object per line; what issue 5's drift monitor reads)::

    {"request_id": "9f1c...",            # str, unique per request (shadows share it)
     "time": 1735732800.123,             # float, UTC seconds since the epoch
     "deployment": "digits", "model": "digits", "version": 3,
     "target": "challenger",             # the route or shadow target that chose the version
     "protocol": "mlflow",               # "mlflow" (/invocations) or "v2" (Open Inference)
     "method": "predict",                # the model method that answered (params' "method":
                                         # "predict_proba"...); absent in older logs: predict
     "inputs": {"columns": ["f0", ...], "data": [[0.0, ...], ...]},   # MLflow dataframe_split
     "outputs": [3, 7, ...],             # list, one item per input row (a list of objects
                                         # for models that return a table)
     "latency_ms": 1.8,                  # float, the model's predict call
     "shadow": false,                    # true: a mirrored request whose answer was discarded
     "status": "ok",                     # "ok" | "invalid" (signature, a 400) | "error"
     "error": null}                      # the message when status is not "ok"

NaN and infinities are written as ``null`` (JSON has neither).

Files: ``/<deployment>/<YYYY-MM-DD>/<time>-<pid>-<seq>.jsonl`` in ``<repo>@<branch>``, the
date and ``<time>`` (``YYYYMMDDTHHMMSS.ffffffZ``) those of the file's first record in UTC,
``<pid>`` the writing process and ``<seq>`` an 8-hex id drawn when the log opens, a dot, and
the log's file counter, so that processes on different machines that share a pid never
write the same path. Each commit is one ``LogSink.commit`` (cairn.serving.source): over
the store in this process one ``DataStore.put_files`` (the catalog serializes writers, so
several server processes share the repo safely; the data layer is used directly, so
logging never runs pipelines in the server process); over a ``cairn server`` one
``files.put`` of the face.

Batching: a background thread commits when ``max_records`` are waiting, when the oldest has
waited ``max_seconds``, on ``flush()`` and on ``close()``. ``submit`` never blocks: the
queue holds at most ``queue_size`` records and a record that does not fit is counted in
``stats["dropped"]`` (and logged once per burst). A failed commit keeps its batch and is
retried with backoff (``stats["errors"]`` counts failures). ``flush()`` returns the id of a
commit holding every record submitted before the call: an acknowledgement that survives
the process being killed.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from cairn.data import DataStore, Ref
from cairn.data.paths import normalize
from cairn.serving.errors import ServingError
from cairn.serving.source import LogSink, StoreSink

__all__ = ["PredictionLog", "make_record", "read_records", "to_split"]

log = logging.getLogger("cairn.serving.predlog")

_FILES_PER_COMMIT = 16  # a backlog is written in commits of up to this many files
_MAX_BACKOFF = 5.0


def make_record(
    *,
    request_id: str,
    deployment: str,
    model: str,
    version: int,
    protocol: str,
    inputs: Any,
    outputs: Any,
    latency_ms: float,
    shadow: bool = False,
    status: str = "ok",
    error: str | None = None,
    target: str | None = None,
    time_: float | None = None,
    method: str = "predict",
) -> dict[str, Any]:
    """A record in the documented format. ``inputs`` may be a pandas DataFrame and
    ``outputs`` a numpy array, Series or DataFrame: the log's thread converts them, so the
    request path does not pay for it."""
    return {
        "request_id": request_id,
        "time": time.time() if time_ is None else time_,
        "deployment": deployment,
        "model": model,
        "version": version,
        "target": target,
        "protocol": protocol,
        "method": method,
        "inputs": inputs,
        "outputs": outputs,
        "latency_ms": latency_ms,
        "shadow": shadow,
        "status": status,
        "error": error,
    }


def to_split(frame: Any) -> dict[str, Any]:
    """A pandas DataFrame as MLflow's ``dataframe_split`` (columns and rows, no index)."""
    return {"columns": [str(c) for c in frame.columns], "data": frame.to_numpy().tolist()}


def _outputs(value: Any) -> Any:
    if value is None:
        return None
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # a DataFrame
        return value.to_dict(orient="records")
    if hasattr(value, "tolist"):  # numpy arrays and scalars, pandas Series
        out = value.tolist()
        return out if isinstance(out, list) else [out]
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def _encode(record: Mapping[str, Any]) -> bytes:
    out = dict(record)
    inputs = out.get("inputs")
    if hasattr(inputs, "columns") and hasattr(inputs, "to_numpy"):
        out["inputs"] = to_split(inputs)
    out["outputs"] = _outputs(out.get("outputs"))
    return orjson.dumps(out, default=_default, option=orjson.OPT_SERIALIZE_NUMPY)


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t if math.isfinite(t) else 0.0, UTC)


class PredictionLog:
    """A batched, bounded, non-blocking writer of prediction records into ``repo@branch``
    (see the module doc for the format and the guarantees), through ``target``: a
    DataStore (written directly) or any LogSink (cairn.serving.source; a ``cairn
    server``'s through the face). The repo is created as a user repo on the first commit
    if it does not exist. Thread-safe."""

    def __init__(
        self,
        target: DataStore | LogSink,
        repo: str = "predictions",
        *,
        branch: str = "master",
        max_records: int = 1000,
        max_seconds: float = 5.0,
        queue_size: int = 100_000,
    ) -> None:
        if max_records < 1 or queue_size < 1 or max_seconds <= 0:
            raise ValueError("max_records and queue_size must be >= 1, max_seconds > 0")
        self.sink: LogSink = StoreSink(target) if isinstance(target, DataStore) else target
        self.repo = repo
        self.branch = branch
        self.max_records = max_records
        self.max_seconds = max_seconds
        self.queue_size = queue_size
        self._cond = threading.Condition()
        self._queue: deque[dict[str, Any]] = deque()
        self._oldest = 0.0  # monotonic time the oldest queued record arrived
        self._accepted = 0
        self._committed = 0  # always a prefix of the accepted records, in order
        self._pending = 0  # taken by the writer, not committed yet
        self._dropped = 0
        self._errors = 0
        self._commits = 0
        self._last_commit: str | None = None
        self._last_error: str | None = None
        self._flushers = 0
        self._closing = False
        self._dropping = False
        self._token = secrets.token_hex(4)
        self._files = 0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cairn-predlog", daemon=True)
        self._thread.start()

    # -- the request path ----------------------------------------------------------------
    def submit(self, record: dict[str, Any]) -> bool:
        """Queue one record; never blocks. Returns False, and counts the record as
        dropped, when the queue is full or the log is closed."""
        with self._cond:
            if self._closing or len(self._queue) >= self.queue_size:
                self._dropped += 1
                first = not self._dropping
                self._dropping = True
                dropped = self._dropped
            else:
                if not self._queue:
                    self._oldest = time.monotonic()
                self._queue.append(record)
                self._accepted += 1
                self._dropping = False
                if len(self._queue) == 1 or len(self._queue) >= self.max_records:
                    self._cond.notify_all()
                return True
        if first:
            log.warning(
                "prediction log %s@%s is full or closed: dropping records (%d so far); "
                "see stats['dropped']",
                self.repo,
                self.branch,
                dropped,
            )
        return False

    # -- acknowledgements ----------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> str | None:
        """Commit every record submitted before this call; return the id of a commit that
        holds them all (None if nothing was ever committed). Raises TimeoutError if that
        takes longer than ``timeout`` seconds, ServingError if the log's thread stopped."""
        with self._cond:
            target = self._accepted
            if self._committed >= target:
                return self._last_commit
            self._flushers += 1
            self._cond.notify_all()
            try:
                done = self._cond.wait_for(
                    lambda: self._committed >= target or self._stopped.is_set(), timeout
                )
            finally:
                self._flushers -= 1
            if self._committed >= target:
                return self._last_commit
            if not done:
                raise TimeoutError(
                    f"prediction log: {target - self._committed} record(s) not committed "
                    f"after {timeout}s (last error: {self._last_error})"
                )
            raise ServingError("prediction log is closed; records still queued were counted")

    def close(self, timeout: float | None = 30.0) -> None:
        """Commit what is queued and stop the thread. If that does not succeed within
        ``timeout`` seconds, the records left are counted as dropped and logged."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            with self._cond:
                self._stopped.set()
                lost = len(self._queue) + self._pending
                self._dropped += lost
                self._cond.notify_all()
            log.error(
                "prediction log %s@%s: closed with %d record(s) not committed (last error: %s)",
                self.repo,
                self.branch,
                lost,
                self._last_error,
            )

    @property
    def stats(self) -> dict[str, Any]:
        """Counters since the log opened: ``submitted`` (accepted into the queue),
        ``committed``, ``dropped`` (never written: the queue was full or the log closed),
        ``queued`` (accepted, not committed yet), ``commits``, ``last_commit`` (id),
        ``errors`` (failed commit attempts, each retried) and ``last_error``."""
        with self._cond:
            return {
                "submitted": self._accepted,
                "committed": self._committed,
                "dropped": self._dropped,
                "queued": len(self._queue) + self._pending,
                "commits": self._commits,
                "last_commit": self._last_commit,
                "errors": self._errors,
                "last_error": self._last_error,
            }

    # -- the writer thread ---------------------------------------------------------------
    def _run(self) -> None:
        try:
            while True:
                batch = self._next_batch()
                if batch is None:
                    return
                commit = self._commit(batch)
                if commit is None:  # closed while failing: close() counted the records
                    return
                with self._cond:
                    self._committed += len(batch)
                    self._pending = 0
                    self._commits += 1
                    self._last_commit = commit
                    self._cond.notify_all()
        finally:
            with self._cond:
                self._stopped.set()
                self._cond.notify_all()

    def _next_batch(self) -> list[dict[str, Any]] | None:
        with self._cond:
            while True:
                if self._queue:
                    wait = self._oldest + self.max_seconds - time.monotonic()
                    ready = len(self._queue) >= self.max_records or self._flushers
                    if ready or self._closing or wait <= 0:
                        break
                    self._cond.wait(wait)
                elif self._closing or self._stopped.is_set():
                    return None
                else:
                    self._cond.wait()
            count = min(len(self._queue), self.max_records * _FILES_PER_COMMIT)
            batch = [self._queue.popleft() for _ in range(count)]
            self._pending = count
            return batch

    def _commit(self, batch: list[dict[str, Any]]) -> str | None:
        files = self._files_of(batch)
        delay = 0.05
        while True:
            try:
                return self._write(files, len(batch))
            except Exception as exc:  # noqa: BLE001 - any failure keeps the batch and retries
                with self._cond:
                    self._errors += 1
                    self._last_error = f"{type(exc).__name__}: {exc}"
                    errors = self._errors
                if errors == 1 or errors % 10 == 0:
                    log.warning(
                        "prediction log commit failed (%d so far), retrying: %s", errors, exc
                    )
                if self._stopped.wait(delay):
                    return None
                delay = min(delay * 2, _MAX_BACKOFF)

    def _files_of(self, batch: list[dict[str, Any]]) -> list[tuple[str, bytes]]:
        groups: dict[tuple[str, str], list[tuple[float, bytes]]] = {}
        for record in batch:
            t = record.get("time")
            t = float(t) if isinstance(t, int | float) else time.time()
            key = (str(record.get("deployment") or "_"), _utc(t).strftime("%Y-%m-%d"))
            try:
                line = _encode(record)
            except (TypeError, ValueError, orjson.JSONEncodeError) as exc:
                # Kept, as far as it can be: the record's fields as text, and why.
                line = orjson.dumps(
                    {
                        **{k: str(v) for k, v in record.items()},
                        "status": "error",
                        "error": f"record not serializable: {exc}",
                    }
                )
            groups.setdefault(key, []).append((t, line))
        files = []
        pid = os.getpid()
        for (deployment, day), lines in groups.items():
            self._files += 1
            stamp = _utc(lines[0][0]).strftime("%Y%m%dT%H%M%S.%fZ")
            path = f"/{deployment}/{day}/{stamp}-{pid}-{self._token}.{self._files}.jsonl"
            files.append((path, b"".join(line + b"\n" for _, line in lines)))
        return files

    def _write(self, files: list[tuple[str, bytes]], count: int) -> str:
        return self.sink.commit(self.repo, self.branch, files, f"prediction log: {count} record(s)")


def read_records(
    data: DataStore,
    repo: str = "predictions",
    *,
    commit: str | None = None,
    deployment: str | None = None,
    since: float | None = None,
    until: float | None = None,
    shadow: bool = True,
    status: str | None = None,
    newest_first: bool = False,
    last_rows: int | None = None,
) -> Iterator[dict[str, Any]]:
    """The records of ``repo@commit`` (default: the master branch's head): the one reader of
    the log's files. Without ``deployment``, every file in path order. With it, that
    deployment's day folders in date order (newest first with ``newest_first``, files
    reversed too) and, by time, only the days that can hold ``since`` <= time < ``until``
    (UTC epoch seconds; a file lives in the folder of its first record's day, so the day
    before ``since`` is read too). ``shadow=False`` leaves mirrored requests out;
    ``status`` keeps only records of that status (a record without one is ``"ok"``).
    ``last_rows`` (with ``newest_first``) stops after the day folder in which the records
    read so far reach that many input rows. Raises NotFound (repo, commit, or the
    deployment's folder)."""
    head = data.resolve(Ref(repo, commit)).id
    for path in _log_files(data, repo, head, deployment, since, until, newest_first):
        if path is None:  # the end of a day folder
            if last_rows is not None and last_rows <= 0:
                return
            continue
        body = b"".join(data.read_file(Ref(repo, head, path=normalize(path))))
        for line in body.splitlines():
            if not line.strip():
                continue
            rec = orjson.loads(line)
            if (not shadow and rec.get("shadow")) or (
                status is not None and rec.get("status", "ok") != status
            ):
                continue
            t = float(rec["time"])
            if (since is not None and t < since) or (until is not None and t >= until):
                continue
            if last_rows is not None:
                last_rows -= len(rec["inputs"]["data"])
            yield rec


def _log_files(
    data: DataStore,
    repo: str,
    head: str,
    deployment: str | None,
    since: float | None,
    until: float | None,
    newest_first: bool,
) -> Iterator[str | None]:
    """The ``.jsonl`` paths to read, each day folder's followed by None."""
    if deployment is None:
        yield from (p for p, _ in data.walk_files(Ref(repo, head)) if p.endswith(".jsonl"))
        return
    lo = _utc(since).date() - timedelta(days=1) if since is not None else None
    hi = _utc(until).date() if until is not None else None
    days = []
    for info in data.list_file(Ref(repo, head, path=normalize(deployment))):
        try:
            day = date.fromisoformat(info.path.rstrip("/").rsplit("/", 1)[-1])
        except ValueError:
            continue
        if info.type != "dir" or (lo and day < lo) or (hi and day > hi):
            continue
        days.append((day, info.path))
    days.sort(reverse=newest_first)
    for _, folder in days:
        paths = sorted(
            p
            for p, _ in data.walk_files(Ref(repo, head, path=normalize(folder)))
            if p.endswith(".jsonl")
        )
        yield from reversed(paths) if newest_first else paths
        yield None
