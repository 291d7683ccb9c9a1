"""``check_model``: drift of a served model's live traffic against its own training data.

What ``cairn monitor NAME@ALIAS`` does, as one function over the data layer and the
registry (H9's rules call it too):

1. **Reference** (``reference_frame``): by default the version's training data, found
   through its lineage (``Registry.lineage``: the input files of the datum that wrote the
   model file); with ``reference="repo@commit[:/path]"`` the table files of that commit
   (or folder, or file) instead. CSV (``.csv``, ``.tsv``), Parquet (``.parquet``, ``.pq``)
   and JSON Lines (``.jsonl``, ``.ndjson``) files are read with pandas and concatenated in
   path order; other files are skipped and listed. The frame keeps the signature's input
   columns; a positional signature (a model fitted on a bare array) takes the first k
   numeric columns, in file order, and says so in ``reference["note"]``.
2. **Current window** (``cairn.monitoring.windows.read_window``): the deployment's logged
   requests (default deployment: the model's name), by time (``since`` <= t < ``until``)
   and/or the last ``last`` rows; shadow and failed requests are left out.
3. **Feature drift** (``compute_drift``) of every row of the window (all the traffic the
   deployment saw) against the reference, on the signature's columns.
4. **Prediction drift** (``prediction_drift``): the outputs the window's rows answered
   *by this version* against this version's predictions on the reference (the model is
   fetched into the server's cache, ``<home>/work/serving``, and loaded by its flavor), so
   the comparison is like for like. At most ``REFERENCE_PREDICTIONS`` reference rows are
   predicted (evenly spaced, no random sampling). When the model cannot be loaded or
   predict, the reference's ``label_column`` (or ``target``) stands in, and
   ``reference["predictions"]`` says which was used.
5. **Performance** (with ``labels="repo[@branch]"``): label files (JSON Lines, CSV or
   Parquet with ``request_id`` and ``label_column``) joined to this version's predictions
   by request id (``metric_over_time``); accuracy for classifiers, mean absolute error when
   the model outputs floats, per hour (windows up to two days) or per day.

Nothing is written: the report can be recomputed from the same commits.

Errors: ``NotFound`` (model, version, log repo, deployment folder, named reference, labels
repo), ``DriftInputError`` (an empty window or fewer than ``min_rows`` rows, naming how
many; columns the two sides do not share; a bad setting), ``MonitoringError`` (training
data that cannot be found or read as a table, naming the file and format).
"""

from __future__ import annotations

import html
import io
import json
import math
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from cairn.data import DataStore, NotFound, Ref, parse_ref
from cairn.data.paths import normalize
from cairn.ml import signature as signatures
from cairn.ml.models import ModelVersion
from cairn.ml.registry import Registry
from cairn.monitoring.drift import DriftConfig, DriftResult, compute_drift, prediction_drift
from cairn.monitoring.errors import DriftInputError, MonitoringError
from cairn.monitoring.performance import metric_over_time
from cairn.monitoring.windows import Window, read_window
from cairn.pipelines.units import age

__all__ = [
    "MIN_ROWS",
    "REFERENCE_PREDICTIONS",
    "MonitorFrames",
    "MonitorReport",
    "check_model",
    "parse_time",
    "render_report_html",
    "read_table",
    "reference_frame",
    "write_report_html",
]

# Fewer rows than this in the window is an error: the chi-square test wants an expected
# count of at least 5 per cell (Cochran's rule) and PSI cuts ten bins, so a handful of rows
# gives p-values and PSIs that mean little. ``min_rows=`` lowers it.
MIN_ROWS = 30
REFERENCE_PREDICTIONS = 100_000  # reference rows predicted for the output comparison
_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


@dataclass(frozen=True)
class MonitorFrames:
    """The frames a report was computed from, for plots: ``reference`` and ``current``
    (the compared input columns) and the output columns of each side (None when there is
    no prediction comparison)."""

    reference: pd.DataFrame
    current: pd.DataFrame
    reference_outputs: pd.DataFrame | None = None
    current_outputs: pd.DataFrame | None = None


