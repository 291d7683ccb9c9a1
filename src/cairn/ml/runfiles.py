"""The run file: how a datum records a run, in any language.

A datum records one run by writing one file under ``<pfs>/out/.cairn/runs/`` (``<pfs>`` is
``$CAIRN_PFS``). The file is committed with the datum's other outputs, so it is versioned
data and file-level lineage knows the datum that wrote it. Name it after the datum
(``$PACH_DATUM_ID.json`` or ``.jsonl``, as ``cairn.sdk`` does): the datums of a ``cross``
share one output repo, and two datums writing one path fail the job. Two formats, told
apart by the suffix:

``*.json``: one object, every field optional::

    {"name": "lr-0.1", "experiment": "sweep",
     "params":  {"lr": 0.1, "depth": 3},                  # str -> JSON scalar
     "metrics": {"accuracy": 0.97,                          # str -> number, or
                 "loss": [{"value": 0.9, "step": 0, "timestamp": 1718000000.5},
                          {"value": 0.4, "step": 1}]},      #   a list of points
     "tags":    {"model": "svm"},                           # str -> JSON scalar
     "artifacts": ["model.skops"]}                          # output paths

``*.jsonl``: one event per line, what ``cairn.sdk`` appends as the run goes (blank lines
are skipped)::

    {"name": "lr-0.1", "experiment": "sweep"}       run header (either key, or both)
    {"param": "lr", "value": 0.1}
    {"metric": "loss", "value": 0.4, "step": 1, "timestamp": 1718000000.5}
    {"tag": "model", "value": "svm"}
    {"artifact": "model.skops"}

Rules, for both: keys are non-empty strings; param and tag values are JSON scalars
(string, number, boolean, null), a later value of a key replacing an earlier one; metric
values are finite numbers (``true``/``false`` are not numbers); ``step`` is an integer
(default 0, as in MLflow) and ``timestamp`` UTC seconds since the epoch (default: the
time of the output commit); metric points keep their order. Anything else (an unknown
field, a wrong type, bad JSON or UTF-8) raises RunFileError naming the file, the line
(1 for ``*.json``) and the field.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from cairn.ml.errors import RunFileError
from cairn.ml.models import MetricPoint

__all__ = ["RUNS_DIR", "RunFile", "parse_run_file"]

# Where run files live in an output commit (a repo path, no leading slash).
RUNS_DIR = ".cairn/runs"

_SCALARS = (str, int, float, bool, type(None))


@dataclass
class RunFile:
    """The content of one run file: ``metrics`` maps each key to its points in logging
    order; ``name``/``experiment`` are None when the file does not say."""

    name: str | None = None
    experiment: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, list[MetricPoint]] = field(default_factory=dict)
    tags: dict[str, Any] = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The ``*.json`` form of this run (every point written out in full)."""
        return {
            "name": self.name,
            "experiment": self.experiment,
            "params": dict(self.params),
            "metrics": {
                k: [{"value": p.value, "step": p.step, "timestamp": p.timestamp} for p in points]
                for k, points in self.metrics.items()
            },
            "tags": dict(self.tags),
            "artifacts": list(self.artifacts),
        }


