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
else the embedded one): ``running`` until ``end_run`` or the end of the ``with`` block
(``finished``, or ``failed`` on an exception); ``nested=True`` starts a child run. Logging
with no ``start_run`` starts a run that ends when the interpreter exits. Artifacts are
copied into the store (repo ``run-artifacts``, one folder per run id, one commit per
call) and the run records their ``repo@commit:/path`` refs; inside a transform they are
output files of the datum. The heavier MLflow verbs (figures, tables, models,
``search_runs``) are in ``cairn.tracking``.

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
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CHANNEL_ENV",
    "END",
    "RUNS_DIR",
    "ARTIFACT_REPO",
    "ActiveRun",
    "Experiment",
    "active_run",
    "datums",
    "delete_tag",
    "end_run",
    "exchange",
    "fail",
    "get_experiment",
    "last_active_run",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "set_experiment",
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
ARTIFACT_REPO = "run-artifacts"  # where runs outside transforms store their artifacts
PARENT_TAG = "mlflow.parentRunId"  # MLflow's tag naming a nested run's parent
_STATES = {"finished": "finished", "failed": "failed", "killed": "failed"}


@dataclass(frozen=True)
class RunView:
    """MLflow's ``run.info`` names for an active run: ``run_id``, ``run_name`` and
    ``experiment_id`` (cairn's experiments are named, so it is the name)."""

    run_id: str | None
    run_name: str | None
    experiment_id: str | None


@dataclass(frozen=True)
class ActiveRun:
    """The run ``start_run`` opened: ``id`` is None inside a transform, where the run gets
    its id when the job's output commit is indexed. As a context manager it ends the run
    when the block ends (``failed`` on an exception), as MLflow's ``ActiveRun`` does."""

    id: str | None
    name: str | None
    experiment: str | None
    parent: str | None = None

    @property
    def info(self) -> RunView:
        return RunView(self.id, self.name, self.experiment)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        if any(r is self for r in _stack):
            while _stack and _stack[-1] is not self:  # inner runs left open end with it
                end_run("failed" if kind else "finished")
            end_run("failed" if kind else "finished")


@dataclass(frozen=True)
class Experiment:
    """What ``set_experiment`` returns: MLflow's ``experiment_id`` and ``name`` (equal)."""

    experiment_id: str
    name: str


_stack: list[ActiveRun] = []  # active runs, innermost last (nested=True pushes)
_last: ActiveRun | None = None  # the run end_run ended last
_experiment: str | None = None  # set_experiment's choice for the next start_run
_store: Any = None  # the client cairn.connect() picks, outside transforms
_implicit = False  # the outermost run was started by a log call, not by start_run


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


def _client() -> Any:
    global _store
    if _store is None:
        from cairn.client import connect  # outside transforms only: loads the catalog

        _store = connect()
    return _store


def _runs() -> Any:
    return _client().runs


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
    """The innermost active run, started on first use (MLflow does the same)."""
    global _implicit
    if not _stack:
        if _in_transform():
            _stack.append(ActiveRun(None, None, None))
        else:
            info = _runs().create(None, _experiment)
            _stack.append(ActiveRun(info.id, info.name, info.experiment))
            atexit.register(_end_implicit)
        _implicit = True
    return _stack[-1]


def _end_implicit() -> None:
    if _implicit and _stack:
        end_run()


def log_params(params: Mapping[str, object]) -> None:
    """Record params (str -> JSON scalar; other values are stored as their ``str``).
    Raises ValueError for a key that is not a non-empty string."""
    values = {_key(k, "param"): _scalar(v) for k, v in params.items()}
    if _in_transform():
        _emit(*({"param": k, "value": v} for k, v in values.items()))
    else:
        _runs().log(_current().id, params=values)


def log_param(key: str, value: object) -> Any:
    """Record one param and return its value, as MLflow does; see ``log_params``."""
    log_params({key: value})
    return value


def log_metrics(
    metrics: Mapping[str, object], step: int | None = None, timestamp: int | None = None
) -> None:
    """Record one point of each metric at integer ``step`` (default 0) and ``timestamp``
    (milliseconds since the epoch, MLflow's unit; default now). Raises ValueError for a
    value that is not a finite number."""
    values = {_key(k, "metric"): _number(k, v) for k, v in metrics.items()}
    at = _step(step)
    when = time.time() if timestamp is None else _number("timestamp", timestamp) / 1000
    if _in_transform():
        _emit(
            *({"metric": k, "value": v, "step": at, "timestamp": when} for k, v in values.items())
        )
    else:
        _runs().log(_current().id, metrics=values, step=at, timestamp=when)


def log_metric(
    key: str, value: object, step: int | None = None, timestamp: int | None = None
) -> None:
    """Record one point of metric ``key``; see ``log_metrics``."""
    log_metrics({key: value}, step=step, timestamp=timestamp)


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


