"""Drift reports: a table for the terminal and a self-contained HTML page.

- ``drift_table(result)``: a ``rich.table.Table``, drifting features first; the CLI prints
  it (and ``DriftResult.to_json()`` for ``--raw``).
- ``render_html(result, reference, current)``: one HTML document with the verdict, the
  table of test values and, per feature, a plot of the reference against the current
  distribution (overlaid density histograms on shared bins for numeric features, grouped
  bars of category shares for categorical ones). Plots are PNGs drawn with matplotlib's
  object API (no pyplot state, so it is safe in threads) and embedded as base64 ``data:``
  URIs; the style is inline and there is no script, so the file opens offline and can be
  attached to a ticket or committed to a repo. ``write_html(path, ...)`` writes it.

The plots are drawn from the frames, not from the result, so the caller passes the same
two frames it gave ``compute_drift``.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.table import Table

from cairn.monitoring.drift import DriftResult, FeatureDrift

__all__ = ["drift_table", "ordered", "render_html", "write_html"]

_BINS = 40  # histogram bins of a numeric feature's plot
_BARS = 15  # categories shown in a categorical feature's plot


def ordered(result: DriftResult) -> list[FeatureDrift]:
    """The features, drifting ones first; within each group the most shifted first (by
    the deciding score relative to its threshold), then in column order."""

    def severity(f: FeatureDrift) -> float:
        if f.method == "test":
            return -math.log10(max(f.p_adjusted, 1e-300))
        return f.score / f.threshold if f.threshold else f.score

    return sorted(result.features, key=lambda f: (not f.drifted, -severity(f)))


def _num(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}g}"


def _verdict(result: DriftResult) -> str:
    n = len(result.drifted_features)
    state = "DRIFT" if result.drifted else "no drift"
    return (
        f"{state}: {n} of {len(result.features)} features drifted "
        f"({result.share_drifted:.0%}; dataset drift at >= {result.config.drift_share:.0%}), "
        f"decided by {result.method}, {result.n_reference:,} reference / "
        f"{result.n_current:,} current rows"
    )


def drift_table(result: DriftResult) -> Table:
    """The per-feature table with the dataset verdict as its title."""
    table = Table(title=_verdict(result), title_justify="left")
    for name in ("feature", "kind", "test", "statistic", "p-value", "p adj.", "distance"):
        table.add_column(name, justify="right" if name not in ("feature", "kind") else "left")
    table.add_column("PSI", justify="right")
    table.add_column("decided by", justify="left")
    table.add_column("drift", justify="left")
    for f in ordered(result):
        decided = f"{f.method} {_num(f.score, 3)} {_relation(f)} {_num(f.threshold, 3)}"
        table.add_row(
            f.name,
            f.kind,
            f.test,
            _num(f.statistic),
            _num(f.p_value, 3),
            _num(f.p_adjusted, 3),
            f"{_num(f.distance)} ({'W1/std' if f.kind == 'numeric' else 'JS'})",
            f"{_num(f.psi)} ({f.psi_band})",
            decided,
            "[bold red]DRIFT[/]" if f.drifted else "[green]ok[/]",
        )
    return table


def _relation(f: FeatureDrift) -> str:
    """How the score stands to the threshold: tests drift below it, distances at or above."""
    if f.method == "test":
        return "<" if f.drifted else ">="
    return ">=" if f.drifted else "<"


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _numeric_values(col: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        col = col.astype("int64")
    values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return values[np.isfinite(values)]


def _plot(f: FeatureDrift, ref: pd.Series, cur: pd.Series) -> str:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 2.6))
    ax = fig.add_subplot()
    if f.kind == "numeric":
        a, b = _numeric_values(ref), _numeric_values(cur)
        both = np.concatenate([a, b])
        lo, hi = np.quantile(both, [0.005, 0.995]) if len(both) else (0.0, 1.0)
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, _BINS + 1).tolist()
        ax.hist(a, bins=edges, density=True, alpha=0.55, label="reference", color="#4c72b0")
        ax.hist(b, bins=edges, density=True, alpha=0.55, label="current", color="#dd8452")
        ax.set_ylabel("density")
    else:
        p = ref.dropna().astype(str).value_counts(normalize=True)
        q = cur.dropna().astype(str).value_counts(normalize=True)
        keys = p.add(q, fill_value=0).sort_values(ascending=False).index[:_BARS]
        x = np.arange(len(keys))
        ax.bar(x - 0.2, p.reindex(keys, fill_value=0), 0.4, label="reference", color="#4c72b0")
        ax.bar(x + 0.2, q.reindex(keys, fill_value=0), 0.4, label="current", color="#dd8452")
        ax.set_xticks(x, [str(k)[:12] for k in keys], rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("share")
    ax.set_title(f.name, fontsize=10)
    ax.legend(fontsize=8)
    return _png(fig)


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;font-size:14px}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}
.drift{color:#b00;font-weight:bold}.ok{color:#070}
.feature{margin:1.5em 0;display:flex;gap:2em;align-items:flex-start}
.summary td{font-size:12px}
"""


