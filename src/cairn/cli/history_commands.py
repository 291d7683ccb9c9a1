"""Commands over what jobs and commits left behind: ``reproduce`` (a finished job run again
and compared byte for byte), and pachctl's verbs over history: ``stop job``,
``delete job``, ``inspect datum``, ``restart datum``, ``subscribe commit``, ``delete
commit``, ``squash commit``, and ``extract`` / ``restore`` (a whole store in one file)."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from cairn.cli.output import (
    Raw,
    app,
    client,
    err,
    fmt_size,
    fmt_time,
    groups,
    out,
    print_json,
    print_pairs,
    print_table,
)
from cairn.data import InvalidPath, NotFound

__all__: list[str] = []

JobRef = Annotated[str, typer.Argument(help="pipeline@job-id")]


def _job_ref(ref: str) -> str:
    _, sep, job = ref.partition("@")
    if not sep or not job:
        raise InvalidPath(f"{ref!r}: expected pipeline@job-id")
    return ref


@app.command("reproduce")
def reproduce(
    ref: JobRef,
    datum: Annotated[
        str | None, typer.Option("--datum", help="Only the datum whose id starts with this.")
    ] = None,
    raw: Raw = False,
) -> None:
    """Run a finished job's datums again into scratch from its recorded inputs, spec version
    and code; report each output file identical (BLAKE3) or not, and how the environment
    changed. Exit 0 only when every file is identical; nothing is committed."""
    r = client().jobs.reproduce(_job_ref(ref), datum=datum)
    if raw:
        print_json({**dataclasses.asdict(r), "identical": r.identical})
    else:
        for note in r.notes:
            err.print(f"note: {note}")
        print_table(
            ["FILE", "RESULT", "RECORDED", "REPRODUCED"],
            [
                [f.path, f.state, (f.recorded or "-")[:16], (f.reproduced or "-")[:16]]
                for f in r.files
            ],
        )
        for failure in r.failures:
            err.print(f"failed: {failure}")
        if r.environment:
            err.print("environment changed since the job ran:")
            for c in r.environment:
                err.print(f"  {c.key}: {c.recorded} -> {c.present}")
        else:
            err.print("environment: as recorded")
        same = sum(f.state == "identical" for f in r.files)
        verdict = "reproduced byte for byte" if r.identical else "NOT reproduced"
        err.print(
            f"{r.pipeline}@{r.job}: {verdict}: {same} of {len(r.files)} files identical "
            f"over {r.datums} datum(s) (spec version {r.spec_version})"
        )
    if not r.identical:
        raise typer.Exit(1)


def _commit_lines(verb: str, commits: list[Any]) -> None:
    for c in commits:
        err.print(f"{verb} {c.repo}@{c.id}")


@groups["delete"].command("commit")
def delete_commit(ref: Annotated[str, typer.Argument(help="repo@commit (a branch head)")]) -> None:
    """Delete a commit no commit has as parent, and the commits pipelines made from it (with
    their jobs), as pachctl delete commit: branches at them move to their parents."""
    _commit_lines("deleted", client().commits.delete(ref))


@groups["squash"].command("commit")
def squash_commit(ref: Annotated[str, typer.Argument(help="repo@commit (not a head)")]) -> None:
    """Remove a commit from inside its history, with the commits pipelines made from it, as
    pachctl squash commit: its children take its parent and keep their own data."""
    _commit_lines("squashed", client().commits.squash(ref))


@groups["subscribe"].command("commit")
def subscribe_commit(
    ref: Annotated[str, typer.Argument(help="repo@branch")],
    new: Annotated[bool, typer.Option("--new", help="Only commits made from now on.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between looks.")] = 0.5,
    raw: Raw = False,
) -> None:
    """Print each commit of a branch as it is finished, oldest first (with --new only those
    made from now on), until interrupted (Ctrl-C)."""
    commits = client().commits
    repo, _, branch = ref.partition("@")
    branch = branch or "master"
    seen: set[str] = set()
    first = True
    try:
        while True:
            try:
                found = commits.list(f"{repo}@{branch}")
            except NotFound:
                if first:
                    commits.list(repo)  # the repo exists: the branch may come later
                found = []
            fresh = [c for c in reversed(found) if c.id not in seen and c.finished]
            for c in fresh:
                seen.add(c.id)
                if first and new:
                    continue
                if raw:
                    print_json(
                        {"repo": c.repo, "id": c.id, "branch": branch, "finished": c.finished}
                    )
                else:
                    out.print(f"{c.repo}@{c.id}\t{branch}\t{fmt_time(c.finished)}\t{c.description}")
            sys.stdout.flush()
            first = False
            time.sleep(interval)
    except KeyboardInterrupt:
        return


@groups["stop"].command("job")
def stop_job(ref: JobRef) -> None:
    """End a running job: it fails as stopped, writes no output, starts no more datums."""
    j = client().jobs.stop(_job_ref(ref))
    err.print(f"stopped job {j.pipeline}@{j.id}")


@groups["delete"].command("job")
def delete_job(ref: JobRef) -> None:
    """Delete a finished job's records and logs, and its output commit with what pipelines
    made from it (delete commit's rules)."""
    client().jobs.delete(_job_ref(ref))
    err.print(f"deleted job {ref}")


@groups["inspect"].command("datum")
def inspect_datum(
    ref: JobRef,
    datum: Annotated[str, typer.Argument(help="datum id or a unique prefix")],
    raw: Raw = False,
) -> None:
    """Show one datum of a job: state, attempts, exit code, duration, bytes, input files,
    the node it ran on."""
    found = [d for d in client().jobs.datums(_job_ref(ref)) if d.id.startswith(datum)]
    if len(found) != 1:
        raise NotFound(
            f"job {ref} has " + (f"no datum {datum!r}" if not found else f"several datums {datum}…")
        )
    d = found[0]
    if raw:
        return print_json(dataclasses.asdict(d))
    print_pairs(
        {
            "Datum": d.id,
            "Job": f"{d.pipeline}@{d.job}",
            "State": d.state,
            "Hash": d.hash,
            "Attempts": d.attempts,
            "Exit code": "-" if d.exit_code is None else d.exit_code,
            "Duration": f"{d.duration:.2f}s",
            "Bytes in / out": f"{fmt_size(d.bytes_in)} / {fmt_size(d.bytes_out)}",
            "Error": d.error or "-",
            "Inputs": ", ".join(f"{i['input']}:{i['path']}" for i in d.inputs) or "-",
            "Node": d.node or "-",
            "Environment": d.environment or "-",
        }
    )


@groups["restart"].command("datum")
def restart_datum(
    ref: JobRef,
    datum: Annotated[str, typer.Argument(help="datum id or a unique prefix")],
    raw: Raw = False,
) -> None:
    """Run a failed job's failed datum once more with the pipeline's current code over the
    job's inputs; once none of its datums is failed, the pipeline runs those inputs again."""
    d = client(wait=True).jobs.restart_datum(_job_ref(ref), datum)
    if raw:
        print_json(dataclasses.asdict(d))
    else:
        err.print(
            f"datum {d.id[:12]} of {d.pipeline}@{d.job}: {d.state}"
            + (f": {d.error}" if d.error else "")
        )
    if d.state == "failed":
        raise typer.Exit(1)


def _remote_transport() -> Any:
    """The transport of the remote client, or None when the store is embedded."""
    found = client()
    return getattr(found, "transport", None)


@app.command("extract")
def extract(
    file: Annotated[Path, typer.Option("-o", "--output", help="The file to write (- stdout).")],
) -> None:
    """Write the whole store (catalog rows and objects) to one file, as pachctl extract; a
    deterministic tar.gz (cairn.data.archive) that restore loads into an empty store."""
    from cairn.data.archive import extract_store

    sink = sys.stdout.buffer if str(file) == "-" else open(file, "wb")  # noqa: SIM115
    try:
        transport = _remote_transport()
        if transport is not None:  # a server's store, for a clusterAdmin
            from cairn.api.remote.client import check

            with transport.http.stream("GET", "/api/v1/store/extract") as response:
                check(response)
                size = 0
                for piece in response.iter_bytes(1 << 20):
                    sink.write(piece)
                    size += len(piece)
            err.print(f"extracted the server's store ({fmt_size(size)})")
            return
        data = client().data  # type: ignore[attr-defined]
        counts = extract_store(data.catalog, data.chunks.objects, sink)
    finally:
        if sink is not sys.stdout.buffer:
            sink.close()
    err.print(
        f"extracted {counts['rows']} catalog row(s) and {counts['objects']} object(s) "
        f"({fmt_size(counts['bytes'])})"
    )


@app.command("restore")
def restore(
    file: Annotated[Path, typer.Option("-i", "--input", help="An extract file (- stdin).")],
) -> None:
    """Load a file written by extract into this store, which must be empty (cairn init),
    as pachctl restore."""
    from cairn.data.archive import restore_store

    source = sys.stdin.buffer if str(file) == "-" else open(file, "rb")  # noqa: SIM115
    try:
        transport = _remote_transport()
        if transport is not None:
            counts = transport.request(
                "POST", "/api/v1/store/restore", content=iter(lambda: source.read(1 << 20), b"")
            ).json()
        else:
            data = client().data  # type: ignore[attr-defined]
            counts = restore_store(data.catalog, data.chunks.objects, source)
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    err.print(
        f"restored {counts['rows']} catalog row(s) and {counts['objects']} object(s) "
        f"({fmt_size(counts['bytes'])})"
    )
