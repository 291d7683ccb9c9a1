"""The current window: logged predictions read back from the prediction log as frames.

The log's format is ``cairn.serving.predlog``'s (JSON Lines under
``<repo>@<branch>:/<deployment>/<YYYY-MM-DD>/<time>-<pid>-<seq>.jsonl``, one request per
line with ``request_id``, ``time`` (UTC epoch seconds), ``model``, ``version``,
``inputs`` (MLflow ``dataframe_split``: columns and rows), ``outputs`` (one item per
input row), ``shadow`` and ``status``). ``read_window`` reads it with the log's one reader,
``cairn.serving.predlog.read_records``, through the data layer, so it works on any backend
and on any past commit of the log.

Outputs are compared like with like: each record names the model method that answered
(``method``: ``predict``, or ``predict_proba``... as the request's ``params`` asked; older
logs without it are ``predict``). The window's ``outputs`` hold the rows of one method,
``predict`` when any row has it; the rows of other methods, and rows whose outputs have
another shape than the rest (a list of probabilities among labels), are left out of
``outputs`` and named by ``Window.left_out``.

A window is chosen by time (``since`` <= time < ``until``) and/or as the last ``last``
input rows. Shadow requests (answers that were discarded) and requests whose status is
not ``"ok"`` (no outputs) are left out unless asked for. Day folders outside the time
range are not read (a file lives in the folder of its first record's day, so the day
before ``since`` is read too).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from cairn.data import DataStore, Ref
from cairn.serving.predlog import read_records

__all__ = ["Window", "read_window"]


@dataclass(frozen=True)
class Window:
    """Frames of one window, one row per *input row* (a request of k rows gives k rows):
    ``inputs`` (the model's input columns) and ``requests`` (``request_id``, ``time`` in
    UTC epoch seconds, ``model``, ``version``, ``row``: the position within the request,
    ``method``: the model method that answered), both indexed 0..n-1; ``outputs``
    (``prediction``, or ``prediction_0``... for list outputs, or the output table's
    columns) of the rows answered by ``method`` only, indexed by their row position (see
    the module doc). ``commit`` is the log commit read."""

    inputs: pd.DataFrame
    outputs: pd.DataFrame
    requests: pd.DataFrame
    commit: str
    method: str = "predict"

    def __len__(self) -> int:
        return len(self.requests)

    @property
    def left_out(self) -> dict[str, int]:
        """Rows whose outputs ``outputs`` leaves out, by what answered them (a method name,
        or ``"<method>, another shape"``)."""
        other = self.requests.loc[~self.requests.index.isin(self.outputs.index), "method"]
        return {str(k): int(v) for k, v in Counter(other).items()}

    def predictions(self) -> pd.DataFrame:
        """``request_id``, ``time``, ``prediction`` of the rows ``outputs`` holds, indexed
        as they are: the input of ``cairn.monitoring.performance.metric_over_time``
        (single-output models)."""
        return pd.concat(
            [
                self.requests.loc[self.outputs.index, ["request_id", "time"]],
                self.outputs.iloc[:, :1],
            ],
            axis=1,
        ).set_axis(["request_id", "time", "prediction"], axis=1)


def _seconds(value: float | datetime | None) -> float | None:
    if value is None or isinstance(value, (int, float)):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def read_window(
    data: DataStore,
    deployment: str,
    *,
    repo: str = "predictions",
    commit: str | None = None,
    since: float | datetime | None = None,
    until: float | datetime | None = None,
    last: int | None = None,
    include_shadow: bool = False,
) -> Window:
    """The window of ``deployment``'s logged requests in ``repo@commit`` (default: the
    default branch's head). ``since``/``until`` are UTC epoch seconds or datetimes (naive
    ones are UTC); ``last`` keeps the newest ``last`` input rows of what remains. Raises
    cairn.data's NotFound when the repo, commit or deployment folder does not exist."""
    head = data.resolve(Ref(repo, commit)).id
    records = list(
        read_records(
            data,
            repo,
            commit=head,
            deployment=deployment,
            since=_seconds(since),
            until=_seconds(until),
            shadow=include_shadow,
            status="ok",
            newest_first=last is not None,
            last_rows=last,
        )
    )
    records.sort(key=lambda r: r["time"])
    return _frames(records, head, last)


def _frames(records: list[dict[str, Any]], head: str, last: int | None) -> Window:
    inputs, outputs, meta = [], [], []
    for rec in records:
        columns = rec["inputs"]["columns"]
        method = rec.get("method") or "predict"
        for i, row in enumerate(rec["inputs"]["data"]):
            inputs.append(dict(zip(columns, row, strict=True)))
            meta.append(
                [rec["request_id"], rec["time"], rec.get("model"), rec.get("version"), i, method]
            )
        outputs.extend(rec["outputs"])
    if last is not None:
        inputs, outputs, meta = inputs[-last:], outputs[-last:], meta[-last:]
    methods = [m[5] for m in meta]
    main = (
        "predict" if "predict" in methods or not methods else Counter(methods).most_common(1)[0][0]
    )
    shapes = Counter(_shape(o) for o, m in zip(outputs, methods, strict=True) if m == main)
    shape = shapes.most_common(1)[0][0] if shapes else None
    kept = []
    for i, (item, m) in enumerate(zip(outputs, methods, strict=True)):
        if m == main and _shape(item) == shape:
            kept.append(i)
        elif m == main:
            meta[i][5] = f"{m}, another shape"
    requests = pd.DataFrame(
        meta, columns=["request_id", "time", "model", "version", "row", "method"]
    )
    answered = _outputs([outputs[i] for i in kept]).set_axis(pd.Index(kept), axis=0)
    return Window(pd.DataFrame(inputs), answered, requests, head, main)


def _shape(item: Any) -> Any:
    """What sort of output ``item`` is: a table row (its keys), a list (its length) or a
    single value; one frame holds outputs of one sort."""
    if isinstance(item, dict):
        return ("row", tuple(sorted(item)))
    if isinstance(item, list):
        return ("list", len(item))
    return "value"


def _outputs(items: list[Any]) -> pd.DataFrame:
    if items and isinstance(items[0], dict):
        return pd.DataFrame(items)
    if items and isinstance(items[0], list):
        width = len(items[0])
        return pd.DataFrame(items, columns=[f"prediction_{i}" for i in range(width)])
    return pd.DataFrame({"prediction": items})