@dataclass(frozen=True)
class MonitorReport:
    """One check of a model version.

    ``reference``: ``{"source": "lineage" | "named", "ref": "repo@commit:/path"`` (named)
    or a list of them (lineage), ``"files"``, ``"skipped"``, ``"rows"``, ``"columns"``,
    ``"predictions"`` (``"model"``, ``"labels:<column>"`` or ``"unavailable: <why>"``) and
    ``"note"`` (set for positional or missing signatures)``}``.
    ``window``: ``{"since", "until", "last", "rows", "first_time", "last_time", "commit",
    "log", "version_rows"}`` (times in UTC epoch seconds; ``version_rows``: rows this version
    answered, the ones the prediction and performance comparisons use).
    ``result``: feature drift; ``prediction``: output drift (None when neither predictions
    nor a labels column of the reference were available, or the version answered no row);
    ``performance``: ``[{"start" (ISO 8601 UTC), "predictions", "labelled", "value",
    "metric"}]`` per time bucket, when labels were given. ``frames`` holds the compared
    frames (not part of ``to_json``)."""

    model: str
    version: int
    deployment: str
    reference: dict[str, Any]
    window: dict[str, Any]
    result: DriftResult
    prediction: DriftResult | None
    performance: list[dict[str, Any]] | None
    frames: MonitorFrames | None = field(default=None, repr=False, compare=False)

    @property
    def drifted(self) -> bool:
        """The feature-drift verdict (``result.drifted``)."""
        return self.result.drifted

    def verdict(self) -> str:
        """One line: the feature and prediction verdicts and the last metric value."""
        from cairn.monitoring.report import ordered

        r = self.result
        worst = [f.name for f in ordered(r) if f.drifted]  # the most shifted first
        parts = [
            f"{self.model} v{self.version} on {self.deployment}: "
            + ("DRIFT" if r.drifted else "no drift")
            + f" ({len(worst)} of {len(r.features)} features"
            + (f": {', '.join(worst[:5])}" if worst else "")
            + (", ..." if len(worst) > 5 else "")
            + ")"
        ]
        if self.prediction is not None:
            parts.append("prediction drift" if self.prediction.drifted else "predictions stable")
        if self.performance:
            done = [p for p in self.performance if p["value"] is not None]
            if done:
                parts.append(f"{done[-1]['metric']} {done[-1]['value']:.4g} (latest bucket)")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "deployment": self.deployment,
            "drifted": self.result.drifted,
            "reference": self.reference,
            "window": self.window,
            "result": json.loads(self.result.to_json()),
            "prediction": json.loads(self.prediction.to_json()) if self.prediction else None,
            "performance": self.performance,
        }

    def to_json(self, indent: int | None = None) -> str:
        """``to_dict`` as JSON (the CLI's ``--raw``); non-finite floats become null."""
        return json.dumps(_finite(self.to_dict()), indent=indent, allow_nan=False, default=str)


