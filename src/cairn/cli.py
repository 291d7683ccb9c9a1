"""The ``cairn`` command: pachctl's verbs and ``repo@branch:/path`` syntax over cairn.Client.

Each command parses its arguments, calls one Client method and formats the
result: a table (``--raw`` for JSON) or plain lines. Errors print one line on
standard error and exit with status 1; nothing is half done.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from cairn.client import Client, find_home
from cairn.data import InvalidPath, NotFound, Ref, parse_ref, to_json
from cairn.pipelines import CommitNode, DatumInfo, JobInfo, Reporter
from cairn.storage import CairnError

__all__ = ["app", "main"]

# Off a terminal rich would wrap tables at 80 columns; ids are 32 characters wide.
out = Console(highlight=False, markup=False, width=None if sys.stdout.isatty() else 400)
err = Console(
    stderr=True, highlight=False, markup=False, width=None if sys.stderr.isatty() else 400
)

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="cairn: versioned data and data-driven pipelines (pachctl's verbs).",
)
groups = {
    name: typer.Typer(no_args_is_help=True, help=text)
    for name, text in {
        "create": "Create a repo, branch or pipeline.",
        "list": "List repos, branches, commits, files, pipelines, jobs or datums.",
        "inspect": "Show one repo, branch, commit, file, pipeline or job in detail.",
        "delete": "Delete a repo, branch, file or pipeline.",
        "put": "Put files into a repo.",
        "get": "Get files out of a repo.",
        "glob": "Match files with a glob pattern.",
        "diff": "Compare two commits.",
        "copy": "Copy files between commits without copying bytes.",
        "start": "Start a commit or a pipeline.",
        "finish": "Finish a commit.",
        "wait": "Wait for a commit or job to finish.",
        "update": "Update a pipeline.",
        "stop": "Stop (pause) a pipeline.",
    }.items()
}
for _name, _group in groups.items():
    app.add_typer(_group, name=_name)

Raw = Annotated[bool, typer.Option("--raw", help="Print JSON instead of a table.")]


# -- output helpers ------------------------------------------------------------------------
def _time(t: float | None) -> str:
    return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S") if t else "-"


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _raw(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))


def _table(columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*[str(v) for v in row])
    out.print(table)


class CliReporter(Reporter):
    """Job progress: a rich bar per job on a terminal, plain lines otherwise."""

    def __init__(self) -> None:
        self.progress: Progress | None = None
        self.tasks: dict[tuple[str, str], Any] = {}
        self.noted: set[str] = set()

    def job_started(self, job: JobInfo, to_process: int) -> None:
        label = f"{job.pipeline}: job {job.id[:12]}"
        if err.is_terminal:
            if self.progress is None:
                self.progress = Progress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    console=err,
                    transient=True,
                )
                self.progress.start()
            self.tasks[(job.pipeline, job.id)] = self.progress.add_task(label, total=to_process)
        else:
            err.print(f"{label}: {to_process} datum(s) to process, {job.skipped} skipped")

    def datum_done(self, job: JobInfo, datum: DatumInfo) -> None:
        task = self.tasks.get((job.pipeline, job.id))
        if self.progress is not None and task is not None:
            self.progress.advance(task)

    def job_finished(self, job: JobInfo) -> None:
        task = self.tasks.pop((job.pipeline, job.id), None)
        if self.progress is not None and task is not None:
            self.progress.remove_task(task)
            if not self.tasks:
                self.progress.stop()
                self.progress = None
        err.print(_job_line(job))

    def note(self, pipeline: str, message: str) -> None:
        if message not in self.noted:
            self.noted.add(message)
            err.print(f"{pipeline}: note: {message}")


def _job_line(job: JobInfo) -> str:
    took = f" in {job.duration:.1f}s" if job.duration is not None else ""
    line = (
        f"{job.pipeline}: job {job.id[:12]} {job.state}{took}: {job.processed} processed, "
        f"{job.skipped} skipped, {job.failed} failed, {job.recovered} recovered "
        f"of {job.total} datum(s)"
    )
    if job.reason:
        line += f"\n  {job.reason}"
    return line


_client: Client | None = None


def client() -> Client:
    global _client
    if _client is None:
        home, exists = find_home()
        if not exists:
            err.print(f"cairn: using a new store at {home}")
        _client = Client(home, reporter=CliReporter())
    return _client


def _branch_target(ref: Ref) -> str | None:
    if ref.ancestry:
        raise InvalidPath(f"{ref}: cannot write to an ancestor; name a branch or open commit")
    return ref.commit


# -- repos ---------------------------------------------------------------------------------
@groups["create"].command("repo")
def create_repo(
    name: str, description: Annotated[str, typer.Option("-d", "--description")] = ""
) -> None:
    """Create a new, empty repo."""
    client().create_repo(name, description)


@groups["list"].command("repo")
def list_repo(raw: Raw = False) -> None:
    """List every repo."""
    repos = client().data.list_repos()
    if raw:
        return _raw(to_json(repos))
    _table(
        ["NAME", "TYPE", "CREATED", "SIZE (MASTER)", "DESCRIPTION"],
        [[r.name, r.type, _time(r.created), _size(r.size), r.description] for r in repos],
    )


@groups["inspect"].command("repo")
def inspect_repo(name: str, raw: Raw = False) -> None:
    """Show a repo's type, branches and size."""
    r = client().data.inspect_repo(name)
    if raw:
        return _raw(to_json(r))
    _pairs(
        {
            "Name": r.name,
            "Type": r.type,
            "Description": r.description,
            "Created": _time(r.created),
            "Size of HEAD on master": _size(r.size),
            "Branches": ", ".join(r.branches) or "-",
        }
    )


