"""CLI commands for models: register, list, inspect, set / delete / rollback alias, lineage
model (cairn.ml.registry)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Annotated, Any

import typer

from cairn.cli.output import (
    Raw,
    client,
    err,
    fmt_size,
    fmt_time,
    groups,
    out,
    print_json,
    print_pairs,
    print_table,
    printable,
)
from cairn.ml.errors import SignatureError

__all__ = ["print_model_lineage"]


def _signature_arg(text: str | None) -> Any:
    """``--signature``: JSON text, or ``@file`` holding it."""
    if text is None:
        return None
    if text.startswith("@"):
        text = Path(text[1:]).read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SignatureError(f"--signature is not JSON: {exc}") from None


def _command_arg(text: str | None) -> list[str] | None:
    """``--cmd``: a JSON array of argv, or a command line split the way a shell would."""
    if not text:
        return None
    if text.lstrip().startswith("["):
        try:
            argv = json.loads(text)
        except json.JSONDecodeError as exc:
            raise typer.BadParameter(f"--cmd is not a JSON array: {exc}") from None
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            raise typer.BadParameter("--cmd as JSON must be an array of strings")
        return argv
    return shlex.split(text)


@groups["register"].command("model")
def register_model(
    name: Annotated[str, typer.Argument(help="model name (letters, digits, _ - .)")],
    ref: Annotated[
        str,
        typer.Argument(help="REPO@BRANCH-OR-COMMIT:/PATH of a file or folder, or runs:/RUN/NAME"),
    ],
    flavor: Annotated[
        str | None,
        typer.Option("--flavor", help="sklearn, python, command or mlflow (default: inferred)"),
    ] = None,
    signature: Annotated[
        str | None,
        typer.Option("--signature", help='MLflow signature JSON, or @FILE: {"inputs": [...]}'),
    ] = None,
    cmd: Annotated[
        str | None,
        typer.Option("--cmd", help="command flavor: 'python3 predict.py' or a JSON array"),
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="command flavor: seconds per call")
    ] = None,
    description: Annotated[str, typer.Option("-d", "--description")] = "",
    trust: Annotated[
        bool,
        typer.Option(
            "--trust",
            help="load it although loading runs its code (pickle, joblib, MLflow): "
            "only for files from someone you trust; .skops needs none",
        ),
    ] = False,
    input_example: Annotated[
        Path | None,
        typer.Option(
            "--input-example",
            help="sample inputs (CSV with a header, JSON records, or Parquet), as MLflow's "
            "input_example: the signature's columns and types come from it",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    raw: Raw = False,
) -> None:
    """Register a model file or folder as the model's next version."""
    example = None
    if input_example is not None:
        from cairn.ml.signature import example_json, load_example

        example = example_json(load_example(input_example))
    given = _signature_arg(signature)
    if ref.startswith("runs:/"):  # a model log_model stored in a run's artifacts
        from cairn.tracking import resolve_run_model

        ref, given = resolve_run_model(client(), ref, given)
    version = client().models.register(
        name,
        ref,
        flavor=flavor,
        signature=given,
        command=_command_arg(cmd),
        description=description,
        timeout=timeout,
        trust=trust,
        input_example=example,
    )
    if raw:
        return print_json(version.to_json())
    err.print(f"registered {version.name} version {version.version} ({version.flavor})")
    out.print(f"{version.name}/{version.version}")


@groups["list"].command("model")
def list_model(
    name: Annotated[str | None, typer.Argument(help="a model: list its versions")] = None,
    raw: Raw = False,
) -> None:
    """List models, or with NAME the versions of one model."""
    models_client = client().models
    if name is None:
        models = models_client.list()
        if raw:
            return print_json([m.to_json() for m in models])
        rows = [
            [
                m.name,
                m.latest if m.latest is not None else "-",
                ", ".join(f"{a}={v}" for a, v in m.aliases.items()) or "-",
                fmt_time(m.updated),
                m.description,
            ]
            for m in models
        ]
        return print_table(["NAME", "LATEST", "ALIASES", "UPDATED", "DESCRIPTION"], rows)
    versions = models_client.versions(name)
    if raw:
        return print_json([v.to_json() for v in versions])
    rows = [
        [
            v.version,
            ", ".join(v.aliases) or "-",
            v.flavor,
            f"{v.repo}@{v.commit[:12]}:{v.path}",
            v.run[:12] if v.run else "-",
            fmt_time(v.created),
            v.description,
        ]
        for v in reversed(versions)
    ]
    print_table(["VERSION", "ALIASES", "FLAVOR", "SOURCE", "RUN", "CREATED", "DESCRIPTION"], rows)


