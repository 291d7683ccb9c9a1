"""A model's metric over time, once labels arrive after the predictions.

Predictions are logged when they are made; the truth often comes later (a label repo
filled by a human or a downstream system). ``metric_over_time`` joins the two by request
id and computes a metric per time bucket, so a drop in accuracy shows up beside the drift
report. Pure function over DataFrames; ``cairn.monitoring.windows`` builds the
predictions frame from the prediction log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from cairn.monitoring.errors import DriftInputError

__all__ = ["metric_over_time", "resolve_metric"]

Metric = Callable[[Any, Any], float]


def resolve_metric(metric: str | Metric | None) -> tuple[str, Metric]:
    """``(name, function(y_true, y_pred) -> float)``: None is scikit-learn's
    ``accuracy_score``; a string names a function of ``sklearn.metrics`` (e.g.
    ``"f1_score"``, ``"mean_absolute_error"``); a callable is used as it is. Raises
    DriftInputError for a name scikit-learn does not have."""
    if callable(metric):
        return getattr(metric, "__name__", "metric"), metric
    from sklearn import metrics as skm

    name = metric or "accuracy_score"
    fn = getattr(skm, name, None)
    if not callable(fn) or name.startswith("_") or name.endswith("_scorer"):
        raise DriftInputError(
            f"metric {name!r} is not a function of sklearn.metrics; pass e.g. "
            "'accuracy_score', 'f1_score', 'mean_absolute_error' or a callable"
        )
    return name, fn


def metric_over_time(
    predictions: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    metric: str | Metric | None = None,
    freq: str = "1D",
    on: str = "request_id",
    time: str = "time",
    prediction: str = "prediction",
    label: str = "label",
) -> pd.DataFrame:
    """The metric per time bucket of the labelled predictions.

    ``predictions`` has columns ``on``, ``time`` (UTC seconds since the epoch, as the
    prediction log writes them, or datetimes) and ``prediction``; ``labels`` has ``on`` and
    ``label``. A request id with several labels takes the last one (a correction); one with
    several prediction rows (a batch request) is expected to have as many label rows in the
    same order, matched by position within the request. ``freq`` is a pandas offset alias
    ("1h", "1D", "7D"); buckets start at multiples of it (UTC).

    Returns a DataFrame with one row per bucket holding a prediction, in time order:
    ``start`` (UTC Timestamp), ``predictions`` (rows), ``labelled`` (rows with a label)
    and ``value`` (the metric over the labelled rows; NaN when none), plus
    ``DataFrame.attrs["metric"]``, the metric's name. Raises DriftInputError for a missing
    column or an unknown metric.
    """
    name, fn = resolve_metric(metric)
    for frame, side, cols in (
        (predictions, "predictions", (on, time, prediction)),
        (labels, "labels", (on, label)),
    ):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise DriftInputError(f"the {side} frame has no column(s) {missing}")
    preds = predictions[[on, time, prediction]].set_axis([on, "_time", "_pred"], axis=1)
    preds = preds.assign(_pos=preds.groupby(on).cumcount())
    labs = labels[[on, label]].set_axis([on, "_label"], axis=1)
    labs = labs.assign(_pos=labs.groupby(on).cumcount())
    one_row = labs[on].map(preds.groupby(on).size()).eq(1)
    last = labs[one_row].groupby(on).tail(1).assign(_pos=0)
    labs = pd.concat([labs[~one_row], last])
    joined = preds.merge(labs, on=[on, "_pos"], how="left")
    stamps = joined["_time"]
    if not pd.api.types.is_datetime64_any_dtype(stamps.dtype):
        stamps = pd.to_datetime(stamps.astype("float64"), unit="s", utc=True)
    elif stamps.dt.tz is None:
        stamps = stamps.dt.tz_localize("UTC")
    joined["start"] = stamps.dt.floor(freq)
    rows = []
    for start, group in joined.groupby("start", sort=True):
        done = group[group["_label"].notna()]
        value = float(fn(done["_label"].tolist(), done["_pred"].tolist())) if len(done) else None
        rows.append(
            {
                "start": start,
                "predictions": len(group),
                "labelled": len(done),
                "value": float("nan") if value is None else value,
            }
        )
    out = pd.DataFrame(rows, columns=["start", "predictions", "labelled", "value"])
    out.attrs["metric"] = name
    return out