@groups["delete"].command("repo")
def delete_repo(name: str, force: Annotated[bool, typer.Option("--force", "-f")] = False) -> None:
    """Delete a repo (refused while a pipeline reads it, unless --force)."""
    client().delete_repo(name, force=force)


def _pairs(values: dict[str, Any]) -> None:
    width = max(len(k) for k in values)
    for key, value in values.items():
        out.print(f"{key + ':':<{width + 1}} {value}")


# -- branches ------------------------------------------------------------------------------
@groups["create"].command("branch")
def create_branch(
    ref: Annotated[str, typer.Argument(help="repo@branch")],
    head: Annotated[str | None, typer.Option("--head", help="commit or branch^N")] = None,
) -> None:
    """Create a branch, or move it to --head."""
    parsed = parse_ref(ref)
    if not parsed.commit:
        raise InvalidPath("name the branch: repo@branch")
    client().create_branch(parsed.repo, parsed.commit, head)


@groups["list"].command("branch")
def list_branch(repo: str, raw: Raw = False) -> None:
    """List a repo's branches."""
    found = client().data.list_branches(repo)
    if raw:
        return _raw(to_json(found))
    _table(["BRANCH", "HEAD"], [[b.name, b.head or "-"] for b in found])


@groups["inspect"].command("branch")
def inspect_branch(
    ref: Annotated[str, typer.Argument(help="repo@branch")], raw: Raw = False
) -> None:
    """Show a branch's head."""
    parsed = parse_ref(ref)
    b = client().data.inspect_branch(parsed.repo, parsed.commit or "master")
    if raw:
        return _raw(to_json(b))
    _pairs({"Name": f"{b.repo}@{b.name}", "Head": b.head or "-", "Created": _time(b.created)})


@groups["delete"].command("branch")
def delete_branch(ref: Annotated[str, typer.Argument(help="repo@branch")]) -> None:
    """Delete a branch name (its commits stay reachable by id)."""
    parsed = parse_ref(ref)
    client().data.delete_branch(parsed.repo, parsed.commit or "master")


# -- commits -------------------------------------------------------------------------------
@groups["start"].command("commit")
def start_commit(
    ref: Annotated[str, typer.Argument(help="repo@branch")],
    message: Annotated[str, typer.Option("-m", "--message")] = "",
) -> None:
    """Open a commit; later puts go into it until `finish commit`. Prints its id."""
    parsed = parse_ref(ref)
    print(client().start_commit(parsed.repo, parsed.commit, message).id)


@groups["finish"].command("commit")
def finish_commit(ref: Annotated[str, typer.Argument(help="repo@branch or repo@id")]) -> None:
    """Finish an open commit; pipelines that read it run."""
    parsed = parse_ref(ref)
    client().finish_commit(parsed.repo, parsed.commit)


def _commit_rows(commits: list) -> list[list[Any]]:
    return [
        [
            f"{c.repo}@{c.id}",
            c.branch or "-",
            c.origin,
            c.state,
            _time(c.created),
            _size(c.size),
            c.description,
        ]
        for c in commits
    ]


