"""CLI command monitor: drift of a served model's logged traffic (cairn.monitoring.monitor)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cairn.cli.output import Raw, app, client, out, print_table


@app.command("monitor")
def monitor(
    spec: Annotated[str, typer.Argument(help="NAME@ALIAS, NAME/VERSION or NAME of a model")],
    deployment: Annotated[
        str | None, typer.Option(help="Deployment whose log to read (default: the model's name).")
    ] = None,
    last: Annotated[
        int | None, typer.Option("--last", min=1, help="The newest N logged rows.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Start: 1h / 30m / 2d ago, or 2026-11-23T10:00 (UTC), or epoch s."),
    ] = None,
    until: Annotated[str | None, typer.Option(help="End (excluded), as --since.")] = None,
    reference: Annotated[
        str | None,
        typer.Option(help="repo@commit[:/path] of the reference (default: the training data)."),
    ] = None,
    method: Annotated[
        str,
        typer.Option(
            help="auto (tests <= 1000 reference rows, else distances), test, distance or psi."
        ),
    ] = "auto",
    alpha: Annotated[float, typer.Option(help="Significance level of the tests.")] = 0.05,
    correction: Annotated[
        str, typer.Option(help="Across features: bonferroni, fdr (Benjamini-Hochberg) or none.")
    ] = "bonferroni",
    threshold: Annotated[
        float, typer.Option(help="Drift at or above this distance (W1/std, JS) or PSI.")
    ] = 0.1,
    drift_share: Annotated[
        float,
        typer.Option("--drift-share", help="Share of drifting features that is dataset drift."),
    ] = 0.5,
    labels: Annotated[
        str | None,
        typer.Option(help="repo[@branch] of JSON Lines / CSV labels with request_id."),
    ] = None,
    label_column: Annotated[
        str, typer.Option("--label-column", help="The labels' column.")
    ] = "label",
    log_repo: Annotated[
        str, typer.Option("--log-repo", help="Repo of the prediction log.")
    ] = "predictions",
    min_rows: Annotated[
        int, typer.Option("--min-rows", min=1, help="Fewest window rows to compare.")
    ] = 30,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write the HTML report (plots embedded) here.")
    ] = None,
    raw: Raw = False,
) -> None:
    """Compare a model's logged traffic with its training data: drift per feature, of
    its predictions and, with --labels, its metric over time.

    Exits 0 whether or not drift is found (read the verdict, or "drifted" in --raw), and 1
    when the check cannot run.
    """
    from cairn.monitoring import DriftConfig
    from cairn.monitoring.monitor import write_report_html
    from cairn.monitoring.report import drift_table

    config = DriftConfig(
        method=method,
        alpha=alpha,
        correction=correction,
        distance_threshold=threshold,
        psi_threshold=threshold,
        drift_share=drift_share,
    )
    report = client().monitors.check(
        spec,
        deployment=deployment,
        since=since,
        until=until,
        last=last,
        reference=reference,
        config=config,
        log_repo=log_repo,
        labels=labels,
        label_column=label_column,
        min_rows=min_rows,
    )
    if html is not None:
        write_report_html(html, report)
    if raw:
        print(report.to_json(indent=2))
        return
    # The table marks drift in colour (rich markup); ``out`` prints text as it is.
    tables = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    ref = report.reference
    refs = ref["ref"] if isinstance(ref["ref"], list) else [ref["ref"]]
    out.print(f"reference ({ref['source']}, {ref['rows']:,} rows): {', '.join(refs)}")
    if ref.get("note"):
        out.print(f"note: {ref['note']}")
    w = report.window
    out.print(
        f"window: {w['rows']:,} rows of {report.deployment} in {w['log']}@{w['commit']} "
        f"({w['version_rows']:,} answered by v{report.version})"
    )
    if w.get("left_out"):
        others = ", ".join(f"{n:,} by {m}" for m, n in sorted(w["left_out"].items()))
        out.print(
            f"note: prediction drift and performance compare the rows predict answered; "
            f"left out: {others}"
        )
    tables.print(drift_table(report.result))
    if report.prediction is not None:
        out.print(
            f"prediction drift (v{report.version}'s outputs vs its predictions on the reference):"
        )
        tables.print(drift_table(report.prediction))
    else:
        out.print(f"prediction drift: not computed ({ref.get('predictions')})")
    if report.performance:
        print_table(
            ["bucket (UTC)", "predictions", "labelled", report.performance[0]["metric"]],
            [
                [p["start"], p["predictions"], p["labelled"], _value(p["value"])]
                for p in report.performance
            ],
        )
    if html is not None:
        out.print(f"report: {html}")
    out.print(report.verdict())


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
