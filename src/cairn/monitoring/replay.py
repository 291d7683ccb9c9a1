"""Replay: a deployment's logged traffic sent to a candidate model offline.

``replay`` reads a window of the prediction log (``cairn.monitoring.windows.read_window``:
by time and/or the last N input rows; shadow and failed requests left out), predicts every
row with the candidate in batches of ``BATCH_ROWS`` (one ``predict`` call per batch, no
server, no live traffic), and compares its answers with the outputs production logged for
the same rows:

- ``agreement``: the share of rows where both answered the same (equal values; floats
  within ``rtol`` 1e-6 / ``atol`` 1e-9 of each other; a row of several outputs agrees
  when all of them do);
- ``confusion`` (class outputs): counts of production's answer (rows) against the
  candidate's (columns);
- ``deltas`` (float outputs): candidate minus production, mean, mean absolute, quantiles
  of the absolute delta, and a histogram;
- ``labels`` (with ``labels=REPO[@BRANCH]``, joined by request id as ``cairn monitor
  --labels`` does): the metric of production's answers and of the candidate's on the
  same labelled rows.

The document ``replay`` returns (JSON-able, the ``--raw`` form; ``render_replay_html``
draws it) is what the monitoring loop's ``replay`` gate (``replay_verdict``) decides on.
Nothing is written.
"""

from __future__ import annotations

import base64
import html
import io
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cairn.data import DataStore, NotFound
from cairn.monitoring.errors import DriftInputError
from cairn.monitoring.labels import join_labels, read_labels
from cairn.monitoring.performance import resolve_metric
from cairn.monitoring.reference import as_outputs
from cairn.monitoring.windows import read_window

if TYPE_CHECKING:
    from cairn.ml.registry import Registry
    from cairn.monitoring.rules import ReplaySpec

__all__ = ["BATCH_ROWS", "lower_is_better", "render_replay_html", "replay", "replay_verdict"]

BATCH_ROWS = 20_000
"""Rows per ``predict`` call: large enough that per-call overhead (signature checks,
pandas) is spread thin, small enough that one batch's frames stay a few MB."""

_RTOL, _ATOL = 1e-6, 1e-9
_MAX_CLASSES = 50  # a confusion table wider than this is not readable; count the pairs only


def lower_is_better(metric: str) -> bool:
    """Whether ``metric`` (a sklearn.metrics name) is an error or loss, lower better."""
    return metric.endswith(("_error", "_loss", "_deviance"))