@groups["list"].command("commit")
def list_commit(
    ref: Annotated[str, typer.Argument(help="repo or repo@branch")],
    number: Annotated[int, typer.Option("-n", "--number")] = 0,
    raw: Raw = False,
) -> None:
    """List commits, newest first (a branch's history when a branch is named)."""
    parsed = parse_ref(ref)
    found = client().data.list_commits(parsed.repo, parsed.commit, number)
    if raw:
        return _raw(to_json(found))
    _table(
        ["COMMIT", "BRANCH", "ORIGIN", "STATE", "STARTED", "SIZE", "DESCRIPTION"],
        _commit_rows(found),
    )


@groups["inspect"].command("commit")
def inspect_commit(
    ref: Annotated[str, typer.Argument(help="repo@branch^N or repo@id")], raw: Raw = False
) -> None:
    """Show a commit with its provenance."""
    parsed = parse_ref(ref)
    c = client().data.resolve(parsed)
    if raw:
        return _raw(to_json(c))
    _pairs(
        {
            "Commit": f"{c.repo}@{c.id}",
            "Branch": c.branch or "-",
            "Parent": c.parent or "-",
            "Origin": c.origin,
            "State": c.state,
            "Started": _time(c.created),
            "Finished": _time(c.finished),
            "Size": _size(c.size),
            "Description": c.description or "-",
            "Provenance": ", ".join(f"{p.name}={p.repo}@{p.commit}" for p in c.provenance) or "-",
        }
    )
    if c.info:
        out.print("Info:")
        out.print(json.dumps(c.info, indent=2, sort_keys=True))


@groups["wait"].command("commit")
def wait_commit(ref: str, timeout: Annotated[float | None, typer.Option()] = None) -> None:
    """Block until a commit is finished."""
    parsed = parse_ref(ref)
    c = client().wait_commit(parsed.repo, parsed.commit, timeout)
    print(f"{c.repo}@{c.id}")


# -- files ---------------------------------------------------------------------------------
def _local_items(local: str, dest: str, recursive: bool) -> list[tuple[str, Path]]:
    src = Path(local)
    if src.is_dir():
        if not recursive:
            raise InvalidPath(f"{local} is a folder; add -r to put it recursively")
        items = []
        for f in sorted(src.rglob("*")):
            if f.is_file():
                items.append((f"{dest}/{f.relative_to(src).as_posix()}", f))
        return items
    if not src.exists():
        raise NotFound(f"local file {local} does not exist")
    if dest.endswith("/") or not dest.strip("/"):
        dest = f"{dest.rstrip('/')}/{src.name}"
    return [(dest, src)]


@contextmanager
def _byte_progress(total: int, label: str) -> Iterator[Any]:
    """A byte progress bar on a terminal; one plain line on stderr otherwise."""
    if not err.is_terminal:
        started = time.monotonic()
        yield None
        err.print(f"{label}: {_size(total)} in {time.monotonic() - started:.1f}s")
        return
    with Progress(
        TextColumn(label),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.advance(task, n)


@groups["put"].command("file")
def put_file(
    ref: Annotated[str, typer.Argument(help="repo@branch:/path")],
    file: Annotated[list[str], typer.Option("-f", "--file", help="local file, folder, or -")],
    recursive: Annotated[bool, typer.Option("-r", "--recursive")] = False,
    append: Annotated[bool, typer.Option("-a", "--append")] = False,
    message: Annotated[str, typer.Option("-m", "--message")] = "",
) -> None:
    """Put files into a commit (overwrite by default, -a to append).

    With an open commit on the branch the files join it; otherwise they make one new commit.
    """
    parsed = parse_ref(ref)
    target = _branch_target(parsed)
    dest = "/" + (parsed.path or "")
    if ref.endswith("/") and not dest.endswith("/"):
        dest += "/"
    if file == ["-"]:
        if not parsed.path:
            raise InvalidPath("name the file to write from stdin: repo@branch:/path")
        commit = client().put_files(
            parsed.repo, target, [(dest, sys.stdin.buffer)], append=append, description=message
        )
        print(f"{commit.repo}@{commit.id}")
        return
    items = [
        item
        for f in file
        for item in _local_items(
            f, dest.rstrip("/") if len(file) == 1 and Path(f).is_dir() else dest, recursive
        )
    ]
    total = sum(p.stat().st_size for _, p in items)

    def streams() -> Iterator[tuple[str, BinaryIO]]:
        for path, local in items:
            with open(local, "rb") as f:
                yield path, f

    with _byte_progress(total, f"put {len(items)} file(s)") as progress:
        commit = client().put_files(
            parsed.repo, target, streams(), append=append, progress=progress, description=message
        )
    print(f"{commit.repo}@{commit.id}")


@groups["get"].command("file")
def get_file(
    ref: Annotated[str, typer.Argument(help="repo@commit:/path")],
    output: Annotated[str | None, typer.Option("-o", "--output")] = None,
    recursive: Annotated[bool, typer.Option("-r", "--recursive")] = False,
) -> None:
    """Write a file to stdout or -o; with -r, a folder into the -o folder."""
    parsed = parse_ref(ref)
    data = client().data
    info = data.inspect_file(parsed)
    if info.type == "dir":
        if not recursive or not output:
            raise InvalidPath(f"{ref} is a folder; use -r -o LOCAL_FOLDER")
        base = parsed.path or ""
        files = list(data.walk_files(parsed))
        with _byte_progress(sum(e.size for _, e in files), f"get {len(files)} file(s)") as prog:
            for path, entry in files:
                rel = path[len(base) :].lstrip("/")
                target = Path(output) / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "wb") as f:
                    for piece in data.chunks.read(entry.content):
                        f.write(piece)
                        if prog:
                            prog(len(piece))
        return
    sink = open(output, "wb") if output else sys.stdout.buffer  # noqa: SIM115
    try:
        for piece in data.read_file(parsed):
            sink.write(piece)
    finally:
        if output:
            sink.close()
        else:
            sink.flush()


