"""Commands on pipelines, jobs, datums, logs and lineage, and ``cairn run``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text
from rich.tree import Tree

from cairn import sdk
from cairn.api.types import FileLineage, LineageNode
from cairn.catalog.errors import PermissionDenied
from cairn.cli.output import (
    CliReporter,
    Raw,
    app,
    client,
    embedded,
    err,
    fail_on_jobs,
    fmt_size,
    fmt_time,
    groups,
    job_line,
    out,
    print_json,
    print_pairs,
    print_table,
    printable,
    waits,
)
from cairn.data import InvalidPath, parse_ref
from cairn.pipelines import JobInfo, JobState

# -- pipelines -----------------------------------------------------------------------------
SpecFile = Annotated[Path, typer.Option("-f", "--file", help="JSON or YAML spec file")]


NoWait = Annotated[
    bool,
    typer.Option(
        "--no-wait",
        help="Do not run or wait for the jobs this triggers (as CAIRN_AUTO_RUN=0); exit 0 "
        "whatever they do.",
    ),
]


def _fail_on_jobs_of(created: list[Any]) -> None:
    """Exit 1 (PipelineError) naming a job that the specs just stored ran and that failed:
    the jobs of each pipeline under its new spec version, run (embedded) or waited for
    (remote) before the create or update returned."""
    if not waits():
        return
    fail_on_jobs(
        [j for p in created for j in client().jobs.list(p.name) if j.spec_version == p.version]
    )


@groups["create"].command("pipeline")
def create_pipeline(
    file: SpecFile,
    no_wait: NoWait = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Check the spec and the store, print what would be created."
        ),
    ] = False,
) -> None:
    """Create the pipelines in a spec file and run them over existing data; exit 1 naming
    a job that failed (--no-wait: leave the jobs to `cairn run` or the server)."""
    if dry_run:
        from cairn.cli.pachctl_commands import dry_run as check

        return check(file)
    created = client(wait=not no_wait).pipelines.create(file)
    for p in created:
        err.print(f"created pipeline {p.name} (version {p.version})")
    _fail_on_jobs_of(created)


@groups["update"].command("pipeline")
def update_pipeline(
    file: SpecFile,
    reprocess: Annotated[bool, typer.Option("--reprocess")] = False,
    no_wait: NoWait = False,
) -> None:
    """Replace pipelines' specs; unchanged datums are skipped unless --reprocess. Exits 1
    naming a job that failed, as create pipeline."""
    updated = client(wait=not no_wait).pipelines.update(file, reprocess=reprocess)
    for p in updated:
        err.print(f"updated pipeline {p.name} (version {p.version})")
    _fail_on_jobs_of(updated)


@groups["rerun"].command("pipeline")
def rerun_pipeline(name: str, no_wait: NoWait = False) -> None:
    """Run a pipeline again for its current inputs although its last job failed (its code
    was missing and is there now); exit 1 naming a job that failed."""
    started = time.time()
    info = client(wait=not no_wait).pipelines.rerun(name)
    err.print(f"rerun of pipeline {info.name} asked")
    if waits():
        fail_on_jobs([j for j in client().jobs.list(info.name) if j.created >= started - 1])


@groups["list"].command("pipeline")
def list_pipeline(
    spec: Annotated[
        bool, typer.Option("--spec", help="Print the specs (secret values masked).")
    ] = False,
    raw: Raw = False,
) -> None:
    """List pipelines with their inputs and state; a pipeline whose stored spec cannot be
    read is listed as broken, with the error."""
    found = client().pipelines.list()
    if spec:
        return print_json(_masked([p.spec.model_dump(mode="json") for p in found]))
    broken = client().pipelines.broken()
    if raw:
        specs = _masked([p.spec.model_dump(mode="json") for p in found])
        rows_json = [_pipeline_json(p, spec) for p, spec in zip(found, specs, strict=True)]
        rows_json += [{**b.__dict__, "state": "broken", "stored_state": b.state} for b in broken]
        return print_json(sorted(rows_json, key=lambda r: r["name"]))
    rows = []
    descriptions = _masked([p.spec.description for p in found])
    for p, description in zip(found, descriptions, strict=True):
        jobs = client().jobs.list(p.name)
        last = f"{jobs[0].state} ({jobs[0].id[:12]})" if jobs else "-"
        rows.append(
            [
                p.name,
                p.version,
                ", ".join(f"{x.repo}:{x.glob}" for x in p.spec.pfs_inputs()),
                p.state,
                last,
                description,
            ]
        )
    rows += [[b.name, b.version, "?", "broken", "-", b.error] for b in broken]
    rows.sort(key=lambda row: str(row[0]))
    print_table(["NAME", "VERSION", "INPUT", "STATE", "LAST JOB", "DESCRIPTION"], rows)


def _masked(values: list[Any]) -> list[Any]:
    """``values`` (text, or specs as dumped) with every stored secret value in their
    strings masked, in one call of ``secrets.mask``: a spec holds secrets by reference
    only, but a value pasted into it (say into env) is masked too."""
    texts: list[str] = []

    def collect(value: Any) -> None:
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, dict | list):
            for v in value.values() if isinstance(value, dict) else value:
                collect(v)

    for value in values:
        collect(value)
    try:
        masked = iter(client().secrets.mask(texts) if texts else [])
    except PermissionDenied:
        # Against a server, only a clusterAdmin may ask (the answer tells whether a guess
        # is a secret's value); the server masked what it sent others already
        # (cairn.server.team.masking).
        masked = iter(texts)

    def rebuild(value: Any) -> Any:
        if isinstance(value, str):
            return next(masked)
        if isinstance(value, dict):
            return {k: rebuild(v) for k, v in value.items()}
        if isinstance(value, list):
            return [rebuild(v) for v in value]
        return value

    return [rebuild(value) for value in values]


def _pipeline_json(p: Any, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": p.name,
        "version": p.version,
        "state": p.state,
        "spec_dir": p.spec_dir,
        "created": p.created,
        "updated": p.updated,
        "spec": spec,
    }


@groups["inspect"].command("pipeline")
def inspect_pipeline(name: str, raw: Raw = False) -> None:
    """Show a pipeline's spec and state (secret values masked as ***)."""
    p = client().pipelines.get(name)
    if raw:
        return print_json(_pipeline_json(p, _masked([p.spec.model_dump(mode="json")])[0]))
    print_pairs(
        {
            "Name": p.name,
            "Version": p.version,
            "State": p.state,
            "Working directory": p.spec_dir,
            "Created": fmt_time(p.created),
            "Updated": fmt_time(p.updated),
        }
    )
    out.print("Spec:")
    spec = _masked([p.spec.model_dump(mode="json", exclude_defaults=True)])[0]
    out.print(json.dumps(spec, indent=2))


