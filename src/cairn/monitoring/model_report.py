"""``MonitorReport``: one check of a model version (what ``check_model`` returns), its JSON
form (``to_json``, the CLI's ``--raw``) and its self-contained HTML page
(``render_report_html``, built on ``cairn.monitoring.report.render_html``)."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from cairn.monitoring.drift import DriftResult, finite
from cairn.monitoring.errors import MonitoringError

__all__ = ["MonitorFrames", "MonitorReport", "render_report_html", "write_report_html"]


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
    "log", "version_rows", "compared_rows", "left_out"}`` (times in UTC epoch seconds;
    ``version_rows``: rows this version answered; ``compared_rows``: those of them that
    ``predict`` answered, the ones the prediction and performance comparisons use;
    ``left_out``, when some were not: their count by the method that answered them).
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
        return json.dumps(finite(self.to_dict()), indent=indent, allow_nan=False, default=str)


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