def _file_rows(files: list) -> list[list[Any]]:
    return [[f.path, f.type, _size(f.size), f.hash[:16]] for f in files]


@groups["list"].command("file")
def list_file(
    ref: Annotated[str, typer.Argument(help="repo@commit:/folder")], raw: Raw = False
) -> None:
    """List a folder's files."""
    files = client().list_file(ref)
    if raw:
        return _raw(to_json(files))
    _table(["NAME", "TYPE", "SIZE", "HASH"], _file_rows(files))


@groups["glob"].command("file")
def glob_file(
    ref: Annotated[str, typer.Argument(help="repo@commit:PATTERN")], raw: Raw = False
) -> None:
    """List the files and folders a glob pattern matches."""
    repo_part, _, pattern = ref.partition(":")
    files = client().data.glob_file(parse_ref(repo_part), pattern or "/*")
    if raw:
        return _raw(to_json(files))
    _table(["NAME", "TYPE", "SIZE", "HASH"], _file_rows(files))


@groups["inspect"].command("file")
def inspect_file(
    ref: Annotated[str, typer.Argument(help="repo@commit:/path")], raw: Raw = False
) -> None:
    """Show a file's size, hash, chunks and the datum that wrote it."""
    f = client().data.inspect_file(parse_ref(ref))
    if raw:
        return _raw(to_json(f))
    _pairs(
        {
            "Path": f.path,
            "Commit": f"{f.repo}@{f.commit}",
            "Type": f.type,
            "Size": f"{_size(f.size)} ({f.size} bytes)",
            "Hash (BLAKE3)": f.hash,
            "Files" if f.type == "dir" else "Chunks": f.count if f.type == "dir" else f.chunks,
            "Datum": f.datum or "-",
        }
    )


@groups["diff"].command("file")
def diff_file(
    new: Annotated[str, typer.Argument(help="repo@commit[:/path]")],
    old: Annotated[str | None, typer.Argument(help="repo@commit (default: parent)")] = None,
    raw: Raw = False,
) -> None:
    """Files added, modified and deleted between two commits."""
    changes = client().diff_file(new, old)
    if raw:
        return _raw(to_json(changes))
    _table(
        ["STATUS", "PATH", "OLD SIZE", "NEW SIZE"],
        [[c.status, c.path, _size(c.old_size), _size(c.new_size)] for c in changes],
    )


@groups["delete"].command("file")
def delete_file(ref: Annotated[str, typer.Argument(help="repo@branch:/path")]) -> None:
    """Delete a file or folder (in a new commit, or the open one)."""
    parsed = parse_ref(ref)
    commit = client().delete_files(parsed.repo, _branch_target(parsed), [parsed.path or ""])
    print(f"{commit.repo}@{commit.id}")


