"""Commands on monitoring rules (``create/update/list/inspect/delete monitor``) and the
lifecycle's events (``list event``)."""

from __future__ import annotations

import json
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
)

RuleFile = Annotated[Path, typer.Option("-f", "--file", help="YAML or JSON monitoring rule")]


@groups["create"].command("monitor")
def create_monitor(file: RuleFile) -> None:
    """Create a monitoring rule; `cairn run` then checks it and runs its loop."""
    info = client().monitors.create(file)
    err.print(f"created monitor {info.name} (version {info.version})")


@groups["update"].command("monitor")
def update_monitor(file: RuleFile) -> None:
    """Replace a monitoring rule (a cycle in progress finishes with its old version)."""
    info = client().monitors.update(file)
    err.print(f"updated monitor {info.name} (version {info.version})")


@groups["list"].command("monitor")
def list_monitor(raw: Raw = False) -> None:
    """List monitoring rules with their model, action and where their loop is."""
    monitors = client().monitors
    found = [(m, monitors.state(m.name)) for m in monitors.list()]
    if raw:
        return print_json([{**m.to_json(), "state": s.to_json()} for m, s in found])
    rows = []
    for m, s in found:
        action = "retrain" if m.rule.action.retrain else "alert"
        last = (s.info.get("last_check") or {}).get("time")
        rows.append([m.name, m.version, m.rule.model, action, s.step, s.cycle, fmt_time(last)])
    print_table(["NAME", "VERSION", "MODEL", "ACTION", "STEP", "CYCLE", "LAST CHECK"], rows)


@groups["inspect"].command("monitor")
def inspect_monitor(
    name: str,
    raw: Raw = False,
    events: Annotated[int, typer.Option("--events", help="How many recent events.")] = 10,
) -> None:
    """Show a monitoring rule, its loop's state, the current cycle and its last events."""
    c = client()
    info = c.monitors.get(name)
    state = c.monitors.state(name)
    recent = c.events.list(subject=name, kind="monitor.", limit=events)
    if raw:
        return print_json(
            {**info.to_json(), "state": state.to_json(), "events": [e.to_json() for e in recent]}
        )
    print_pairs(
        {
            "Name": info.name,
            "Version": info.version,
            "Model": info.rule.model,
            "Deployment": info.rule.deployment_name,
            "Step": state.step,
            "Cycle": state.cycle,
            "Updated": fmt_time(state.updated),
            "Last check": _check_line(state.info.get("last_check")),
        }
    )
    if state.info.get("cycle"):
        out.print("Current cycle:")
        out.print(json.dumps(state.info["cycle"], indent=2, default=str))
    out.print("Rule:")
    out.print(json.dumps(info.rule.model_dump(mode="json", exclude_defaults=True), indent=2))
    if recent:
        out.print("Events:")
        for e in recent:
            out.print(f"  {fmt_time(e.time)}  {e.kind}  {_reasons(e.info)}")


def _check_line(check: dict[str, Any] | None) -> str:
    if not check:
        return "-"
    if "error" in check:
        return f"{fmt_time(check['time'])}: {check['error']}"
    share = check.get("share_drifted")
    verdict = "drift" if check.get("drifted") else "no drift"
    return f"{fmt_time(check['time'])}: {verdict} ({share:.0%} of features, {check['rows']} rows)"


def _reasons(info: dict[str, Any]) -> str:
    if "reasons" in info:
        return "; ".join(info["reasons"])
    if {"share_drifted", "drift_share", "features"} <= info.keys():
        # A drift report: its verdict first, not cut off inside the per-feature list.
        names = ", ".join(f["name"] for f in info["features"])
        return (
            f"{info['share_drifted']:.0%} of features drifted (>= {info['drift_share']:.0%}; "
            f"{info.get('method')}, {info.get('n_current')} rows vs {info.get('n_reference')}): "
            f"{names}"
        )[:300]
    keep = {k: v for k, v in info.items() if k not in ("cycle", "step", "window", "live")}
    return json.dumps(keep, default=str)[:300]


@groups["delete"].command("monitor")
def delete_monitor(name: str) -> None:
    """Delete a monitoring rule and its loop state (its events stay)."""
    client().monitors.delete(name)


@groups["list"].command("event")
def list_event(
    subject: Annotated[
        str | None, typer.Option("--subject", "-s", help="Only events about this name.")
    ] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", "-k", help="A kind, or a prefix ending in '.'.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="The newest N.")] = 50,
    raw: Raw = False,
) -> None:
    """List lifecycle events (alias moves, traffic changes, monitors' steps), oldest first."""
    found = client().events.list(subject=subject, kind=kind, limit=limit)
    if raw:
        return print_json([e.to_json() for e in found])
    print_table(
        ["ID", "TIME", "KIND", "SUBJECT", "INFO"],
        [[e.id, fmt_time(e.time), e.kind, e.subject, _reasons(e.info)] for e in found],
    )