@groups["delete"].command("pipeline")
def delete_pipeline(
    name: str, force: Annotated[bool, typer.Option("--force", "-f")] = False
) -> None:
    """Delete a pipeline, its jobs and its output repo (also a broken one)."""
    client().pipelines.delete(name, force=force)


# -- secrets -------------------------------------------------------------------------------
def _pair(text: str, option: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise typer.BadParameter(f"{text!r}: expected KEY=VALUE", param_hint=option)
    return key, value


@groups["create"].command("secret")
def create_secret(
    name: str,
    literal: Annotated[
        list[str] | None,
        typer.Option("--from-literal", help="KEY=VALUE (lands in shell history; repeatable)."),
    ] = None,
    from_file: Annotated[
        list[str] | None,
        typer.Option("--from-file", help="KEY=PATH or PATH (key: the file's name; repeatable)."),
    ] = None,
) -> None:
    """Store a secret for transform.secrets, like kubectl create secret generic; its values
    stay in the store folder's secrets.json (mode 0600), never in a spec or the catalog."""
    values = dict(_pair(item, "--from-literal") for item in literal or [])
    for item in from_file or []:
        key, sep, path = item.partition("=")
        if not sep:
            key, path = Path(item).name, item
        try:
            values[key] = Path(path).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise typer.BadParameter(f"{path}: not UTF-8 text", param_hint="--from-file") from None
    info = client().secrets.create(name, values)
    err.print(f"created secret {info.name} (keys: {', '.join(info.keys)})")


@groups["list"].command("secret")
def list_secret(raw: Raw = False) -> None:
    """List secrets with their keys (never their values)."""
    found = client().secrets.list()
    if raw:
        return print_json([{"name": s.name, "keys": list(s.keys)} for s in found])
    print_table(["NAME", "KEYS"], [[s.name, ", ".join(s.keys)] for s in found])


@groups["delete"].command("secret")
def delete_secret(name: str) -> None:
    """Delete a secret; jobs of pipelines that name it fail until it is created again."""
    client().secrets.delete(name)


@groups["start"].command("pipeline")
def start_pipeline(name: str) -> None:
    """Resume a stopped pipeline (and catch up on its inputs)."""
    client().pipelines.start(name)


@groups["stop"].command("pipeline")
def stop_pipeline(name: str) -> None:
    """Pause a pipeline: new input commits wait until `start pipeline`."""
    client().pipelines.stop(name)


# -- jobs and datums -----------------------------------------------------------------------
def _job_ref(ref: str) -> str:
    """``ref`` checked to be ``pipeline@job-id``."""
    _, sep, job = ref.partition("@")
    if not sep or not job:
        raise InvalidPath(f"{ref!r}: expected pipeline@job-id")
    return ref


def _job_json(j: JobInfo) -> dict[str, Any]:
    return {**j.__dict__, "duration": j.duration}


@groups["list"].command("job")
def list_job(
    job: Annotated[str | None, typer.Argument(help="a job id (or prefix): that job only")] = None,
    pipeline: Annotated[str | None, typer.Option("-p", "--pipeline")] = None,
    state: Annotated[
        list[str] | None,
        typer.Option("--state", help="Only jobs in this state (repeatable), as pachctl's."),
    ] = None,
    raw: Raw = False,
) -> None:
    """List jobs, newest first."""
    if job and "@" in job:
        pipeline, job = _job_ref(job).split("@", 1)
    found = client().jobs.list(pipeline)
    if job:
        found = [j for j in found if j.id.startswith(job)]
    if state:
        wanted = {s.lower() for s in state}
        found = [j for j in found if str(j.state).lower() in wanted]
    if raw:
        return print_json([_job_json(j) for j in found])
    print_table(
        [
            "JOB",
            "PIPELINE",
            "STATE",
            "STARTED",
            "DURATION",
            "PROCESSED",
            "SKIPPED",
            "FAILED",
            "TOTAL",
        ],
        [
            [
                j.id,
                j.pipeline,
                j.state,
                fmt_time(j.started),
                f"{j.duration:.1f}s" if j.duration is not None else "-",
                j.processed,
                j.skipped,
                j.failed,
                j.total,
            ]
            for j in found
        ],
    )


@groups["inspect"].command("job")
def inspect_job(
    ref: Annotated[str, typer.Argument(help="pipeline@job-id")], raw: Raw = False
) -> None:
    """Show a job's state, datum counts, durations and bytes."""
    j = client().jobs.get(_job_ref(ref))
    if raw:
        return print_json(_job_json(j))
    print_pairs(
        {
            "Job": f"{j.pipeline}@{j.id}",
            "State": j.state,
            "Spec version": j.spec_version,
            "Inputs": ", ".join(f"{k}@{v}" for k, v in j.inputs.items()),
            "Output commit": j.output_commit or "-",
            "Started": fmt_time(j.started),
            "Finished": fmt_time(j.finished),
            "Duration": f"{j.duration:.2f}s" if j.duration is not None else "-",
            "Datums": f"{j.processed} processed, {j.skipped} skipped, {j.failed} failed, "
            f"{j.recovered} recovered, {j.total} total",
            "Bytes in / out": f"{fmt_size(j.bytes_in)} / {fmt_size(j.bytes_out)}",
            "Reason": j.reason or "-",
        }
    )


@groups["wait"].command("job")
def wait_job(
    ref: Annotated[str, typer.Argument(help="pipeline@job-id")],
    timeout: Annotated[float | None, typer.Option()] = None,
) -> None:
    """Block until a job is done; exit 1 if it did not succeed."""
    j = client().jobs.wait(_job_ref(ref), timeout=timeout)
    err.print(job_line(j))
    if j.state != "success":
        raise typer.Exit(1)


@groups["list"].command("datum")
def list_datum(
    ref: Annotated[str | None, typer.Argument(help="pipeline@job-id")] = None,
    file: Annotated[
        Path | None,
        typer.Option("-f", "--file", help="A spec file: its datums, before it is created."),
    ] = None,
    raw: Raw = False,
) -> None:
    """List a job's datums with their state and input files, or (-f SPEC) the datums a
    spec would make over its inputs now, before it is created."""
    if (ref is None) == (file is None):
        raise InvalidPath("give a job (pipeline@job-id) or a spec file (-f), not both")
    if file is not None:
        return _preview_datums(file, raw)
    found = client().jobs.datums(_job_ref(ref or ""))
    if raw:
        return print_json([d.__dict__ for d in found])
    print_table(
        ["DATUM", "STATE", "FILES", "ATTEMPTS", "DURATION", "ERROR"],
        [
            [
                d.id[:16],
                d.state,
                ", ".join(f"{i['input']}:{i['path']}" for i in d.inputs[:3])
                + (f" (+{len(d.inputs) - 3})" if len(d.inputs) > 3 else ""),
                d.attempts,
                f"{d.duration:.2f}s",
                d.error,
            ]
            for d in found
        ],
    )


def _preview_datums(file: Path, raw: bool) -> None:
    from cairn.pipelines.spec import load_spec_file

    specs = load_spec_file(file)
    rows = []
    found = []
    for spec in specs:
        for d in client().pipelines.datums(json.loads(spec.canonical_json())):
            found.append({"pipeline": spec.pipeline.name, "id": d.id, "inputs": d.inputs})
            files = ", ".join(f"{i['input']}:{i['path']}" for i in d.inputs[:3])
            more = f" (+{len(d.inputs) - 3})" if len(d.inputs) > 3 else ""
            rows.append([spec.pipeline.name, d.id[:16], files + more])
    if raw:
        return print_json(found)
    print_table(["PIPELINE", "DATUM", "FILES"], rows)


@groups["next"].command("datum")
def next_datum(
    fail: Annotated[
        str | None, typer.Option("--fail", help="Report the datum in progress failed, why.")
    ] = None,
) -> None:
    """Finish the datum in progress and print the next datum's id; exit 1 when none is left.

    For shell transforms with datum_batching, as pachctl next datum:
    while id=$(cairn next datum); do ...; done. Errors exit 2.
    """
    try:
        reply = sdk.exchange("next" if fail is None else f"fail {fail}")
    except RuntimeError as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(2) from None
    if reply == sdk.END:
        raise typer.Exit(1)
    out.print(reply)


@app.command("logs")
def logs(
    pipeline: Annotated[str | None, typer.Option("-p", "--pipeline")] = None,
    job: Annotated[str | None, typer.Option("-j", "--job", help="job id or pipeline@job")] = None,
    datum: Annotated[str | None, typer.Option("-d", "--datum")] = None,
    follow: Annotated[
        bool,
        typer.Option("-f", "--follow", help="Print new lines while the job runs, until it ends."),
    ] = False,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Logs of every job started in this past window (24h)."),
    ] = None,
) -> None:
    """Print the logs of a pipeline's latest job, a job, or one datum."""
    if job and "@" in job:
        pipeline, job = _job_ref(job).split("@", 1)
    if not pipeline:
        raise InvalidPath("name the pipeline: -p PIPELINE, or -j PIPELINE@JOB")
    if since is not None:
        from cairn.pipelines.units import parse_duration

        start = time.time() - parse_duration(since, "--since")
        refs = [
            f"{pipeline}@{j.id}"
            for j in reversed(client().jobs.list(pipeline))
            if (j.started or j.created) >= start
        ]
    else:
        refs = [f"{pipeline}@{job}" if job else pipeline]
    printed: dict[str, int] = {}
    for ref in refs:
        _print_logs(ref, datum, printed)
    if not follow:
        return
    if refs and "@" in refs[-1]:
        ref = refs[-1]
    else:  # a pipeline's latest job
        latest = client().jobs.list(pipeline)
        if not latest:
            return
        ref = f"{pipeline}@{latest[0].id}"
    while True:
        done = client().jobs.get(ref).state != JobState.RUNNING
        _print_logs(ref, datum, printed)
        if done:
            return
        time.sleep(0.5)