@groups["copy"].command("file")
def copy_file(
    src: Annotated[str, typer.Argument(help="repo@commit:/path")],
    dst: Annotated[str, typer.Argument(help="repo@branch:/path")],
) -> None:
    """Copy a file or folder; the copy shares the original's chunks."""
    d = parse_ref(dst)
    commit = client().copy_file(parse_ref(src), d.repo, _branch_target(d), d.path or "")
    print(f"{commit.repo}@{commit.id}")


# -- pipelines -----------------------------------------------------------------------------
SpecFile = Annotated[Path, typer.Option("-f", "--file", help="JSON or YAML spec file")]


@groups["create"].command("pipeline")
def create_pipeline(file: SpecFile) -> None:
    """Create the pipelines in a spec file and run them over existing data."""
    for p in client().create_pipelines(file):
        err.print(f"created pipeline {p.name} (version {p.version})")


@groups["update"].command("pipeline")
def update_pipeline(
    file: SpecFile, reprocess: Annotated[bool, typer.Option("--reprocess")] = False
) -> None:
    """Replace pipelines' specs; unchanged datums are skipped unless --reprocess."""
    for p in client().create_pipelines(file, update=True, reprocess=reprocess):
        err.print(f"updated pipeline {p.name} (version {p.version})")


@groups["list"].command("pipeline")
def list_pipeline(raw: Raw = False) -> None:
    """List pipelines with their inputs and state."""
    found = client().pipelines.list_pipelines()
    if raw:
        return _raw([_pipeline_json(p) for p in found])
    rows = []
    for p in found:
        jobs = client().pipelines.list_jobs(p.name)
        last = f"{jobs[0].state} ({jobs[0].id[:12]})" if jobs else "-"
        rows.append(
            [
                p.name,
                p.version,
                ", ".join(f"{x.repo}:{x.glob}" for x in p.spec.input.pfs_inputs()),
                p.state,
                last,
                p.spec.description,
            ]
        )
    _table(["NAME", "VERSION", "INPUT", "STATE", "LAST JOB", "DESCRIPTION"], rows)


def _pipeline_json(p: Any) -> dict[str, Any]:
    return {
        "name": p.name,
        "version": p.version,
        "state": p.state,
        "spec_dir": p.spec_dir,
        "created": p.created,
        "updated": p.updated,
        "spec": p.spec.model_dump(mode="json"),
    }


@groups["inspect"].command("pipeline")
def inspect_pipeline(name: str, raw: Raw = False) -> None:
    """Show a pipeline's spec and state."""
    p = client().pipelines.inspect_pipeline(name)
    if raw:
        return _raw(_pipeline_json(p))
    _pairs(
        {
            "Name": p.name,
            "Version": p.version,
            "State": p.state,
            "Working directory": p.spec_dir,
            "Created": _time(p.created),
            "Updated": _time(p.updated),
        }
    )
    out.print("Spec:")
    out.print(json.dumps(p.spec.model_dump(mode="json", exclude_defaults=True), indent=2))


@groups["delete"].command("pipeline")
def delete_pipeline(
    name: str, force: Annotated[bool, typer.Option("--force", "-f")] = False
) -> None:
    """Delete a pipeline, its jobs and its output repo."""
    client().delete_pipeline(name, force=force)


@groups["start"].command("pipeline")
def start_pipeline(name: str) -> None:
    """Resume a stopped pipeline (and catch up on its inputs)."""
    client().start_pipeline(name)


@groups["stop"].command("pipeline")
def stop_pipeline(name: str) -> None:
    """Pause a pipeline: new input commits wait until `start pipeline`."""
    client().stop_pipeline(name)


# -- jobs and datums -----------------------------------------------------------------------
def _job_ref(ref: str) -> tuple[str, str]:
    pipeline, sep, job = ref.partition("@")
    if not sep or not job:
        raise InvalidPath(f"{ref!r}: expected pipeline@job-id")
    return pipeline, job


def _job_json(j: JobInfo) -> dict[str, Any]:
    return {**j.__dict__, "duration": j.duration}


