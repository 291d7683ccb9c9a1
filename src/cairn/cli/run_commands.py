"""CLI commands for runs: list, inspect, compare, plot (cairn.ml.runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cairn.cli.output import (
    Raw,
    client,
    err,
    fmt_time,
    groups,
    out,
    print_json,
    print_pairs,
    print_table,
    printable,
)
from cairn.ml import RunInfo

Experiment = Annotated[
    str | None, typer.Option("--experiment", "-e", help="Only runs of this experiment.")
]
Pipeline = Annotated[
    str | None, typer.Option("--pipeline", "-p", help="Only runs of this pipeline.")
]


def _value(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _origin(r: RunInfo) -> str:
    return f"{r.pipeline}@{(r.job or '-')[:12]}" if r.pipeline else "sdk"


@groups["list"].command("run")
def list_run(pipeline: Pipeline = None, experiment: Experiment = None, raw: Raw = False) -> None:
    """List runs newest first, with their final metrics."""
    found = client().runs.list(experiment=experiment, pipeline=pipeline)
    if raw:
        return print_json([r.to_json() for r in found])
    rows = [
        [
            r.id[:12],
            r.name,
            r.experiment,
            r.state,
            _origin(r),
            fmt_time(r.created),
            ", ".join(f"{k}={_value(v)}" for k, v in r.metrics.items()) or "-",
        ]
        for r in found
    ]
    print_table(["ID", "NAME", "EXPERIMENT", "STATE", "SOURCE", "CREATED", "METRICS"], rows)


@groups["inspect"].command("run")
def inspect_run(run: str, raw: Raw = False) -> None:
    """Show a run (id, id prefix or name): params, final metrics, tags, links, artifacts."""
    r = client().runs.get(run)
    if raw:
        return print_json(r.to_json())
    info = r.info
    env = info.get("environment") or {}
    pairs: dict[str, Any] = {
        "Id": r.id,
        "Name": r.name,
        "Experiment": r.experiment,
        "State": r.state,
        "Created": fmt_time(r.created),
        "Finished": fmt_time(r.finished),
    }
    if r.pipeline:
        pairs.update(
            {
                "Pipeline": r.pipeline,
                "Job": r.job,
                "Datum": f"{r.datum or '-'} (hash {(r.datum_hash or '-')[:12]})",
                "Run file": printable(f"{r.repo}@{r.commit}:{r.source}"),
                "Inputs": ", ".join(
                    f"{name}={i['repo']}@{i['commit']}"
                    for name, i in info.get("inputs", {}).items()
                )
                or "-",
                "Code": f"{(info.get('code_hash') or '-')[:12]} "
                + (", ".join(sorted(info.get("code", {}))) or "(no files)"),
            }
        )
    pairs["Environment"] = (
        f"{env.get('hash', '-')[:12]} python {env.get('python', '-')}, {env.get('platform', '-')}"
        if env
        else "-"
    )
    print_pairs(pairs)
    for title, values in (("Params", r.params), ("Metrics", r.metrics), ("Tags", r.tags)):
        out.print(f"{title}:" + ("" if values else " -"))
        for k, v in values.items():
            out.print(f"  {k}: {_value(v)}")
    artifacts = info.get("artifacts", [])
    out.print("Artifacts:" + ("" if artifacts else " -"))
    for path in artifacts:
        out.print(f"  {path}")


@groups["compare"].command("run")
def compare_run(
    runs: Annotated[list[str] | None, typer.Argument(help="Run ids, id prefixes or names.")] = None,
    experiment: Experiment = None,
    pipeline: Pipeline = None,
    best: Annotated[
        str | None, typer.Option("--best", help="Name the run with the best final value.")
    ] = None,
    minimize: Annotated[
        bool, typer.Option("--minimize", help="With --best: lower is better (a loss).")
    ] = False,
    raw: Raw = False,
) -> None:
    """Compare runs side by side: params (* marks those that differ), then final metrics."""
    cmp = client().runs.compare(runs or [], experiment=experiment, pipeline=pipeline)
    winner = cmp.best(best, maximize=not minimize) if best else None
    if raw:
        return print_json({**cmp.to_json(), "best": winner.id if winner else None})
    columns = ["", *(f"{r.name} ({r.id[:8]})" for r in cmp.runs)]
    rows = [
        [("* " if k in cmp.differing else "  ") + k, *map(_value, values)]
        for k, values in cmp.params.items()
    ]
    rows += [[f"  {k}", *map(_value, values)] for k, values in cmp.metrics.items()]
    print_table(columns, rows)
    if winner is not None and best is not None:
        out.print(
            f"best: {winner.name} ({winner.id[:12]}) with {best} = {_value(winner.metrics[best])}"
        )


@groups["plot"].command("metric")
def plot_metric(
    key: str,
    runs: Annotated[list[str] | None, typer.Argument(help="Run ids, id prefixes or names.")] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="PNG file to write.")] = Path(
        "metric.png"
    ),
    experiment: Experiment = None,
    pipeline: Pipeline = None,
) -> None:
    """Plot a metric against its step, one line per run, to a PNG file."""
    from cairn.ml.plots import plot_metric as plot

    # The plot reads the runs through the face: compare selects them, history draws them.
    path = plot(client().runs, key, runs or [], output, experiment=experiment, pipeline=pipeline)
    err.print(f"wrote {path}")
