"""CLI commands for deployments: set traffic, inspect/list deployment, rollback deployment
(cairn.serving.policy)."""

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
)
from cairn.serving.errors import PolicyError
from cairn.serving.policy import Deployment, TrafficPolicy, load_policy_file


def _pairs(text: str, option: str) -> dict[str, float]:
    """``champion=90,challenger=10`` as {target: weight}."""
    found: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        target, sep, weight = part.partition("=")
        try:
            if not sep or not target.strip():
                raise ValueError
            found[target.strip()] = float(weight)
        except ValueError:
            raise PolicyError(
                f"{option} {text!r}: write TARGET=WEIGHT pairs separated by commas, "
                "e.g. champion=90,challenger=10"
            ) from None
    if not found:
        raise PolicyError(f"{option} needs at least one TARGET=WEIGHT pair")
    return found


def _routes(policy: TrafficPolicy) -> str:
    shares = policy.percentages()
    return ", ".join(f"{t} {shares[t]:.4g}%" for t in shares)


@groups["set"].command("traffic")
def set_traffic(
    name: Annotated[str, typer.Argument(help="Deployment name")],
    split: Annotated[
        str | None,
        typer.Option("--split", help="Weighted routes, e.g. champion=90,challenger=10"),
    ] = None,
    canary: Annotated[
        str | None,
        typer.Option("--canary", help="TARGET=PERCENT: the target takes that share"),
    ] = None,
    reset: Annotated[
        str | None, typer.Option("--reset", help="All traffic to TARGET, no shadows")
    ] = None,
    shadow: Annotated[
        list[str] | None,
        typer.Option("--shadow", help="Mirror every request to TARGET (repeatable)"),
    ] = None,
    no_shadow: Annotated[bool, typer.Option("--no-shadow", help="Stop mirroring")] = False,
    sticky_header: Annotated[
        str | None,
        typer.Option("--sticky-header", help="Pin callers by this request header's value"),
    ] = None,
    no_sticky: Annotated[bool, typer.Option("--no-sticky", help="Stop pinning callers")] = False,
    file: Annotated[
        Path | None,
        typer.Option("-f", "--file", help="A whole policy as a JSON or YAML file"),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="Create the deployment for this model if it is missing"),
    ] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the history)")] = "",
) -> None:
    """Change a deployment's traffic policy; running servers apply it without a restart.

    A TARGET is an alias of the model (champion) or a version number (3). The options
    make one new revision, applied in the order --reset, --split, --canary, --shadow,
    --sticky-header; -f replaces the whole policy instead.
    """
    if sum(x is not None for x in (split, canary, reset)) > 1:
        raise PolicyError("give one of --split, --canary and --reset")
    if (shadow and no_shadow) or (sticky_header and no_sticky):
        raise PolicyError("--shadow with --no-shadow, or --sticky-header with --no-sticky")
    if file is not None:
        if any((split, canary, reset, shadow, no_shadow, sticky_header, no_sticky)):
            raise PolicyError("-f replaces the whole policy; give it without other options")
        done = client().deployments.apply(
            name, policy=load_policy_file(file), reason=reason or f"from {file}", model=model
        )
    else:
        canary_pair = None
        if canary is not None:
            pairs = list(_pairs(canary, "--canary").items())
            if len(pairs) != 1:
                raise PolicyError("--canary takes one TARGET=PERCENT, e.g. challenger=10")
            canary_pair = pairs[0]
        if not any((split, canary, reset, shadow, no_shadow, sticky_header, no_sticky)):
            raise PolicyError(
                "nothing to change: give --split, --canary, --reset, --shadow, "
                "--sticky-header (or their --no- forms) or -f"
            )
        done = client().deployments.apply(
            name,
            reset=reset,
            split=_pairs(split, "--split") if split is not None else None,
            canary=canary_pair,
            shadow=[] if no_shadow else (shadow or None),
            sticky_header="" if no_sticky else sticky_header,
            reason=reason,
            model=model,
        )
    err.print(f"deployment {done.name}: revision {done.revision}: {_routes(done.policy)}")


def _summary(d: Deployment) -> list[Any]:
    return [
        d.name,
        d.model,
        d.revision,
        _routes(d.policy),
        ", ".join(d.policy.shadow) or "-",
        d.policy.sticky_header or "-",
        fmt_time(d.updated),
    ]


@groups["list"].command("deployment")
def list_deployment(raw: Raw = False) -> None:
    """List deployments with their routes, shadows and policy revision."""
    found = client().deployments.list()
    if raw:
        return print_json([d.to_json() for d in found])
    print_table(
        ["NAME", "MODEL", "REVISION", "ROUTES", "SHADOW", "STICKY", "UPDATED"],
        [_summary(d) for d in found],
    )


@groups["inspect"].command("deployment")
def inspect_deployment(
    name: Annotated[str, typer.Argument(help="Deployment name")], raw: Raw = False
) -> None:
    """Show a deployment: its policy, the versions its aliases reach now, its history."""
    c = client()
    d = c.deployments.get(name)
    history = c.deployments.history(name)
    aliases = c.models.aliases(d.model)
    reach = {t: int(t) if t.isdigit() else aliases.get(t) for t in d.policy.targets()}
    if raw:
        return print_json(
            {**d.to_json(), "versions": reach, "history": [h.to_json() for h in history]}
        )
    print_pairs(
        {
            "Name": d.name,
            "Model": d.model,
            "Revision": d.revision,
            "Updated": fmt_time(d.updated),
            "Routes": _routes(d.policy),
            "Shadow": ", ".join(d.policy.shadow) or "-",
            "Sticky header": d.policy.sticky_header or "-",
            "Versions now": ", ".join(
                f"{t} -> {'v' + str(v) if v is not None else 'unset'}" for t, v in reach.items()
            ),
        }
    )
    out.print("")
    print_table(
        ["REVISION", "TIME", "ROUTES", "SHADOW", "STICKY", "REASON"],
        [
            [
                h.revision,
                fmt_time(h.time),
                _routes(h.policy),
                ", ".join(h.policy.shadow) or "-",
                h.policy.sticky_header or "-",
                h.reason + (f" (restores {h.restores})" if h.restores else ""),
            ]
            for h in history
        ],
    )


@groups["rollback"].command("deployment")
def rollback_deployment(
    name: Annotated[str, typer.Argument(help="Deployment name")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the history)")] = "",
) -> None:
    """Restore the policy in force before the current one (as a new revision); again goes
    one further back."""
    done = client().deployments.rollback(name, reason=reason)
    err.print(f"deployment {done.name}: revision {done.revision}: {_routes(done.policy)}")
