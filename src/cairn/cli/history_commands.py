"""Commands over what jobs and commits left behind: ``reproduce`` (a finished job run again
and compared byte for byte), and pachctl's verbs over history: ``stop job``,
``delete job``, ``inspect datum``, ``subscribe commit``."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from cairn.cli.output import Raw, app, client, err, print_json, print_table

__all__: list[str] = []

JobRef = Annotated[str, typer.Argument(help="pipeline@job-id")]


def _job_ref(ref: str) -> str:
    from cairn.data import InvalidPath

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