class _Reader:
    """Checks values of one file, naming the file and line in every error."""

    def __init__(self, path: str, default_time: float) -> None:
        self.path, self.line, self.default_time = path, 1, default_time

    def fail(self, where: str, problem: str) -> RunFileError:
        return RunFileError(
            f"run file /{self.path}, line {self.line}, field {where}: {problem} "
            "(the format is in cairn.ml.runfiles and the README's Runs section; fix the "
            "transform and rerun its pipeline with reprocess)"
        )

    def key(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(where, f"a key must be a non-empty string, not {value!r}")
        return value

    def scalar(self, value: Any, where: str) -> Any:
        if not isinstance(value, _SCALARS):
            raise self.fail(where, f"must be a string, number, boolean or null, not {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(where, f"must be finite, not {value!r}")
        return value

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise self.fail(where, f"must be a string, not {value!r}")
        return value

    def number(self, value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(where, f"must be a number, not {value!r}")
        if not math.isfinite(value):
            raise self.fail(where, f"must be a finite number, not {value!r}")
        return float(value)

    def point(self, key: str, raw: dict[str, Any], where: str) -> MetricPoint:
        step = raw.get("step", 0)
        if isinstance(step, bool) or not isinstance(step, int):
            raise self.fail(f"{where}.step", f"must be an integer, not {step!r}")
        stamp = raw.get("timestamp")
        timestamp = self.default_time if stamp is None else self.number(stamp, f"{where}.timestamp")
        return MetricPoint(key, self.number(raw.get("value"), f"{where}.value"), step, timestamp)

    def mapping(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"must be an object, not {value!r}")
        return value

    def fields(self, obj: dict[str, Any], allowed: set[str], where: str) -> None:
        unknown = sorted(set(obj) - allowed)
        if unknown:
            prefix = f"{where}." if where else ""
            raise self.fail(
                f"{prefix}{unknown[0]}", f"unknown field; expected one of {sorted(allowed)}"
            )


def _parse_json(reader: _Reader, doc: Any) -> RunFile:
    obj = reader.mapping(doc, "(top level)")
    reader.fields(obj, {"name", "experiment", "params", "metrics", "tags", "artifacts"}, "")
    run = RunFile()
    if obj.get("name") is not None:
        run.name = reader.text(obj["name"], "name")
    if obj.get("experiment") is not None:
        run.experiment = reader.text(obj["experiment"], "experiment")
    for section in ("params", "tags"):
        target = getattr(run, section)
        for k, v in reader.mapping(obj.get(section, {}), section).items():
            target[reader.key(k, section)] = reader.scalar(v, f"{section}.{k}")
    for k, v in reader.mapping(obj.get("metrics", {}), "metrics").items():
        key = reader.key(k, "metrics")
        if isinstance(v, list):
            points = []
            for i, raw in enumerate(v):
                where = f"metrics.{k}[{i}]"
                reader.fields(reader.mapping(raw, where), {"value", "step", "timestamp"}, where)
                points.append(reader.point(key, raw, where))
            run.metrics[key] = points
        else:
            run.metrics[key] = [reader.point(key, {"value": v}, f"metrics.{k}")]
    artifacts = obj.get("artifacts", [])
    if not isinstance(artifacts, list):
        raise reader.fail("artifacts", f"must be a list of paths, not {artifacts!r}")
    run.artifacts = [reader.text(a, f"artifacts[{i}]") for i, a in enumerate(artifacts)]
    return run


_EVENT_FIELDS = {
    "param": {"param", "value"},
    "tag": {"tag", "value"},
    "metric": {"metric", "value", "step", "timestamp"},
    "artifact": {"artifact"},
}


def _apply_event(reader: _Reader, run: RunFile, event: Any) -> None:
    obj = reader.mapping(event, "(line)")
    kinds = [k for k in _EVENT_FIELDS if k in obj]
    if len(kinds) > 1:
        raise reader.fail(kinds[1], f"one event per line; this line has {kinds}")
    if not kinds:
        reader.fields(obj, {"name", "experiment"}, "")
        if not obj:
            raise reader.fail("(line)", "an empty event")
        if "name" in obj:
            run.name = reader.text(obj["name"], "name")
        if "experiment" in obj:
            run.experiment = reader.text(obj["experiment"], "experiment")
        return
    kind = kinds[0]
    reader.fields(obj, _EVENT_FIELDS[kind], "")
    if kind == "artifact":
        run.artifacts.append(reader.text(obj["artifact"], "artifact"))
        return
    key = reader.key(obj[kind], kind)
    if "value" not in obj:
        raise reader.fail("value", f"a {kind} event needs a value")
    if kind == "metric":
        run.metrics.setdefault(key, []).append(reader.point(key, obj, "metric"))
    else:
        target = run.params if kind == "param" else run.tags
        target[key] = reader.scalar(obj["value"], "value")


def parse_run_file(path: str, data: bytes, *, default_time: float = 0.0) -> RunFile:
    """Parse the run file at repo path ``path`` (``*.json`` or ``*.jsonl``) holding
    ``data``; metric points without a timestamp get ``default_time`` (UTC seconds).

    Raises RunFileError naming the file, line and field (also for any other suffix).
    """
    reader = _Reader(path.lstrip("/"), default_time)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        reader.line = data[: exc.start].count(b"\n") + 1
        raise reader.fail("(bytes)", "the file is not UTF-8") from None
    if path.endswith(".jsonl"):
        run = RunFile()
        for number, line in enumerate(text.splitlines(), 1):
            reader.line = number
            if not line.strip():
                continue
            _apply_event(reader, run, _loads(reader, line))
        return run
    if path.endswith(".json"):
        return _parse_json(reader, _loads(reader, text))
    raise reader.fail("(name)", "a run file's name ends in .json or .jsonl")


def _loads(reader: _Reader, text: str) -> Any:
    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    try:
        return json.loads(text, parse_constant=constant)
    except ValueError as exc:
        if isinstance(exc, json.JSONDecodeError):
            reader.line += exc.lineno - 1
        raise reader.fail("(json)", f"not valid JSON: {exc}") from None