@groups["list"].command("job")
def list_job(
    pipeline: Annotated[str | None, typer.Option("-p", "--pipeline")] = None, raw: Raw = False
) -> None:
    """List jobs, newest first."""
    found = client().pipelines.list_jobs(pipeline)
    if raw:
        return _raw([_job_json(j) for j in found])
    _table(
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
                _time(j.started),
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
    j = client().pipelines.inspect_job(*_job_ref(ref))
    if raw:
        return _raw(_job_json(j))
    _pairs(
        {
            "Job": f"{j.pipeline}@{j.id}",
            "State": j.state,
            "Spec version": j.spec_version,
            "Inputs": ", ".join(f"{k}@{v}" for k, v in j.inputs.items()),
            "Output commit": j.output_commit or "-",
            "Started": _time(j.started),
            "Finished": _time(j.finished),
            "Duration": f"{j.duration:.2f}s" if j.duration is not None else "-",
            "Datums": f"{j.processed} processed, {j.skipped} skipped, {j.failed} failed, "
            f"{j.recovered} recovered, {j.total} total",
            "Bytes in / out": f"{_size(j.bytes_in)} / {_size(j.bytes_out)}",
            "Reason": j.reason or "-",
        }
    )


@groups["wait"].command("job")
def wait_job(
    ref: Annotated[str, typer.Argument(help="pipeline@job-id")],
    timeout: Annotated[float | None, typer.Option()] = None,
) -> None:
    """Block until a job is done; exit 1 if it did not succeed."""
    j = client().pipelines.wait_job(*_job_ref(ref), timeout=timeout)
    err.print(_job_line(j))
    if j.state != "success":
        raise typer.Exit(1)


@groups["list"].command("datum")
def list_datum(
    ref: Annotated[str, typer.Argument(help="pipeline@job-id")], raw: Raw = False
) -> None:
    """List a job's datums with their state and input files."""
    found = client().pipelines.list_datums(*_job_ref(ref))
    if raw:
        return _raw([d.__dict__ for d in found])
    _table(
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


@app.command("logs")
def logs(
    pipeline: Annotated[str, typer.Option("-p", "--pipeline")],
    job: Annotated[str | None, typer.Option("-j", "--job")] = None,
    datum: Annotated[str | None, typer.Option("-d", "--datum")] = None,
) -> None:
    """Print the logs of a pipeline's latest job, a job, or one datum."""
    for heading, text in client().pipelines.logs(pipeline, job, datum):
        out.print(Text(f"== {heading}", style="bold"))
        sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
        sys.stdout.flush()


# -- lineage and running ---------------------------------------------------------------------
def _tree(node: CommitNode, tree: Tree) -> None:
    for child in node.children:
        label = f"{child.repo}@{child.commit}" + (f"  (as {child.via})" if child.via else "")
        _tree(child, tree.add(label))


@app.command("lineage")
def lineage(
    ref: Annotated[str, typer.Argument(help="repo@commit or repo@commit:/path")], raw: Raw = False
) -> None:
    """Upstream and downstream commits, or where one output file came from."""
    result = client().lineage(ref)
    if "upstream" in result:
        if raw:
            return _raw({k: v.to_json() for k, v in result.items()})
        for direction in ("upstream", "downstream"):
            root = result[direction]
            tree = Tree(Text(f"{direction} of {root.repo}@{root.commit}", style="bold"))
            _tree(root, tree)
            if not root.children:
                tree.add("(none)")
            out.print(tree)
        return
    if raw:
        return _raw(result)
    out.print(
        f"{result['repo']}@{result['commit']}:{result['path']}  "
        f"({_size(result['size'])}, blake3 {result['hash'][:16]})"
    )
    if "origin" in result:
        out.print(f"  {result['origin']}")
        return
    out.print(f"  written by pipeline {result['pipeline']}, job {result['job']}")
    out.print(f"  datum {result['datum']}")
    out.print("  from input files:")
    for i in result["inputs"]:
        out.print(
            f"    {i['input']}: {i['repo']}@{i['commit']}:{i['path']}  "
            f"blake3 {i['hash'][:16]}  {_size(i['size'])}"
        )


@app.command("run")
def run(
    once: Annotated[bool, typer.Option("--once", help="Run what is stale, then exit.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between checks.")] = 1.0,
) -> None:
    """Keep pipelines current as commits arrive from other processes (Ctrl-C stops)."""
    c = client()
    while True:
        c.run_pipelines()
        if once:
            return
        time.sleep(interval)


def main() -> None:
    """Console entry point: run the app, turning cairn errors into one line and exit 1."""
    try:
        app()
    except CairnError as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(1)
    except TimeoutError as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        os._exit(0)