def _summary_table(f: FeatureDrift) -> str:
    keys = [k for k in f.reference if k not in ("top",)]
    rows = []
    for key in keys:
        ref, cur = f.reference.get(key), f.current.get(key)
        rows.append(
            f"<tr><td>{html.escape(key)}</td><td>{_cell(ref)}</td><td>{_cell(cur)}</td></tr>"
        )
    if "unseen" in f.current:
        unseen = ", ".join(html.escape(str(u)) for u in f.current["unseen"])
        rows.append(f"<tr><td>unseen in reference</td><td></td><td>{unseen}</td></tr>")
    head = "<tr><th></th><th>reference</th><th>current</th></tr>"
    return f"<table class='summary'>{head}{''.join(rows)}</table>"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return _num(value)
    return html.escape(str(value)) if value is not None else "-"


def render_html(
    result: DriftResult,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    title: str = "Drift report",
    max_plots: int | None = None,
) -> str:
    """The HTML document (a str). ``max_plots`` limits the plots to the first features in
    report order (drifting first); the table always lists every feature."""
    features = ordered(result)
    rows = []
    for i, f in enumerate(features):
        cls = "drift" if f.drifted else "ok"
        rows.append(
            "<tr>"
            f"<td><a href='#f{i}'>{html.escape(f.name)}</a></td>"
            f"<td>{f.kind}</td><td>{f.test}</td><td>{_num(f.statistic)}</td>"
            f"<td>{_num(f.p_value, 3)}</td><td>{_num(f.p_adjusted, 3)}</td>"
            f"<td>{f.distance_name} {_num(f.distance)}</td><td>{_num(f.psi)} ({f.psi_band})</td>"
            f"<td>{f.method}: {_num(f.score, 3)} {html.escape(_relation(f))} "
            f"{_num(f.threshold, 3)}</td>"
            f"<td class='{cls}'>{'DRIFT' if f.drifted else 'ok'}</td></tr>"
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "feature",
            "kind",
            "test",
            "statistic",
            "p-value",
            "p adjusted",
            "distance",
            "PSI",
            "decided by",
            "drift",
        )
    )
    sections = []
    for i, f in enumerate(features):
        plot = ""
        if max_plots is None or i < max_plots:
            ref, cur = reference[_column(reference, f.name)], current[_column(current, f.name)]
            alt = html.escape(f"{f.name}: reference vs current", quote=True)
            plot = f"<img alt='{alt}' src='data:image/png;base64,{_plot(f, ref, cur)}'>"
        sections.append(
            f"<div class='feature' id='f{i}'><div>{plot}</div>"
            f"<div><h3>{html.escape(f.name)} <span class='{'drift' if f.drifted else 'ok'}'>"
            f"{'DRIFT' if f.drifted else 'ok'}</span></h3>{_summary_table(f)}</div></div>"
        )
    config = html.escape(", ".join(f"{k}={v}" for k, v in _shown(result.config.to_dict())))
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p class='{'drift' if result.drifted else 'ok'}'>{html.escape(_verdict(result))}</p>"
        f"<p>settings: {config}</p>"
        f"<table><tr>{head}</tr>{''.join(rows)}</table>"
        f"<h2>Distributions</h2>{''.join(sections)}</body></html>"
    )


def write_html(
    path: str | Path,
    result: DriftResult,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    **options: Any,
) -> Path:
    """Write ``render_html(...)`` to ``path`` (UTF-8) and return the path."""
    out = Path(path)
    out.write_text(render_html(result, reference, current, **options), encoding="utf-8")
    return out


def _shown(config: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in config.items() if v not in (None, {}, [])]


def _column(frame: pd.DataFrame, name: str) -> Any:
    """The frame's column whose str() is ``name`` (results name columns by str)."""
    if name in frame.columns:
        return name
    for col in frame.columns:
        if str(col) == name:
            return col
    raise KeyError(name)