def replay(
    data: DataStore,
    registry: Registry,
    spec: str,
    deployment: str,
    *,
    since: float | None = None,
    until: float | None = None,
    last: int | None = None,
    log_repo: str = "predictions",
    labels: str | None = None,
    label_column: str = "label",
    metric: str | None = None,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """Replay ``deployment``'s logged window against the version ``spec`` names
    (``NAME@ALIAS``, ``NAME/VERSION``) as the module doc says; return the document.

    ``since``/``until`` are UTC epoch seconds, ``last`` the newest N input rows.
    ``metric`` a sklearn.metrics name (default accuracy_score for classes, else
    mean_absolute_error). ``cache_dir``: where the model is fetched (default the server's,
    ``<home>/work/serving``). Raises NotFound (model, log repo, deployment's folder,
    labels), DriftInputError (an empty window), MLError (the model cannot load)."""
    from cairn.ml import flavors
    from cairn.ml import signature as signatures

    version = registry.resolve(spec)
    if last is not None and last < 1:
        raise DriftInputError(f"last {last}: at least 1 row")
    try:
        window = read_window(data, deployment, repo=log_repo, since=since, until=until, last=last)
    except NotFound:
        raise NotFound(
            f"the prediction log {log_repo!r} holds no request of deployment {deployment!r}"
        ) from None
    rows = window.outputs.index
    if len(rows) == 0:
        raise DriftInputError(
            f"the window of deployment {deployment!r} holds no logged answer to replay"
        )
    requests = window.requests.loc[rows]
    inputs = window.inputs.loc[rows].reset_index(drop=True)
    production = window.outputs.reset_index(drop=True)
    cache = cache_dir or Path(registry.pipelines.work_dir) / "serving"
    started = time.perf_counter()
    model = flavors.load(version, flavors.fetch(data, version, cache))
    try:
        answers = []
        predicted = time.perf_counter()
        for start in range(0, len(inputs), BATCH_ROWS):
            batch = signatures.enforce(version.signature, inputs.iloc[start : start + BATCH_ROWS])
            answers.append(as_outputs(model.predict(batch), production))
        predict_seconds = time.perf_counter() - predicted
    finally:
        model.close()
    candidate = pd.concat(answers, ignore_index=True)
    seconds = time.perf_counter() - started
    times = requests["time"]
    served = requests.groupby("version").size()
    doc: dict[str, Any] = {
        "model": version.name,
        "version": version.version,
        "deployment": deployment,
        "log": log_repo,
        "commit": window.commit,
        "window": {
            "since": since,
            "until": until,
            "last": last,
            "rows": len(window),
            "requests": int(requests["request_id"].nunique()),
            "first_time": float(times.min()),
            "last_time": float(times.max()),
            "method": window.method,
        },
        "production": {str(int(k)): int(v) for k, v in served.items() if pd.notna(k)},
        "compared": len(production),
        "left_out": window.left_out,
        "seconds": seconds,
        "rows_per_second": len(production) / predict_seconds if predict_seconds > 0 else None,
        **_compare(production, candidate),
        "labels": None,
    }
    if labels is not None:
        doc["labels"] = _labelled(
            data, labels, label_column, metric, doc["kind"], requests, production, candidate
        )
    return doc


def _compare(production: pd.DataFrame, candidate: pd.DataFrame) -> dict[str, Any]:
    """Agreement, and the confusion table (classes) or the deltas (floats)."""
    if candidate.shape[1] != production.shape[1]:
        return {
            "kind": "other",
            "agreement": 0.0,
            "note": f"the candidate answers {candidate.shape[1]} column(s) per row, "
            f"production {production.shape[1]}",
            "confusion": None,
            "deltas": None,
        }
    candidate = candidate.set_axis(production.columns, axis=1)
    same = np.ones(len(production), dtype=bool)
    numeric = True
    floats = False
    for column in production.columns:
        p, c = production[column], candidate[column]
        if pd.api.types.is_numeric_dtype(p) and pd.api.types.is_numeric_dtype(c):
            pv, cv = p.to_numpy(dtype=float), c.to_numpy(dtype=float)
            same &= np.isclose(pv, cv, rtol=_RTOL, atol=_ATOL, equal_nan=True)
            floats = floats or not (_integral(pv) and _integral(cv))
        else:
            numeric = False
            same &= p.astype(str).to_numpy() == c.astype(str).to_numpy()
    out: dict[str, Any] = {
        "agreement": float(same.mean()),
        "disagreed": int((~same).sum()),
        "confusion": None,
        "deltas": None,
    }
    if numeric and floats:
        out["kind"] = "numeric"
        delta = candidate.to_numpy(dtype=float) - production.to_numpy(dtype=float)
        out["deltas"] = _deltas(delta.ravel())
    elif production.shape[1] == 1:
        out["kind"] = "classes"
        out["confusion"] = _confusion(production.iloc[:, 0], candidate.iloc[:, 0])
    else:
        out["kind"] = "table"
    return out


def _integral(values: np.ndarray) -> bool:
    finite = values[np.isfinite(values)]
    return bool(np.all(finite == np.round(finite)))


def _deltas(delta: np.ndarray) -> dict[str, Any]:
    delta = delta[np.isfinite(delta)]
    if not len(delta):
        return {"mean": None, "mean_abs": None, "max_abs": None}
    magnitude = np.abs(delta)
    counts, edges = np.histogram(delta, bins=30)
    return {
        "mean": float(delta.mean()),
        "mean_abs": float(magnitude.mean()),
        "p50_abs": float(np.quantile(magnitude, 0.5)),
        "p95_abs": float(np.quantile(magnitude, 0.95)),
        "max_abs": float(magnitude.max()),
        "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
    }


def _confusion(production: pd.Series, candidate: pd.Series) -> dict[str, Any]:
    table = pd.crosstab(production.astype(str), candidate.astype(str))
    classes = sorted(set(table.index) | set(table.columns), key=_class_key)
    if len(classes) > _MAX_CLASSES:
        return {"classes": None, "counts": None, "note": f"{len(classes)} classes"}
    table = table.reindex(index=classes, columns=classes, fill_value=0)
    return {"classes": classes, "counts": table.to_numpy().tolist()}


def _class_key(value: str) -> tuple[int, float | str]:
    try:
        return (0, float(value))
    except ValueError:
        return (1, value)


def _labelled(
    data: DataStore,
    labels: str,
    column: str,
    metric: str | None,
    kind: str,
    requests: pd.DataFrame,
    production: pd.DataFrame,
    candidate: pd.DataFrame,
) -> dict[str, Any]:
    truth = read_labels(data, labels, column, required=True)
    joined = join_labels(production, requests.reset_index(drop=True), truth, column)["_label"]
    known = joined.notna().to_numpy()
    name, fn = resolve_metric(metric or ("mean_absolute_error" if kind == "numeric" else None))
    out: dict[str, Any] = {
        "spec": labels,
        "column": column,
        "labelled": int(known.sum()),
        "metric": name,
        "lower_is_better": lower_is_better(name),
        "production": None,
        "candidate": None,
    }
    if known.any():
        y = joined[known].tolist()
        if kind == "classes" and all(isinstance(v, float) and v.is_integer() for v in y):
            y = [int(v) for v in y]
        out["production"] = float(fn(y, production.iloc[known, 0].tolist()))
        out["candidate"] = float(fn(y, candidate.iloc[known, 0].tolist()))
    return out


def replay_verdict(doc: dict[str, Any], spec: ReplaySpec) -> tuple[bool, list[str]]:
    """Whether the replay ``doc`` passes the rule's ``replay`` gate, with the reasons."""
    ok, reasons = True, []
    if spec.min_agreement is not None:
        passed = doc["agreement"] >= spec.min_agreement
        ok = ok and passed
        reasons.append(
            f"replay agreement with production {doc['agreement']:.3f} on {doc['compared']} "
            f"logged row(s) (min {spec.min_agreement:g}): " + ("passed" if passed else "refused")
        )
    if spec.metric is not None:
        lab = doc.get("labels") or {}
        if lab.get("candidate") is None:
            ok = False
            reasons.append(
                f"replay {spec.metric}: no labelled row in the window to compare: refused"
            )
        else:
            sign = -1.0 if lab["lower_is_better"] else 1.0
            passed = sign * (lab["candidate"] - lab["production"]) >= -spec.not_worse_by
            ok = ok and passed
            reasons.append(
                f"replay {lab['metric']}: candidate {lab['candidate']:.4f} vs production "
                f"{lab['production']:.4f} on {lab['labelled']} labelled row(s) (not worse by "
                f"more than {spec.not_worse_by:g}): " + ("passed" if passed else "refused")
            )
    return ok, reasons


# -- the HTML page ---------------------------------------------------------------------------
def render_replay_html(doc: dict[str, Any]) -> str:
    """A self-contained HTML page of a replay document: the summary, the confusion
    table as a heat map (classes) or the deltas' histogram (floats), as PNG embedded in
    base64 (matplotlib, as the drift report). Raises ImportError without matplotlib."""
    title = f"Replay of {doc['deployment']} against {doc['model']} v{doc['version']}"
    rows = [
        ("log", f"{doc['log']}@{doc['commit']}"),
        ("rows compared", f"{doc['compared']:,} of {doc['window']['rows']:,}"),
        ("production versions", ", ".join(f"v{k}: {v}" for k, v in doc["production"].items())),
        ("agreement", f"{doc['agreement']:.2%}"),
    ]
    lab = doc.get("labels")
    if lab and lab.get("candidate") is not None:
        rows.append(
            (
                lab["metric"],
                f"production {lab['production']:.4f}, candidate {lab['candidate']:.4f} "
                f"({lab['labelled']} labelled)",
            )
        )
    body = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows
    )
    plot = _plot(doc)
    image = f'<img alt="replay plot" src="data:image/png;base64,{plot}">' if plot else ""
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body style='font-family:sans-serif'>"
        f"<h1>{html.escape(title)}</h1><table>{body}</table>{image}</body></html>"
    )


def _plot(doc: dict[str, Any]) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    confusion, deltas = doc.get("confusion"), doc.get("deltas")
    fig, ax = plt.subplots(figsize=(6, 4.5))
    try:
        if confusion and confusion.get("classes"):
            counts = np.array(confusion["counts"])
            ax.imshow(counts, cmap="Blues")
            ticks = range(len(confusion["classes"]))
            ax.set_xticks(list(ticks), confusion["classes"])
            ax.set_yticks(list(ticks), confusion["classes"])
            ax.set_xlabel(f"candidate v{doc['version']}")
            ax.set_ylabel("production")
            for i, row in enumerate(counts):
                for j, n in enumerate(row):
                    ax.text(j, i, str(n), ha="center", va="center")
            ax.set_title("answers: production vs candidate")
        elif deltas and deltas.get("histogram"):
            edges, counts = deltas["histogram"]["edges"], deltas["histogram"]["counts"]
            ax.stairs(counts, edges, fill=True)
            ax.set_xlabel("candidate - production")
            ax.set_ylabel("rows")
            ax.set_title("numeric deltas")
        else:
            return None
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        return base64.b64encode(buffer.getvalue()).decode()
    finally:
        plt.close(fig)