def _print_logs(ref: str, datum: str | None, printed: dict[str, int]) -> None:
    """Print the log text of ``ref`` (a job, or a pipeline's latest) not printed yet:
    ``printed`` maps each heading to the characters already shown, so following a running
    job prints each line once."""
    # Values were masked when the job stored its logs; secrets created since are masked here.
    entries = client().jobs.logs(ref, datum)
    for entry, text in zip(entries, _masked([e.text for e in entries]), strict=True):
        shown = printed.get(entry.heading)
        if shown is None:
            out.print(Text(f"== {entry.heading}", style="bold"))
            shown = 0
        new = text[shown:]
        printed[entry.heading] = len(text)
        if new:
            sys.stdout.write(new if new.endswith("\n") else new + "\n")
            sys.stdout.flush()


# -- lineage and running ---------------------------------------------------------------------
def _tree(node: LineageNode, tree: Tree) -> None:
    for child in node.children:
        label = f"{child.repo}@{child.commit}" + (f"  (as {child.via})" if child.via else "")
        if child.deleted:
            label += "  (deleted)"
        _tree(child, tree.add(label))


@app.command("lineage")
def lineage(
    ref: Annotated[
        str, typer.Argument(help="repo@commit or repo@commit:/path, or the word 'model'")
    ],
    model: Annotated[
        str | None, typer.Argument(help="after 'model': NAME@ALIAS, NAME/VERSION or NAME")
    ] = None,
    raw: Raw = False,
) -> None:
    """Upstream and downstream commits, where one output file came from, or (``lineage
    model NAME@ALIAS``) the training job, data, code, environment and run of a model."""
    if model is not None:
        if ref != "model":
            raise typer.BadParameter(
                f"`cairn lineage {ref} {model}`: did you mean `lineage model`?"
            )
        from cairn.cli.model_commands import print_model_lineage

        return print_model_lineage(model, raw)
    if parse_ref(ref).path:
        return _print_file_lineage(client().files.lineage(ref), raw)
    result = client().commits.lineage(ref)
    if raw:
        return print_json(result.to_json())
    for direction, root in (("upstream", result.upstream), ("downstream", result.downstream)):
        tree = Tree(Text(f"{direction} of {root.repo}@{root.commit}", style="bold"))
        _tree(root, tree)
        if not root.children:
            tree.add("(none)")
        out.print(tree)