def _columns(sig: dict[str, Any] | None) -> str:
    if not sig:
        return "-"
    cols = [f"{c['name']}:{c['type']}" for c in sig["inputs"]]
    shown = ", ".join(cols[:6]) + (f", ... ({len(cols)} columns)" if len(cols) > 6 else "")
    return ("by position: " if sig.get("positional") else "") + shown


@groups["inspect"].command("model")
def inspect_model(
    spec: Annotated[str, typer.Argument(help="NAME, NAME@ALIAS or NAME/VERSION")],
    raw: Raw = False,
) -> None:
    """Show one model version: its source commit, flavor, trust, signature and run."""
    v = client().models.get(spec)
    if raw:
        return print_json(v.to_json())
    training = v.info.get("training")
    pairs = {
        "Model": v.name,
        "Version": v.version,
        "Aliases": ", ".join(v.aliases) or "-",
        "Source": printable(v.ref),
        "Flavor": v.flavor,
        "Trusted": "yes (--trust: loading may run its code)" if v.trusted else "no",
        "Content": f"{fmt_size(v.info.get('size'))}, blake3 {str(v.info.get('hash'))[:16]}",
        "Inputs": _columns(v.signature),
        "Outputs": ", ".join(
            f"{c['name']}:{c['type']}" for c in (v.signature or {}).get("outputs") or []
        )
        or "-",
        "Training job": f"{training['pipeline']} {training['job']}" if training else "-",
        "Run": v.run or "-",
        "Created": fmt_time(v.created),
        "Description": v.description or "-",
    }
    if v.info.get("command"):
        pairs["Command"] = shlex.join(v.info["command"])
    print_pairs(pairs)


@groups["set"].command("alias")
def set_alias(
    name: str,
    alias: Annotated[str, typer.Argument(help="e.g. champion, challenger")],
    version: int,
    reason: Annotated[str, typer.Option("--reason", help="why, kept in the history")] = "",
) -> None:
    """Point a model's alias at a version (create or move it)."""
    v = client().models.set_alias(f"{name}@{alias}", version, reason=reason)
    err.print(f"{name}@{alias} -> version {v.version}")


@groups["delete"].command("alias")
def delete_alias(name: str, alias: str) -> None:
    """Remove a model's alias (its history stays; rollback brings it back)."""
    client().models.delete_alias(f"{name}@{alias}")
    err.print(f"deleted alias {name}@{alias}")


@groups["rollback"].command("alias")
def rollback_alias(
    name: str,
    alias: Annotated[str, typer.Argument(help="default: champion")] = "champion",
    reason: Annotated[str, typer.Option("--reason", help="why, kept in the history")] = "",
) -> None:
    """Move a model's alias back to the version it named before its last move."""
    v = client().models.rollback(f"{name}@{alias}", reason=reason)
    err.print(f"{name}@{alias} -> version {v.version}")


def print_model_lineage(spec: str, raw: bool) -> None:
    """``cairn lineage model SPEC``: the training job, its inputs, code, environment and run
    of a model version (called by the ``lineage`` command)."""
    result = client().models.lineage(spec).to_json()
    if raw:
        return print_json(result)
    aliases = f"  ({', '.join(result['aliases'])})" if result["aliases"] else ""
    out.print(f"model {result['model']} version {result['version']}{aliases}")
    source = printable(result["ref"])
    out.print(f"  source: {source}  ({result['flavor']}, blake3 {result['hash'][:16]})")
    training = result["training"]
    if training is None:
        out.print("  put by a user (not written by a pipeline)")
    else:
        out.print(
            f"  training job: pipeline {training['pipeline']} (spec version "
            f"{training['spec_version']}), job {training['job']} {training['job_state'] or ''}"
        )
        out.print(f"  datum: {training['datum']}")
        out.print("  input commits:")
        for name, c in sorted(training["input_commits"].items()):
            out.print(f"    {name}: {c['repo']}@{c['branch']} = {c['commit']}")
        out.print("  input files:")
        for f in training["input_files"]:
            out.print(
                f"    {f['input']}: {f['repo']}@{f['commit']}:{printable(f['path'])}  "
                f"blake3 {f['hash'][:16]}  {fmt_size(f['size'])}"
            )
        out.print(f"  code: {training['code_hash'] or '-'}")
        for path, digest in sorted((training["code"] or {}).items()):
            out.print(f"    {printable(path)}  blake3 {digest[:16]}")
        env = training["environment"] or {}
        out.print(
            f"  environment: {env.get('hash', '-')}  python {env.get('python', '-')}  "
            f"{env.get('platform', '')}"
        )
    run = result["run"]
    if run is None:
        out.print("  run: -")
        return
    out.print(f"  run: {run['id']} ({run['name'] or '-'}, experiment {run['experiment']})")
    for key, value in sorted(run["params"].items()):
        out.print(f"    param {key} = {value}")
    for key, value in sorted(run["metrics"].items()):
        out.print(f"    metric {key} = {value:g}")