def delete_tag(key: str) -> None:
    """Remove tag ``key`` from the active run (a missing key is no error). Outside a
    transform only: raises RuntimeError inside one (a run file only adds)."""
    if _in_transform():
        raise RuntimeError("delete_tag works outside transforms; a run file only adds tags")
    _runs().log(_current().id, delete_tags=[_key(key, "tag")])


# -- artifacts ---------------------------------------------------------------------------
def _under(artifact_path: str | None, name: str) -> str:
    parts = [p for p in (artifact_path or "").replace("\\", "/").split("/") if p]
    parts += [p for p in name.replace("\\", "/").split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise ValueError(f"{'/'.join(parts)!r} is not an artifact path (no '.' or '..' parts)")
    return "/".join(parts)


def _store_artifacts(files: Mapping[str, bytes | str]) -> list[str]:
    """Store ``{artifact path: bytes, or a local file's path}`` as artifacts of the active
    run and return where they are: inside a transform, output paths under ``$CAIRN_PFS/out``
    (committed with the datum); outside, ``run-artifacts@<commit>:/<run id>/<path>`` refs
    of the one commit that holds them all (so the run keeps them whatever happens to the
    local files)."""
    if not files:
        return []
    if _in_transform():
        out = os.path.join(os.environ["CAIRN_PFS"], "out")
        for rel, body in files.items():
            target = os.path.join(out, *rel.split("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if isinstance(body, bytes):
                with open(target, "wb") as f:
                    f.write(body)
            elif os.path.abspath(body) != os.path.abspath(target):
                import shutil

                shutil.copyfile(body, target)
        _emit(*({"artifact": rel} for rel in files))
        return list(files)
    run = _current().id
    opened = {
        rel: body if isinstance(body, bytes) else open(body, "rb") for rel, body in files.items()
    }
    try:
        commit = _put_files(f"{ARTIFACT_REPO}@master:/{run}", opened)
    finally:
        for handle in opened.values():
            if not isinstance(handle, bytes):
                handle.close()
    refs = [f"{ARTIFACT_REPO}@{commit.id}:/{run}/{rel}" for rel in files]
    _runs().log(run, artifacts=refs)
    return refs


def _put_files(ref: str, data: Mapping[str, Any]) -> Any:
    from cairn.api.errors import AlreadyExists, NotFound

    client = _client()
    try:
        return client.files.put(ref, data, description="run artifacts")
    except NotFound:
        try:
            client.repos.get(ARTIFACT_REPO)
        except NotFound:
            try:
                client.repos.create(ARTIFACT_REPO, "artifacts of runs tracked outside pipelines")
            except AlreadyExists:  # another process made it first
                pass
        else:
            raise
    for body in data.values():
        if not isinstance(body, bytes):
            body.seek(0)
    return client.files.put(ref, data, description="run artifacts")


def log_artifact(local_path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
    """Store a copy of local file ``local_path`` as artifact ``<artifact_path>/<its name>``
    of the active run (MLflow's ``log_artifact``). Inside a transform a file already under
    ``$CAIRN_PFS/out`` is recorded where it is (every output file of the datum is an
    artifact of its run anyway); another file is copied there. Raises FileNotFoundError,
    IsADirectoryError (use ``log_artifacts``), ValueError (a path with ``..``)."""
    text = os.path.abspath(os.fspath(local_path))
    if _in_transform() and artifact_path is None:
        out = os.path.join(os.environ["CAIRN_PFS"], "out")
        if text.startswith(out + os.sep):  # an output path: committed with the datum
            _emit({"artifact": os.path.relpath(text, out).replace(os.sep, "/")})
            return
    if os.path.isdir(text):
        raise IsADirectoryError(f"{text} is a folder: log it with log_artifacts")
    if not os.path.isfile(text):
        raise FileNotFoundError(f"no file {text} to log as an artifact")
    _store_artifacts({_under(artifact_path, os.path.basename(text)): text})


def log_artifacts(local_dir: str | os.PathLike[str], artifact_path: str | None = None) -> None:
    """Store a copy of every file below folder ``local_dir`` as artifacts under
    ``artifact_path``, keeping their relative paths, in one commit. Raises
    NotADirectoryError."""
    root = os.path.abspath(os.fspath(local_dir))
    if not os.path.isdir(root):
        raise NotADirectoryError(f"{root} is not a folder")
    files: dict[str, bytes | str] = {}
    for folder, _dirs, names in os.walk(root):
        for name in sorted(names):
            full = os.path.join(folder, name)
            if os.path.isfile(full):
                rel = os.path.relpath(full, root).replace(os.sep, "/")
                files[_under(artifact_path, rel)] = full
    _store_artifacts(files)


def log_text(text: str, artifact_file: str) -> None:
    """Store ``text`` (UTF-8) as artifact ``artifact_file`` (``dir/name.txt``)."""
    _store_artifacts({_under(None, artifact_file): text.encode("utf-8")})


def log_dict(dictionary: Mapping[str, Any], artifact_file: str) -> None:
    """Store ``dictionary`` as artifact ``artifact_file``: YAML for ``.yaml``/``.yml``
    (needs PyYAML), else JSON, as MLflow does."""
    if artifact_file.endswith((".yaml", ".yml")):
        import yaml

        body = yaml.safe_dump(dict(dictionary), default_flow_style=False)
    else:
        body = json.dumps(dictionary, indent=2)
    log_text(body, artifact_file)


# -- runs --------------------------------------------------------------------------------
def active_run() -> ActiveRun | None:
    """The innermost run ``start_run`` (or a log call) opened, if any."""
    return _stack[-1] if _stack else None


def last_active_run() -> ActiveRun | None:
    """The active run, else the run ended last in this process, else None (MLflow's
    ``last_active_run``; this returns the ActiveRun, read its record with
    ``cairn.connect().runs.get(run.id)``)."""
    return active_run() or _last


def set_experiment(
    experiment_name: str | None = None, experiment_id: str | None = None
) -> Experiment:
    """Make runs started after this call (and ``search_runs``) use experiment
    ``experiment_name`` (``experiment_id``: the same, cairn's experiments are names).
    An experiment exists once a run is in it. Raises ValueError without a name."""
    global _experiment
    name = experiment_name or experiment_id
    if not name:
        raise ValueError("set_experiment needs an experiment name")
    _experiment = name
    return Experiment(name, name)


def get_experiment() -> str | None:
    """The experiment ``set_experiment`` chose, or None (the store's ``default``)."""
    return _experiment


def end_run(status: str = "FINISHED") -> None:
    """End the innermost active run as ``FINISHED`` or ``FAILED`` (``KILLED`` is
    ``failed``; any case); nothing when there is none. Raises ValueError for another
    status."""
    global _implicit, _last
    state = _STATES.get(status.lower())
    if state is None:
        raise ValueError(f"a run ends FINISHED, FAILED or KILLED, not {status!r}")
    if not _stack:
        return
    run = _stack.pop()
    if not _stack:
        _implicit = False
    _last = run
    if run.id is not None:
        _runs().finish(run.id, state)


def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    tags: Mapping[str, object] | None = None,
    description: str | None = None,
    *,
    name: str | None = None,
    experiment: str | None = None,
) -> ActiveRun:
    """Start a run and make it the active one; ``end_run`` ends it, or the ``with`` block
    when used as one (``failed`` on an exception). MLflow's arguments: ``run_name``
    (alias ``name``), ``experiment_id`` (alias ``experiment``; default
    ``set_experiment``'s, else ``default``; inside a transform, the pipeline's name),
    ``tags``, ``description`` (tag ``mlflow.note.content``), ``nested=True`` to start a
    child of the active run (tag ``mlflow.parentRunId``; ``parent_run_id`` names the
    parent, which must be the active run), ``run_id`` to make a running run active again.

    Raises RuntimeError when a run is active and ``nested`` is false, or nesting inside a
    transform (one run per datum); cairn's NotFound for an unknown ``run_id``.
    """
    global _implicit
    run_name = run_name or name
    experiment_id = experiment_id or experiment or _experiment
    given = {_key(k, "tag"): _scalar(v) for k, v in (tags or {}).items()}
    if description:
        given["mlflow.note.content"] = description
    parent = _stack[-1] if _stack else None
    if parent is not None and not nested:
        raise RuntimeError(
            f"run {parent.name or parent.id} is active; end it first, or start_run(nested=True)"
        )
    if parent_run_id is not None and (parent is None or parent.id != parent_run_id):
        raise RuntimeError(f"parent run {parent_run_id} is not the active run")
    if _in_transform():
        if parent is not None:
            raise RuntimeError("a datum records one run: nested runs work outside transforms")
        header = {k: v for k, v in (("name", run_name), ("experiment", experiment_id)) if v}
        if header:
            _emit(header)
        if given:
            _emit(*({"tag": k, "value": v} for k, v in given.items()))
        run = ActiveRun(None, run_name, experiment_id)
    elif run_id is not None:
        info = _runs().get(run_id)
        if given:
            _runs().log(info.id, tags=given)
        run = ActiveRun(info.id, info.name, info.experiment, info.tags.get(PARENT_TAG))
    else:
        if parent is not None:
            given[PARENT_TAG] = parent.id
        info = _runs().create(run_name, experiment_id, given)
        run = ActiveRun(info.id, info.name, info.experiment, parent.id if parent else None)
    if not _stack:
        _implicit = False
    _stack.append(run)
    return run
