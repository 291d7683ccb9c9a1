"""CLI commands of the audit: explain prediction, diff model, replay (cairn.monitoring.explain,
cairn.ml.model_diff, cairn.monitoring.replay through the face)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cairn.cli.output import (
    Raw,
    app,
    client,
    fmt_size,
    fmt_time,
    groups,
    out,
    print_json,
    print_table,
    printable,
)


def _short(text: Any, width: int = 100) -> str:
    s = printable(str(text))
    return s if len(s) <= width else s[: width - 3] + "..."


@groups["explain"].command("prediction")
def explain_prediction(
    request_id: Annotated[
        str | None, typer.Argument(help="The request id (the log's request_id).")
    ] = None,
    deployment: Annotated[
        str | None, typer.Option(help="Deployment to look in (with --at: required).")
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(help="Instead of an id: the request nearest this time (ISO, 1h ago...)."),
    ] = None,
    log_repo: Annotated[
        str, typer.Option("--log-repo", help="Repo of the prediction log.")
    ] = "predictions",
    raw: Raw = False,
) -> None:
    """Show one logged prediction and where its answer came from: inputs, outputs,
    latency, the deployment revision, route and model version that answered, that
    version's training data, code, environment and run, the drift verdict of its window
    and the monitor events around it.

    Reads what was recorded (the version the log names, the revision and aliases of that
    moment, the lineage's commits), so it works after rollbacks and alias moves; what was
    deleted since is named instead of failing.
    """
    doc = client().monitors.explain(request_id, deployment=deployment, at=at, log_repo=log_repo)
    if raw:
        print_json(doc)
        return
    rec = doc["request"]
    out.print(f"request {rec['request_id']}  at {fmt_time(rec['time'])}  ({rec.get('status')})")
    inputs = rec.get("inputs") or {}
    if isinstance(inputs, dict) and "columns" in inputs:
        for row in inputs.get("data") or []:
            pairs = ", ".join(f"{c}={v}" for c, v in zip(inputs["columns"], row, strict=False))
            out.print(f"  inputs:   {_short(pairs)}")
    out.print(f"  outputs:  {_short(rec.get('outputs'))}")
    out.print(f"  latency:  {rec.get('latency_ms', 0):.2f} ms  ({rec.get('protocol')})")
    dep = doc["deployment"]
    route = rec.get("target") or "-"
    shadow = " (shadow)" if rec.get("shadow") else ""
    revision = dep.get("revision", "?")
    out.print(
        f"answered: {rec.get('model')}/{rec.get('version')} by route {route}{shadow} of "
        f"deployment {rec.get('deployment')} revision {revision}"
        + (f" ({dep['reason']})" if dep.get("reason") else "")
    )
    if dep.get("policy"):
        routes = ", ".join(f"{r['target']} {r['weight']:g}" for r in dep["policy"]["routes"])
        out.print(f"  policy then: {routes}")
    if doc["aliases"]:
        then = ", ".join(f"{a} -> v{v}" for a, v in doc["aliases"].items())
        out.print(f"  aliases then: {then}")
    for m in doc["mirrors"]:
        out.print(f"  mirrored to {m.get('model')}/{m.get('version')}: {_short(m.get('outputs'))}")
    lin = doc["lineage"]
    if lin is not None:
        out.print(f"model {lin['model']}/{lin['version']}: {lin['ref']}  ({lin['flavor']})")
        _print_training(lin)
    for what in doc["missing"]:
        out.print(f"missing: {what}")
    drift = doc["drift"]
    if drift is None:
        out.print("drift: no monitor check covers this request")
    elif drift["drifted"]:
        share = drift.get("share_drifted")
        share_text = f", {share:.0%} of features" if share is not None else ""
        out.print(f"drift: in a drifted window{share_text} (monitor {drift['monitor']})")
    else:
        out.print(f"drift: no drifted window of monitor {drift['monitor']} holds it")
    if doc["events"]:
        out.print("events around it:")
        for e in doc["events"]:
            info = e.get("info") or {}
            what = info.get("reason") or info.get("alias") or info.get("version") or ""
            out.print(
                f"  {fmt_time(e['time'])}  {e['kind']:<28} {e['subject']}  {_short(what, 60)}"
            )


def _print_training(lin: dict[str, Any]) -> None:
    t = lin.get("training")
    if not t:
        out.print("  training: none recorded (a user's put)")
        return
    out.print(f"  training job: {t['pipeline']}@{t['job']} (spec v{t.get('spec_version')})")
    for f in t.get("input_files") or []:
        out.print(
            f"  input: {f['repo']}@{f['commit']}:{f['path']}  {fmt_size(f.get('size'))}  "
            f"blake3 {str(f.get('hash'))[:16]}"
        )
    for path, digest in (t.get("code") or {}).items():
        out.print(f"  code: {path}  blake3 {digest[:16]}")
    env = t.get("environment") or {}
    out.print(
        f"  environment: python {env.get('python')}, {env.get('cpu')}, "
        f"accelerator {env.get('accelerator')} (hash {str(env.get('hash'))[:12]})"
    )
    run = lin.get("run")
    if run:
        out.print(f"  run {run['id']}: params {run.get('params')}, metrics {run.get('metrics')}")


@groups["diff"].command("model")
def diff_model(
    old: Annotated[str, typer.Argument(help="NAME/VERSION or NAME@ALIAS: the old version.")],
    new: Annotated[str, typer.Argument(help="NAME/VERSION or NAME@ALIAS: the new version.")],
    code: Annotated[
        bool, typer.Option("--code", help="Show text diffs of the code files that changed.")
    ] = False,
    raw: Raw = False,
) -> None:
    """What changed between two model versions: training files added, removed and
    modified (sizes, table rows), code, environment, params, metrics and signature, from
    the two training jobs' recorded input commits."""
    doc = client().models.diff(old, new, code=code)
    if raw:
        print_json(doc)
        return
    a, b = doc["old"], doc["new"]
    out.print(f"model {a['model']}: v{a['version']} -> v{b['version']}")
    data = doc["data"]
    rows = []
    for sign, files in (("+", data["added"]), ("-", data["removed"])):
        rows += [
            [sign, f"{f['repo']}@{f['commit']}:{f['path']}", fmt_size(f["size"]), _rows(f)]
            for f in files
        ]
    for m in data["modified"]:
        f, g = m["old"], m["new"]
        rows.append(
            [
                "~",
                f"{g['repo']}@{g['commit']}:{g['path']}",
                f"{fmt_size(f['size'])} -> {fmt_size(g['size'])}",
                f"{_rows(f)} -> {_rows(g)}",
            ]
        )
    out.print(f"training data: {data['unchanged']} file(s) unchanged")
    if rows:
        print_table(["", "file", "size", "rows"], rows)
    c = doc["code"]
    for path, digest in c["added"].items():
        out.print(f"code + {path}  {digest[:16]}")
    for path, digest in c["removed"].items():
        out.print(f"code - {path}  {digest[:16]}")
    for path, (x, y) in c["modified"].items():
        out.print(f"code ~ {path}  {x[:16]} -> {y[:16]}")
    if not (c["added"] or c["removed"] or c["modified"]):
        out.print("code: unchanged")
    for text in (c.get("diffs") or {}).values():
        out.print(text.rstrip("\n"))
    for title, changes in (("environment", doc["environment"]), ("params", doc["params"])):
        if not changes:
            out.print(f"{title}: unchanged")
            continue
        print_table(
            [title, f"v{a['version']}", f"v{b['version']}"], [[k, *v] for k, v in changes.items()]
        )
    if doc["metrics"]:
        print_table(
            ["metric", f"v{a['version']}", f"v{b['version']}"],
            [[k, _num(x), _num(y)] for k, (x, y) in doc["metrics"].items()],
        )
    out.print("signature: " + ("changed" if doc["signature"]["changed"] else "unchanged"))
    for what in doc["missing"]:
        out.print(f"missing: {what}")


def _rows(f: dict[str, Any]) -> str:
    return "-" if f.get("rows") is None else f"{f['rows']:,}"


def _num(x: Any) -> str:
    return "-" if x is None else f"{x:.4g}" if isinstance(x, float) else str(x)


@app.command("replay")
def replay(
    deployment: Annotated[str, typer.Argument(help="The deployment whose logged traffic to send.")],
    model: Annotated[
        str, typer.Option("--model", help="NAME@ALIAS or NAME/VERSION: the candidate.")
    ],
    since: Annotated[
        str | None,
        typer.Option(help="Start: 1d / 1h ago, or 2026-11-23T10:00 (UTC), or epoch s."),
    ] = None,
    until: Annotated[str | None, typer.Option(help="End (excluded), as --since.")] = None,
    last: Annotated[
        int | None, typer.Option("--last", min=1, help="The newest N logged rows.")
    ] = None,
    labels: Annotated[
        str | None,
        typer.Option(help="repo[@branch] of labels (request_id + label): both sides' metric."),
    ] = None,
    label_column: Annotated[
        str, typer.Option("--label-column", help="The labels' column.")
    ] = "label",
    metric: Annotated[
        str | None, typer.Option(help="A sklearn.metrics name (default: accuracy_score).")
    ] = None,
    log_repo: Annotated[
        str, typer.Option("--log-repo", help="Repo of the prediction log.")
    ] = "predictions",
    html: Annotated[
        Path | None, typer.Option("--html", help="Write the HTML report (plots embedded) here.")
    ] = None,
    raw: Raw = False,
) -> None:
    """Send a deployment's logged traffic to a candidate model offline (no live request
    is touched) and compare: agreement with what production answered, the confusion of
    the two (classes) or numeric deltas, and with --labels the metric of both."""
    from cairn.monitoring.replay import render_replay_html

    doc = client().monitors.replay(
        deployment,
        model,
        since=since,
        until=until,
        last=last,
        log_repo=log_repo,
        labels=labels,
        label_column=label_column,
        metric=metric,
    )
    if html is not None:
        html.write_text(render_replay_html(doc), encoding="utf-8")
    if raw:
        print_json(doc)
        return
    w = doc["window"]
    served = ", ".join(f"v{k}: {n}" for k, n in doc["production"].items())
    out.print(
        f"replayed {doc['compared']:,} logged row(s) of {doc['deployment']} "
        f"({w['requests']:,} requests, {fmt_time(w['first_time'])} .. "
        f"{fmt_time(w['last_time'])}; production {served}) against "
        f"{doc['model']}/{doc['version']} in {doc['seconds']:.2f} s"
    )
    out.print(f"agreement: {doc['agreement']:.1%} ({doc.get('disagreed', 0):,} row(s) differ)")
    confusion = doc.get("confusion")
    if confusion and confusion.get("classes"):
        classes = confusion["classes"]
        print_table(
            ["production \\ candidate", *classes],
            [[c, *row] for c, row in zip(classes, confusion["counts"], strict=True)],
        )
    deltas = doc.get("deltas")
    if deltas and deltas.get("mean") is not None:
        out.print(
            f"deltas (candidate - production): mean {deltas['mean']:.4g}, mean |d| "
            f"{deltas['mean_abs']:.4g}, p95 |d| {deltas['p95_abs']:.4g}, max |d| "
            f"{deltas['max_abs']:.4g}"
        )
    lab = doc.get("labels")
    if lab:
        if lab.get("candidate") is None:
            out.print(f"labels: none of the rows is labelled in {lab['spec']}")
        else:
            out.print(
                f"{lab['metric']} on {lab['labelled']:,} labelled row(s): production "
                f"{lab['production']:.4f}, candidate {lab['candidate']:.4f}"
            )
    if html is not None:
        out.print(f"report: {html}")
