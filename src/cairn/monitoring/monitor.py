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

Nothing is written: the report can be recomputed from the same commits. The report type
lives in ``model_report``, the reference side in ``reference``, table files in ``tables``,
labels in ``labels``; their public names are importable from here too.

Errors: ``NotFound`` (model, version, log repo, deployment folder, named reference, labels
repo), ``DriftInputError`` (an empty window or fewer than ``min_rows`` rows, naming how
many; columns the two sides do not share; a bad setting), ``MonitoringError`` (training
data that cannot be found or read as a table, naming the file and format).
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from cairn.data import DataStore, NotFound
from cairn.ml.registry import Registry
from cairn.monitoring.drift import DriftConfig, compute_drift, prediction_drift
from cairn.monitoring.errors import DriftInputError
from cairn.monitoring.labels import read_labels
from cairn.monitoring.model_report import (
    MonitorFrames,
    MonitorReport,
    render_report_html,
    write_report_html,
)
from cairn.monitoring.performance import metric_over_time
from cairn.monitoring.reference import (
    REFERENCE_PREDICTIONS,
    as_outputs,
    match_columns,
    reference_frame,
    reference_outputs,
)
from cairn.monitoring.tables import read_table
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
    ref_inputs, cur_inputs, note = match_columns(version, full, window.inputs)
    ref_info["columns"] = len(ref_inputs.columns)
    if note:
        ref_info["note"] = note
    config = config or DriftConfig()
    result = compute_drift(ref_inputs, cur_inputs, config)

    mine = (window.requests["model"] == version.name) & (
        window.requests["version"] == version.version
    )
    info["version_rows"] = int(mine.sum())
    # Like with like: the reference side is predict's answers, so only the rows that
    # predict answered (with outputs of one shape) are compared; the rest are named.
    compared = mine & window.requests.index.isin(window.outputs.index)
    compared &= window.method == "predict"
    rows = window.requests.index[compared.to_numpy()]
    info["compared_rows"] = len(rows)
    left_out = {
        str(k): int(v)
        for k, v in window.requests.loc[mine & ~compared, "method"].value_counts().items()
    }
    if left_out:
        info["left_out"] = left_out
    cache = cache_dir or Path(registry.pipelines.work_dir) / "serving"
    ref_outputs, how = reference_outputs(data, version, ref_inputs, full, label_column, cache)
    ref_info["predictions"] = how
    prediction = None
    frames = MonitorFrames(ref_inputs, cur_inputs)
    cur_outputs = window.outputs.loc[rows].reset_index(drop=True)
    if ref_outputs is not None and len(cur_outputs):
        ref_frame = as_outputs(ref_outputs, cur_outputs)
        # ``columns`` name input features; the outputs have their own.
        prediction = prediction_drift(ref_frame, cur_outputs, replace(config, columns=None))
        frames = MonitorFrames(ref_inputs, cur_inputs, ref_frame, cur_outputs)

    performance = None
    if labels is not None:
        truth = read_labels(data, labels, label_column, required=True)
        preds = window.predictions().loc[rows].reset_index(drop=True)
        preds = preds.astype({"request_id": str})
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
