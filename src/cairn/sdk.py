"""For code running inside a transform: take datums one after another (datum batching).

With ``transform.datum_batching: true`` a pipeline starts its command once per worker and
the command asks cairn for datums::

    from cairn.sdk import datums, fail

    for datum_id in datums():      # inputs at $CAIRN_PFS/<input>/..., write $CAIRN_PFS/out
        try:
            work()
        except ValueError as exc:
            fail(str(exc))           # this datum fails (and is retried); the loop goes on

Each step of the loop tells cairn the previous datum is done; cairn then stores its
``out`` and lays out the next. An exception that ends the process fails the datum in
progress; leaving the loop early and exiting 0 finishes it, and the datums left go to a
fresh process. The wire protocol, for other languages, is in ``cairn.pipelines.batch``.

Tracking runs (MLflow's verbs; also ``cairn.log_metric`` and so on)::

    import cairn

    with cairn.start_run(name="lr-0.1", experiment="sweep"):
        cairn.log_params({"lr": 0.1, "depth": 3})
        for epoch in range(10):
            cairn.log_metric("loss", loss, step=epoch)
        cairn.set_tag("model", "svm")
        cairn.log_artifact(f"{os.environ['CAIRN_PFS']}/out/model.skops")

Inside a transform (``$CAIRN_PFS`` set) each call appends one JSON line to
``$CAIRN_PFS/out/.cairn/runs/$PACH_DATUM_ID.jsonl``, the run file format of
``cairn.ml.runfiles``; the file is committed with the datum's outputs and indexed as a run
of the job. Outside a transform (a notebook, a script) the run goes straight into the
store ``cairn.connect()`` picks (a ``cairn server`` with ``$CAIRN_URL`` or a saved context,
else the embedded one): ``running`` until the ``with`` block ends (``finished``, or
``failed`` on an exception). Logging with no ``start_run`` starts a run that ends when the
interpreter exits.

This module is an adapter on top of the layers but imports only the standard library:
it runs inside transforms, where start-up time counts.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CHANNEL_ENV",
    "END",
    "RUNS_DIR",
    "ActiveRun",
    "active_run",
    "datums",
    "end_run",
    "exchange",
    "fail",
    "log_artifact",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "set_tag",
    "set_tags",
    "start_run",
]

CHANNEL_ENV = "CAIRN_DATUM_CHANNEL"
END = "end"

_failure: str | None = None


def exchange(request: str) -> str:
    """Send one request line (``next`` or ``fail <reason>``) and return cairn's reply line:
    the next datum's id, or ``END``. Flushes ``sys.stdout``/``sys.stderr`` first, so that
    what the datum printed lands in its own log.

    Raises RuntimeError outside a batching transform (no ``$CAIRN_DATUM_CHANNEL``) or when
    cairn closes the channel.
    """
    folder = os.environ.get(CHANNEL_ENV)
    if not folder:
        raise RuntimeError(
            f"${CHANNEL_ENV} is not set: datums() works inside a pipeline whose transform "
            "sets datum_batching: true"
        )
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    line = " ".join(request.split()) + "\n"  # one line, whatever the reason held
    with open(os.path.join(folder, "request"), "wb", buffering=0) as f:
        f.write(line.encode())
    reply = b""
    fd = os.open(os.path.join(folder, "reply"), os.O_RDONLY)
    try:
        while not reply.endswith(b"\n"):
            chunk = os.read(fd, 256)
            if not chunk:
                raise RuntimeError("cairn closed the datum channel")
            reply += chunk
    finally:
        os.close(fd)
    return reply.decode().strip()


def fail(reason: str) -> None:
    """Mark the datum in progress failed with ``reason``; the next step of ``datums()``
    reports it instead of ``next``."""
    global _failure
    _failure = " ".join(reason.split()) or "failed"


def datums() -> Iterator[str]:
    """Yield the id of each datum cairn hands this process, until there are none left.

    Before each id is yielded the datum's inputs are at ``$CAIRN_PFS/<input name>/<path>``
    and ``$CAIRN_PFS/out`` is empty; the next step (or the end of the loop) hands the datum
    back. Raises RuntimeError as ``exchange``.
    """
    global _failure
    while True:
        request = "next" if _failure is None else f"fail {_failure}"
        _failure = None
        reply = exchange(request)
        if reply == END:
            return
        # As for a datum in its own process, so that run files are per datum.
        os.environ["PACH_DATUM_ID"] = reply
        yield reply


# -- tracking runs -----------------------------------------------------------------------
RUNS_DIR = ".cairn/runs"  # under $CAIRN_PFS/out; see cairn.ml.runfiles


@dataclass(frozen=True)
class ActiveRun:
    """The run ``start_run`` opened: ``id`` is None inside a transform, where the run gets
    its id when the job's output commit is indexed."""

    id: str | None
    name: str | None
    experiment: str | None


_active: ActiveRun | None = None
_store: Any = None  # client.runs of the store cairn.connect() picks, outside transforms
_implicit = False  # the active run was started by a log call, not by start_run


def _in_transform() -> bool:
    return bool(os.environ.get("CAIRN_PFS"))


def _run_file() -> str:
    pfs = os.environ["CAIRN_PFS"]
    name = os.environ.get("PACH_DATUM_ID") or "run"
    return os.path.join(pfs, "out", *RUNS_DIR.split("/"), f"{name}.jsonl")