def _print_file_lineage(result: FileLineage, raw: bool) -> None:
    if raw:
        found = result.to_json()
        if result.origin is not None:  # a file a user put: no pipeline fields
            found = {k: found[k] for k in ("repo", "commit", "path", "hash", "size", "origin")}
        else:
            found.pop("origin")
        return print_json(found)
    out.print(
        f"{result.repo}@{result.commit}:{printable(result.path)}  "
        f"({fmt_size(result.size)}, blake3 {result.hash[:16]})"
    )
    if result.origin is not None:
        out.print(f"  {result.origin}")
        return
    out.print(f"  written by pipeline {result.pipeline}, job {result.job}")
    out.print(f"  datum {result.datum}")
    out.print("  from input files:")
    for i in result.inputs:
        out.print(
            f"    {i.input}: {i.repo}@{i.commit}:{printable(i.path)}  "
            f"blake3 {i.hash[:16]}  {fmt_size(i.size)}"
        )


class _RunReporter(CliReporter):
    """``cairn run``'s job lines: one when a job ends (with its reason when it failed),
    none when it starts; ``quiet``: none at all."""

    def __init__(self, quiet: bool) -> None:
        super().__init__()
        self.quiet = quiet

    def job_started(self, job: JobInfo, to_process: int) -> None:
        pass

    def datum_done(self, job: JobInfo, datum: Any) -> None:
        pass

    def job_finished(self, job: JobInfo) -> None:
        if not self.quiet:
            err.print(job_line(job), soft_wrap=True)


