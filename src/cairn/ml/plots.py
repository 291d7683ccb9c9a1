"""Metric plots of runs as PNG files (matplotlib's Agg canvas: no display, no global
pyplot state, so it is safe in servers and threads)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from cairn.data import NotFound
from cairn.ml.errors import MLError
from cairn.ml.models import Comparison, MetricPoint

__all__ = ["plot_metric"]


class RunSource(Protocol):
    """What a plot reads runs through: ``cairn.ml.runs.Runs`` or the face's
    ``client.runs``."""

    def compare(
        self,
        refs: Iterable[str] = (),
        *,
        experiment: str | None = None,
        pipeline: str | None = None,
    ) -> Comparison: ...

    def history(self, run: str, key: str) -> list[MetricPoint]: ...


def plot_metric(
    runs: RunSource,
    key: str,
    refs: Iterable[str],
    path: str | Path,
    *,
    experiment: str | None = None,
    pipeline: str | None = None,
    title: str | None = None,
) -> Path:
    """Draw metric ``key`` against its step, one line (with markers) per run, and write a
    PNG (100 dpi, 8 x 5 inches) to ``path``; return the path.

    Runs are ``refs`` (ids, prefixes or names), each of which must have logged ``key``,
    then the runs of ``experiment``/``pipeline`` that logged it. Points are drawn in step
    order (MLflow's chart does the same). Raises NotFound (an unknown run, or a named run
    without the metric, or no run with it), MLError when matplotlib is missing or
    nothing is selected.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise MLError("plots need matplotlib: pip install 'cairn[ml]'") from None
    named = list(refs)
    chosen = runs.compare(named, experiment=experiment, pipeline=pipeline).runs
    lines = []
    for i, run in enumerate(chosen):
        if i >= len(named) and key not in run.metrics:
            continue  # selected by experiment or pipeline, and never logged this metric
        points = sorted(runs.history(run.id, key), key=lambda p: p.step)
        lines.append((f"{run.name} ({run.id[:8]})", points))
    if not lines:
        raise NotFound(f"no selected run logged metric {key!r}")
    fig = Figure(figsize=(8, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for label, points in lines:
        ax.plot([p.step for p in points], [p.value for p in points], marker="o", label=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are integers
    ax.set_xlabel("step")
    ax.set_ylabel(key)
    ax.set_title(title or key)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out