def _emit(*events: dict[str, Any]) -> None:
    path = _run_file()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    lines = "".join(json.dumps(e, allow_nan=False, separators=(",", ":")) + "\n" for e in events)
    with open(path, "a", encoding="utf-8") as f:
        f.write(lines)


def _runs() -> Any:
    global _store
    if _store is None:
        from cairn.client import connect  # outside transforms only: loads the catalog

        _store = connect().runs
    return _store


def _key(key: object, kind: str) -> str:
    if not isinstance(key, str) or not key:
        raise ValueError(f"a {kind} key must be a non-empty string, not {key!r}")
    return key


def _scalar(value: object) -> Any:
    """A JSON scalar: numpy scalars become Python ones; other values their ``str`` (as
    MLflow stores params)."""
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, str | int | float | bool):
        try:
            value = item()
        except (TypeError, ValueError):
            pass
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _number(key: str, value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"metric {key!r}: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"metric {key!r}: {value!r} is not finite")
    return number


def _step(step: object) -> int:
    if step is None:
        return 0
    if isinstance(step, bool) or int(step) != step:  # type: ignore[call-overload]
        raise ValueError(f"step must be an integer, not {step!r}")
    return int(step)  # type: ignore[call-overload]


def _current() -> ActiveRun:
    """The active run outside a transform, started on first use (MLflow does the same)."""
    global _active, _implicit
    if _active is None:
        info = _runs().create()
        _active = ActiveRun(info.id, info.name, info.experiment)
        _implicit = True
        atexit.register(_end_implicit)
    return _active


def _end_implicit() -> None:
    if _implicit and _active is not None:
        end_run()


def log_params(params: Mapping[str, object]) -> None:
    """Record params (str -> JSON scalar; other values are stored as their ``str``).
    Raises ValueError for a key that is not a non-empty string."""
    values = {_key(k, "param"): _scalar(v) for k, v in params.items()}
    if _in_transform():
        _emit(*({"param": k, "value": v} for k, v in values.items()))
    else:
        _runs().log(_current().id, params=values)


def log_param(key: str, value: object) -> None:
    """Record one param; see ``log_params``."""
    log_params({key: value})


def log_metrics(metrics: Mapping[str, object], step: int | None = None) -> None:
    """Record one point of each metric at integer ``step`` (default 0), timestamped now.
    Raises ValueError for a value that is not a finite number."""
    values = {_key(k, "metric"): _number(k, v) for k, v in metrics.items()}
    at = _step(step)
    if _in_transform():
        now = time.time()
        _emit(*({"metric": k, "value": v, "step": at, "timestamp": now} for k, v in values.items()))
    else:
        _runs().log(_current().id, metrics=values, step=at)


def log_metric(key: str, value: object, step: int | None = None) -> None:
    """Record one point of metric ``key``; see ``log_metrics``."""
    log_metrics({key: value}, step=step)


def set_tags(tags: Mapping[str, object]) -> None:
    """Set tags (str -> JSON scalar, as params)."""
    values = {_key(k, "tag"): _scalar(v) for k, v in tags.items()}
    if _in_transform():
        _emit(*({"tag": k, "value": v} for k, v in values.items()))
    else:
        _runs().log(_current().id, tags=values)


def set_tag(key: str, value: object) -> None:
    """Set one tag; see ``set_tags``."""
    set_tags({key: value})


def log_artifact(path: str | os.PathLike[str]) -> None:
    """Name a file the run produced. Inside a transform, a path under ``$CAIRN_PFS/out``
    is recorded as its output path (the file is versioned with the commit); every output
    file of the datum is an artifact of its run anyway. Outside, the absolute path."""
    text = os.fspath(path)
    if _in_transform():
        out = os.path.join(os.environ["CAIRN_PFS"], "out")
        full = os.path.abspath(text if os.path.isabs(text) else os.path.join(out, text))
        if full == out or full.startswith(out + os.sep):
            text = os.path.relpath(full, out).replace(os.sep, "/")
        _emit({"artifact": text})
    else:
        _runs().log(_current().id, artifacts=[os.path.abspath(text)])


def active_run() -> ActiveRun | None:
    """The run ``start_run`` (or a log call outside a transform) opened, if any."""
    return _active


def end_run(status: str = "finished") -> None:
    """End the active run (``finished`` or ``failed``); nothing when there is none."""
    global _active, _implicit
    run, _active, _implicit = _active, None, False
    if run is not None and run.id is not None:
        _runs().finish(run.id, status)


@contextmanager
def start_run(name: str | None = None, experiment: str | None = None) -> Iterator[ActiveRun]:
    """Open a run for the ``with`` block: its ``name`` and ``experiment`` (inside a
    transform, the defaults are the pipeline's name and a name from the datum id; outside,
    ``default`` and a random name). Raises RuntimeError when a run is already active."""
    global _active
    if _active is not None:
        raise RuntimeError(f"run {_active.name or _active.id} is active; end it first")
    if _in_transform():
        header = {k: v for k, v in (("name", name), ("experiment", experiment)) if v}
        if header:
            _emit(header)
        _active = ActiveRun(None, name, experiment)
    else:
        info = _runs().create(name, experiment)
        _active = ActiveRun(info.id, info.name, info.experiment)
    try:
        yield _active
    except BaseException:
        end_run("failed")
        raise
    end_run("finished")