def _event_line(event: Any) -> str:
    """One line for an event of the log: its kind, subject and what it says."""
    info = json.dumps(event.info, sort_keys=True, default=str)
    if len(info) > 200:
        info = info[:199] + "…"
    return printable(f"{event.kind} {event.subject}: {info}")


@app.command("run")
def run(
    what: Annotated[
        str | None,
        typer.Argument(help="'cron': tick the cron inputs of PIPELINE by hand, then exit."),
    ] = None,
    pipeline: Annotated[str | None, typer.Argument(help="The pipeline of 'run cron'.")] = None,
    once: Annotated[bool, typer.Option("--once", help="Run what is stale, then exit.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between checks.")] = 1.0,
    allow_unconfined: Annotated[
        bool,
        typer.Option(
            "--allow-unconfined",
            help="Without a sandbox, also run pipelines another OS user created "
            "(their transforms then run as you).",
        ),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="Print only errors, not each job and event."),
    ] = False,
) -> None:
    """Keep pipelines current as commits arrive from other processes, and tick the
    monitoring rules (on their schedule and after each prediction-log commit); Ctrl-C
    stops.

    Prints one line on stderr per job that ends, per event recorded meanwhile (a monitor's
    step, a promotion, a webhook that failed...) and per monitoring error; --quiet prints
    the errors only. Cron inputs tick on their schedule meanwhile.

    `cairn run cron PIPELINE` ticks every cron input of PIPELINE once now, whatever its
    schedule (pachctl's `run cron`), runs the jobs that makes, and exits (1 if one failed).
    """
    if what is not None:
        if what != "cron" or pipeline is None:
            raise typer.BadParameter("write `cairn run cron PIPELINE`, or `cairn run` alone")
        why = "the server ticks cron inputs itself; run this where the store is"
        cron_client = embedded("run cron", why)
        cron_client.reporter = _RunReporter(quiet)
        fail_on_jobs(cron_client.run_cron(pipeline))
        return

    def report(exc: Exception) -> None:
        err.print(f"monitors: {type(exc).__name__}: {exc}", soft_wrap=True)

    why = "the server runs pipelines and monitors itself; `cairn wait commit` waits for them"
    found = embedded("run", why)
    found.reporter = _RunReporter(quiet)
    seen = [max((e.id for e in found.events.list(limit=1)), default=0)]

    def new_events() -> None:
        events = found.events.list(since=seen[0])
        if events:
            seen[0] = events[-1].id
        if not quiet:
            for event in events:
                err.print(_event_line(event), soft_wrap=True)

    found.run_forever(
        once=once,
        interval=interval,
        allow_unconfined=allow_unconfined,
        on_error=report,
        on_round=new_events,
    )
