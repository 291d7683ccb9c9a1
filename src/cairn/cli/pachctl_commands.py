"""pachctl's verbs that the examples and tutorials use and that need no verb of cairn's
own: ``validate pipeline``, ``draw pipeline``, ``edit pipeline``, and the Kubernetes-only
``port-forward`` and ``deploy``, which answer that they do not apply.

Options that pachctl adds to verbs cairn already has (``list pipeline --spec``,
``create pipeline --dry-run``, ``list job --state``, ``diff file --name-only``, ``logs -f``)
live with those verbs; ``-o json|yaml`` is given to every command with ``--raw`` in
``cairn.cli.root``.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from cairn.cli.output import app, client, err, groups, out, print_json
from cairn.data import InvalidPath
from cairn.storage.settings import read_settings

__all__ = ["dag_lines", "spec_problems"]

SpecFile = Annotated[Path, typer.Option("-f", "--file", help="JSON or YAML spec file")]


def spec_problems(specs: list[Any], repos: set[str], pipelines: set[str]) -> list[str]:
    """What would stop ``create pipeline`` from storing ``specs`` in a store holding
    ``repos`` and ``pipelines``: a name taken, or an input repo that neither exists nor is
    the output of an earlier spec of the same file. Empty when nothing would."""
    problems = []
    made: set[str] = set()
    for spec in specs:
        name = spec.pipeline.name
        if name in pipelines or name in made:
            problems.append(f"pipeline {name!r} already exists (use update pipeline)")
        elif name in repos:
            problems.append(f"pipeline {name!r}: a repo of that name exists")
        for leaf in spec.pfs_inputs():
            if leaf.repo not in repos and leaf.repo not in made:
                problems.append(f"pipeline {name!r}: input repo {leaf.repo!r} does not exist")
        made.add(name)
    return problems


def check_specs(file: Path) -> list[Any]:
    """The specs in ``file``, parsed as ``create pipeline`` parses them (SpecError)."""
    from cairn.pipelines.spec import load_specs

    return load_specs(file.read_text(encoding="utf-8"), source=str(file))


@groups["validate"].command("pipeline")
def validate_pipeline(file: SpecFile) -> None:
    """Check a spec file offline, as pachctl validate pipeline: the fields, their types and
    the input tree; exit 1 naming the first wrong field. Nothing is stored."""
    for spec in check_specs(file):
        err.print(f"pipeline {spec.pipeline.name}: valid")


def dry_run(file: Path) -> None:
    """``create pipeline --dry-run``: validate ``file`` and check it against the store;
    print what would be created, exit 1 listing what would fail."""
    specs = check_specs(file)
    repos = {r.name for r in client().repos.list()}
    pipelines = {p.name for p in client().pipelines.list()}
    problems = spec_problems(specs, repos, pipelines)
    for problem in problems:
        err.print(f"error: {problem}")
    if problems:
        raise typer.Exit(1)
    for spec in specs:
        inputs = ", ".join(sorted({leaf.repo for leaf in spec.pfs_inputs()}))
        out.print(f"would create pipeline {spec.pipeline.name} (reads {inputs})")


def dag_lines(edges: dict[str, list[str]], roots: list[str]) -> list[str]:
    """The DAG ``edges`` (node -> the nodes that read it) as indented text from ``roots``,
    one node per line; a node met again is printed once more with ``(above)`` and not
    expanded, so a diamond stays finite and readable."""
    lines: list[str] = []
    seen: set[str] = set()

    def walk(node: str, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└─▶ " if last else "├─▶ ")
        again = node in seen
        lines.append(f"{prefix}{branch}{node}{'  (above)' if again else ''}")
        if again:
            return
        seen.add(node)
        children = sorted(edges.get(node, ()))
        inner = prefix if top else prefix + ("    " if last else "│   ")
        for i, child in enumerate(children):
            walk(child, inner, i == len(children) - 1, False)

    for root in roots:
        walk(root, "", True, True)
    return lines


@groups["draw"].command("pipeline")
def draw_pipeline(raw: Annotated[bool, typer.Option("--raw", help="Print JSON.")] = False) -> None:
    """Draw the DAG as text: each input repo, the pipelines that read it, their outputs."""
    pipelines = client().pipelines.list()
    edges: dict[str, set[str]] = {}
    for p in pipelines:
        for leaf in p.spec.pfs_inputs():
            edges.setdefault(leaf.repo, set()).add(p.name)
    if raw:
        return print_json({repo: sorted(readers) for repo, readers in sorted(edges.items())})
    outputs = {p.name for p in pipelines}
    roots = sorted(repo for repo in edges if repo not in outputs)
    for line in dag_lines({k: sorted(v) for k, v in edges.items()}, roots):
        out.print(line)


@groups["edit"].command("pipeline")
def edit_pipeline(
    name: str,
    editor: Annotated[
        str | None, typer.Option("--editor", help="Command to edit with (default $EDITOR).")
    ] = None,
    reprocess: Annotated[bool, typer.Option("--reprocess")] = False,
) -> None:
    """Open a pipeline's spec in $EDITOR (as YAML) and update the pipeline with what is saved;
    an unchanged file changes nothing. The transform keeps running in the folder its spec
    was created from."""
    import yaml

    info = client().pipelines.get(name)
    spec = info.spec.model_dump(mode="json", exclude_none=True)
    command = editor or os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not command:
        raise InvalidPath("no editor: set $EDITOR or give --editor")
    with tempfile.TemporaryDirectory(prefix="cairn-edit-") as tmp:
        path = Path(tmp) / f"{name}.yaml"
        before = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
        path.write_text(before, encoding="utf-8")
        status = subprocess.run([*shlex.split(command), str(path)], check=False).returncode
        if status != 0:
            err.print(f"error: the editor exited with {status}; pipeline {name} is unchanged")
            raise typer.Exit(1)
        after = path.read_text(encoding="utf-8")
        if after == before:
            err.print(f"pipeline {name} is unchanged")
            return
        edited = yaml.safe_load(after)
        if not isinstance(edited, dict) or edited.get("pipeline", {}).get("name") != name:
            raise InvalidPath(f"the edited spec must keep pipeline.name {name!r}")
        # Embedded, the transform keeps its folder; a server keeps the stored one itself
        # (naming a server folder is clusterAdmin's alone).
        spec_dir = None if read_settings().url else info.spec_dir
        updated = client().pipelines.update(
            json.loads(json.dumps(edited)), spec_dir=spec_dir, reprocess=reprocess
        )
    for p in updated:
        err.print(f"updated pipeline {p.name} (version {p.version})")


def _not_here(what: str) -> None:
    err.print(
        f"cairn has no {what}: it runs without Kubernetes, so there is nothing to "
        "deploy or forward (cairn server serves the store; cairn serve a model)"
    )


@app.command("port-forward")
def port_forward() -> None:
    """Not needed: pachctl port-forward reaches pachd inside Kubernetes; cairn server listens
    on its own port."""
    _not_here("port-forward")


@app.command("deploy")
def deploy() -> None:
    """Not needed: pachctl deploy installs Pachyderm on Kubernetes; cairn is pip install and
    cairn init (or cairn server for a team)."""
    _not_here("deploy")