def parse_time(text: str | float | None, now: float | None = None) -> float | None:
    """UTC epoch seconds from ``--since`` / ``--until`` text: a duration ago (``90s``,
    ``15m``, ``1h``, ``2d``, ``1w``), an ISO 8601 date or time (``2026-11-23``,
    ``2026-11-23T10:00``; without an offset it is UTC, as the prediction log's times), or
    epoch seconds. None stays None. Raises DriftInputError for anything else."""
    if text is None or isinstance(text, (int, float)):
        return None if text is None else float(text)
    ago = age(text)  # a bare number is epoch seconds here, not an age
    if ago is not None:
        return (time.time() if now is None else now) - ago
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise DriftInputError(
            f"time {text!r}: give a duration ago (30m, 1h, 2d, 1w), an ISO 8601 time "
            "(2026-11-23T10:00, UTC unless it has an offset) or epoch seconds"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def read_table(data: DataStore, ref: Ref) -> pd.DataFrame | None:
    """The table in the file ``ref`` names (a finished commit's file), read with pandas by
    its extension (CSV, TSV, Parquet, JSON Lines); None for another extension. Raises
    MonitoringError naming the file and format when it does not parse."""
    fmt = _FORMATS.get(PurePosixPath(ref.path or "").suffix.lower())
    if fmt is None:
        return None
    body = io.BytesIO(b"".join(data.read_file(ref)))
    where = _where(ref)
    try:
        if fmt in ("csv", "tsv"):
            frame = pd.read_csv(body, sep="," if fmt == "csv" else "\t")
        elif fmt == "parquet":
            frame = pd.read_parquet(body)
        else:
            frame = pd.read_json(body, lines=True)
    except (ValueError, ImportError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise MonitoringError(
            f"{where} cannot be read as {fmt} ({type(exc).__name__}: {exc}); fix the file or "
            "name readable data with --reference repo@commit:/path"
        ) from None
    if frame.empty or len(frame.columns) == 0:
        raise MonitoringError(f"{where} holds no rows as {fmt}; name other data with --reference")
    return frame


def _where(ref: Ref) -> str:
    """``repo@commit:/path``, the form every data command takes."""
    return f"{ref.repo}@{ref.commit}:/{(ref.path or '').lstrip('/')}"


def _tables(data: DataStore, refs: list[Ref]) -> tuple[pd.DataFrame, list[str], list[str]]:
    frames, files, skipped = [], [], []
    for ref in refs:
        where = _where(ref)
        frame = read_table(data, ref)
        if frame is None:
            skipped.append(where)
            continue
        frames.append(frame)
        files.append(where)
    if not frames:
        raise MonitoringError(
            f"no table among {', '.join(skipped) or 'no files'}: cairn reads CSV, TSV, Parquet "
            "and JSON Lines (.csv .tsv .parquet .pq .jsonl .ndjson); name such data with "
            "--reference repo@commit:/path"
        )
    return pd.concat(frames, ignore_index=True), files, skipped


def _files_under(data: DataStore, ref: Ref) -> list[Ref]:
    path = normalize(ref.path or "/")
    found = [p for p, _ in data.walk_files(Ref(ref.repo, ref.commit, path=path))]
    return [Ref(ref.repo, ref.commit, path=normalize(p)) for p in sorted(found)]


def reference_frame(
    data: DataStore, registry: Registry, version: ModelVersion, reference: str | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The reference rows of ``version`` and where they came from (``MonitorReport
    .reference`` without ``predictions``). The frame holds every column of the files (the
    caller picks the signature's). ``reference`` is ``repo@branch-or-commit[:/path]``; a
    branch is resolved to its head once. Raises NotFound, MonitoringError (see module)."""
    if reference is not None:
        ref = parse_ref(reference)
        commit = data.resolve(Ref(ref.repo, ref.commit, ref.ancestry)).id
        pinned = Ref(ref.repo, commit, path=normalize(ref.path or "/"))
        frame, files, skipped = _tables(data, _files_under(data, pinned))
        info: dict[str, Any] = {"source": "named", "ref": _where(pinned)}
    else:
        lineage = registry.lineage(f"{version.name}/{version.version}")
        training = lineage.get("training")
        if not training:
            raise MonitoringError(
                f"{version.name} v{version.version} ({version.ref}) was not written by a "
                "pipeline, so cairn does not know its training data; name it with "
                "--reference repo@commit:/path"
            )
        inputs = training.get("input_files") or []
        if not inputs:
            raise MonitoringError(
                f"the lineage of {version.name} v{version.version} names no input files "
                f"(pipeline {training.get('pipeline')!r}); name the training data with "
                "--reference repo@commit:/path"
            )
        refs = [Ref(f["repo"], f["commit"], path=normalize(f["path"])) for f in inputs]
        frame, files, skipped = _tables(data, refs)
        info = {"source": "lineage", "ref": [_where(r) for r in refs]}
    info.update(files=files, skipped=skipped, rows=len(frame))
    return frame, info


def _columns(
    version: ModelVersion, reference: pd.DataFrame, current: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, str | None]:
    """Both sides on the model's input columns, named alike, and a note on how they were
    matched (None for a named signature)."""
    sig = version.signature
    if sig is None:
        shared = [c for c in reference.columns if c in set(current.columns)]
        if not shared:
            raise DriftInputError(
                f"{version.name} v{version.version} has no signature and the reference and the "
                "log share no column name; register the model with --signature"
            )
        note = (
            f"the model has no signature: compared the {len(shared)} columns the reference "
            "and the log share"
        )
        return reference[shared], current[shared], note
    names = signatures.columns(sig) or []
    if sig.get("positional"):
        numeric = [
            c
            for c in reference.columns
            if pd.api.types.is_numeric_dtype(reference[c].dtype)
            and not pd.api.types.is_bool_dtype(reference[c].dtype)
        ]
        if len(numeric) < len(names) or current.shape[1] < len(names):
            raise MonitoringError(
                f"{version.name} v{version.version} takes {len(names)} columns by position; the "
                f"reference has {len(numeric)} numeric columns and the log {current.shape[1]}; "
                "name the data with --reference"
            )
        picked = numeric[: len(names)]
        ref = reference[picked].set_axis(names, axis=1)
        cur = current.iloc[:, : len(names)].set_axis(names, axis=1)
        note = (
            f"positional signature: the model's {len(names)} inputs are the reference's first "
            f"{len(names)} numeric columns ({', '.join(map(str, picked[:5]))}"
            f"{', ...' if len(picked) > 5 else ''}) and the log's first {len(names)} columns"
        )
        return ref, cur, note
    missing = [n for n in names if n not in reference.columns]
    if missing:
        raise MonitoringError(
            f"the reference lacks {len(missing)} input column(s) of the model's signature "
            f"({', '.join(map(repr, missing[:5]))}{', ...' if len(missing) > 5 else ''}); "
            "name the training data with --reference repo@commit:/path"
        )
    absent = [n for n in names if n not in current.columns]
    if absent:
        raise DriftInputError(
            f"the logged requests lack the model's input column(s) "
            f"{', '.join(map(repr, absent[:5]))}; were they sent by position?"
        )
    return reference[names], current[names], None


def _evenly(frame: pd.DataFrame, limit: int) -> pd.DataFrame:
    if len(frame) <= limit:
        return frame
    step = math.ceil(len(frame) / limit)
    return frame.iloc[::step]


def _reference_outputs(
    data: DataStore,
    version: ModelVersion,
    inputs: pd.DataFrame,
    full: pd.DataFrame,
    label_column: str,
    cache_dir: Path,
) -> tuple[Any, str]:
    """The version's outputs on the reference (or its labels column) and which it was."""
    from cairn.ml import flavors

    sample = _evenly(inputs, REFERENCE_PREDICTIONS)
    try:
        model = flavors.load(version, flavors.fetch(data, version, cache_dir))
        try:
            outputs = model.predict(signatures.enforce(version.signature, sample))
        finally:
            model.close()
        return outputs, "model"
    except Exception as exc:  # noqa: BLE001 - any model failure falls back to the labels
        why = f"{type(exc).__name__}: {exc}"
    for column in dict.fromkeys((label_column, "target")):
        if column in full.columns:
            return full[column], f"labels:{column} (the model did not predict: {why})"
    return None, f"unavailable: the model did not predict ({why}) and no labels column"


def _read_labels(data: DataStore, spec: str, label_column: str) -> pd.DataFrame:
    ref = parse_ref(spec)
    commit = data.resolve(Ref(ref.repo, ref.commit, ref.ancestry)).id
    refs = _files_under(data, Ref(ref.repo, commit, path=normalize(ref.path or "/")))
    frames = [f for f in (read_table(data, r) for r in refs) if f is not None]
    if not frames:
        raise MonitoringError(
            f"labels {spec}: no JSON Lines, CSV or Parquet file with request_id and "
            f"{label_column!r}"
        )
    labels = pd.concat(frames, ignore_index=True)
    missing = [c for c in ("request_id", label_column) if c not in labels.columns]
    if missing:
        raise DriftInputError(
            f"labels {spec}: no column(s) {missing} (columns: {list(labels.columns)[:8]}); "
            "set --label-column"
        )
    return labels[["request_id", label_column]].astype({"request_id": str})


def _window_info(
    window: Window, since: float | None, until: float | None, last: int | None, log: str
) -> dict[str, Any]:
    times = window.requests["time"]
    return {
        "since": since,
        "until": until,
        "last": last,
        "rows": len(window),
        "first_time": float(times.min()) if len(times) else None,
        "last_time": float(times.max()) if len(times) else None,
        "commit": window.commit,
        "log": log,
    }


def check_model(
    data: DataStore,
    registry: Registry,
    spec: str,
    *,
    deployment: str | None = None,
    since: float | None = None,
    until: float | None = None,
    last: int | None = None,
    reference: str | None = None,
    config: DriftConfig | None = None,
    log_repo: str = "predictions",
    labels: str | None = None,
    label_column: str = "label",
    metric: str | None = None,
    freq: str | None = None,
    min_rows: int = MIN_ROWS,
    cache_dir: Path | None = None,
) -> MonitorReport:
    """Check the version ``spec`` names (``NAME@ALIAS``, ``NAME/VERSION``, ``NAME``) against
    its deployment's current window, as the module docstring describes.

    ``since``/``until`` are UTC epoch seconds (``parse_time`` reads the CLI's text);
    ``last`` keeps the newest N input rows. ``metric`` is a ``sklearn.metrics`` function
    name for the performance (default: accuracy, or mean absolute error for float outputs);
    ``freq`` a pandas offset alias for its buckets. ``cache_dir`` is where the model is
    fetched (default: the server's, ``<home>/work/serving``).

    Raises NotFound, DriftInputError, MonitoringError (see the module docstring).
    """
    version = registry.resolve(spec)
    deployment = deployment or version.name
    if last is not None and last < 1:
        raise DriftInputError(f"last {last}: at least 1 row")
    if since is not None and until is not None and until <= since:
        raise DriftInputError(f"until ({until}) must come after since ({since})")
    try:
        data.inspect_repo(log_repo)
    except NotFound:
        raise NotFound(
            f"no prediction log repo {log_repo!r}: serve the model with its log on "
            f"(cairn serve {deployment}) or name the log's repo"
        ) from None
    try:
        window = read_window(data, deployment, repo=log_repo, since=since, until=until, last=last)
    except NotFound:
        raise NotFound(
            f"the prediction log {log_repo!r} holds no request of deployment {deployment!r}; "
            "name the deployment that serves the model (--deployment)"
        ) from None
    info = _window_info(window, since, until, last, log_repo)
    if len(window) < min_rows:
        raise DriftInputError(
            f"the window of {deployment!r} ({_describe_span(since, until, last)}) holds "
            f"{len(window)} logged row(s); at least {min_rows} are needed: "
            "widen it (--since, --last) or wait for traffic"
        )
    full, ref_info = reference_frame(data, registry, version, reference)
    ref_inputs, cur_inputs, note = _columns(version, full, window.inputs)
    ref_info["columns"] = len(ref_inputs.columns)
    if note:
        ref_info["note"] = note
    config = config or DriftConfig()
    result = compute_drift(ref_inputs, cur_inputs, config)

    mine = (window.requests["model"] == version.name) & (
        window.requests["version"] == version.version
    )
    info["version_rows"] = int(mine.sum())
    cache = cache_dir or Path(registry.pipelines.work_dir) / "serving"
    ref_outputs, how = _reference_outputs(data, version, ref_inputs, full, label_column, cache)
    ref_info["predictions"] = how
    prediction = None
    frames = MonitorFrames(ref_inputs, cur_inputs)
    cur_outputs = window.outputs[mine.to_numpy()].reset_index(drop=True)
    if ref_outputs is not None and len(cur_outputs):
        ref_frame = _as_outputs(ref_outputs, cur_outputs)
        # ``columns`` name input features; the outputs have their own.
        prediction = prediction_drift(ref_frame, cur_outputs, replace(config, columns=None))
        frames = MonitorFrames(ref_inputs, cur_inputs, ref_frame, cur_outputs)

    performance = None
    if labels is not None:
        truth = _read_labels(data, labels, label_column)
        preds = window.predictions()[mine.to_numpy()].astype({"request_id": str})
        if metric is None and pd.api.types.is_float_dtype(preds["prediction"].dtype):
            metric = "mean_absolute_error"
        seconds = (info["last_time"] or 0.0) - (info["first_time"] or 0.0)
        table = metric_over_time(
            preds,
            truth,
            metric=metric,
            freq=freq or ("1h" if seconds <= 2 * 86400 else "1D"),
            label=label_column,
        )
        name = table.attrs["metric"]
        performance = [
            {
                "start": row.start.isoformat(),
                "predictions": int(row.predictions),
                "labelled": int(row.labelled),
                "value": None if math.isnan(row.value) else float(row.value),
                "metric": name,
            }
            for row in table.itertuples()
        ]
    return MonitorReport(
        model=version.name,
        version=version.version,
        deployment=deployment,
        reference=ref_info,
        window=info,
        result=result,
        prediction=prediction,
        performance=performance,
        frames=frames,
    )


def _as_outputs(outputs: Any, like: pd.DataFrame) -> pd.DataFrame:
    """The reference outputs as a frame with the logged outputs' column names."""
    if isinstance(outputs, pd.DataFrame):
        frame = outputs.reset_index(drop=True)
    elif isinstance(outputs, pd.Series):
        frame = outputs.reset_index(drop=True).to_frame()
    else:
        values = outputs.tolist() if hasattr(outputs, "tolist") else list(outputs)
        if values and isinstance(values[0], (list, tuple)):
            frame = pd.DataFrame(values)
        else:
            frame = pd.DataFrame({0: values})
    if frame.shape[1] == like.shape[1] and list(frame.columns) != list(like.columns):
        frame = frame.set_axis(list(like.columns), axis=1)
    return frame


def render_report_html(report: MonitorReport) -> str:
    """The self-contained HTML page of a report (``cairn.monitoring.report.render_html``):
    what was compared, the feature drift with a plot per feature, the prediction drift with
    its plot, and the metric per time bucket. Raises MonitoringError for a report without
    its frames (one rebuilt from JSON)."""
    from cairn.monitoring.report import render_html

    if report.frames is None:
        raise MonitoringError("this report has no frames to plot; run check_model again")
    f = report.frames
    title = f"Drift of {report.model} v{report.version} on {report.deployment}"
    page = render_html(report.result, f.reference, f.current, title=title)
    ref = report.reference["ref"]
    refs = ref if isinstance(ref, list) else [ref]
    w = report.window
    span = " to ".join(
        datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")
        for t in (w["first_time"], w["last_time"])
        if t is not None
    )
    context = (
        f"<p>reference ({html.escape(report.reference['source'])}, "
        f"{report.reference['rows']:,} rows): {html.escape(', '.join(refs))}"
        + (f"<br>{html.escape(report.reference['note'])}" if report.reference.get("note") else "")
        + f"<br>current window: {w['rows']:,} logged rows ({html.escape(span)}) from "
        f"{html.escape(w['log'])}@{html.escape(w['commit'])}; this version answered "
        f"{w.get('version_rows', 0):,}</p>"
    )
    extra = []
    if report.prediction is not None and f.reference_outputs is not None:
        body = render_html(
            report.prediction, f.reference_outputs, f.current_outputs, title="Prediction drift"
        )
        inner = body.partition("<body>")[2].rpartition("</body>")[0]
        extra.append(inner.replace("<h1>", "<h2>", 1).replace("</h1>", "</h2>", 1))
    elif report.prediction is None:
        extra.append(
            f"<h2>Prediction drift</h2><p>not computed: "
            f"{html.escape(str(report.reference.get('predictions', '')))}</p>"
        )
    if report.performance:
        rows = "".join(
            f"<tr><td>{html.escape(p['start'])}</td><td>{p['predictions']}</td>"
            f"<td>{p['labelled']}</td>"
            f"<td>{'-' if p['value'] is None else format(p['value'], '.4g')}</td></tr>"
            for p in report.performance
        )
        extra.append(
            f"<h2>{html.escape(report.performance[0]['metric'])} over time</h2>"
            "<table><tr><th>bucket start (UTC)</th><th>predictions</th><th>labelled</th>"
            f"<th>value</th></tr>{rows}</table>"
        )
    head, _, tail = page.partition("</h1>")
    page = head + "</h1>" + context + tail
    return page.replace("</body></html>", "".join(extra) + "</body></html>")


def write_report_html(path: str | Path, report: MonitorReport) -> Path:
    """Write ``render_report_html(report)`` to ``path`` (UTF-8); returns the path."""
    out = Path(path)
    out.write_text(render_report_html(report), encoding="utf-8")
    return out


def _describe_span(since: float | None, until: float | None, last: int | None) -> str:
    def iso(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")

    parts = []
    if since is not None:
        parts.append(f"since {iso(since)}")
    if until is not None:
        parts.append(f"until {iso(until)}")
    if last is not None:
        parts.append(f"last {last} rows")
    return ", ".join(parts) or "the whole log"


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
