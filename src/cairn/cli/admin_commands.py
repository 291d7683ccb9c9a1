"""Commands that look after the store itself: ``init``, ``gc`` and ``fsck``."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cairn.cli.output import Raw, app, client, fmt_size, out, print_json, print_table

_SHOWN_COMMITS = 3


@app.command("init")
def init() -> None:
    """Create an empty store in ./.cairn (or CAIRN_HOME); read commands need one."""
    from pathlib import Path

    from cairn.cli.output import require_embedded
    from cairn.client import HOME_DIR, Client
    from cairn.storage.config import is_home
    from cairn.storage.settings import read_settings

    require_embedded("init", "the server's store exists already")
    env = read_settings().home
    # As `git init`: here, even when a folder above holds a store.
    home = env.expanduser().resolve() if env is not None else Path.cwd().resolve() / HOME_DIR
    if is_home(home):
        out.print(f"cairn: a store exists already at {home}", soft_wrap=True)
        return
    Client(home, auto_run=False).data.catalog.dispose()  # opening creates the catalog
    out.print(f"cairn: created an empty store at {home}", soft_wrap=True)


@app.command("gc")
def gc(
    grace: Annotated[
        str,
        typer.Option(
            "--grace",
            help="Keep unreachable objects younger than this (0, 90s, 1m30s, 1h, 2d). Puts, "
            "deletes, copies and jobs running meanwhile are safe with any grace, 0 too.",
        ),
    ] = "1h",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would be removed; remove nothing.")
    ] = False,
    raw: Raw = False,
) -> None:
    """Remove chunks, packs, tree nodes and logs that no commit, branch or job reaches."""
    from cairn.pipelines.units import format_duration, parse_duration
    from cairn.storage.errors import FieldError

    try:
        seconds = parse_duration(grace, "--grace")
    except FieldError as exc:
        raise typer.BadParameter(str(exc)) from None
    report = client().store.gc(seconds, dry_run)
    if raw:
        return print_json(report.to_json())
    verb = "would remove" if dry_run else "removed"
    print_table(
        ["KIND", "OBJECTS", "BYTES"],
        [[kind, t.objects, fmt_size(t.bytes)] for kind, t in sorted(report.removed.items())],
    )
    out.print(
        f"{verb} {report.objects_removed} object(s), {fmt_size(report.bytes_removed)}; "
        f"{report.packs_rewritten} pack(s) rewritten ({fmt_size(report.bytes_written)} "
        f"written); {report.kept_young} unreachable object(s) younger than "
        f"{format_duration(seconds)} and {report.kept_pinned} pinned by writers at work kept; "
        f"{report.live_chunks} live chunk(s) in {report.seconds:.1f}s"
    )


@app.command("fsck")
def fsck(raw: Raw = False) -> None:
    """Verify every hash and reference in the store; exit 1 if anything is wrong."""
    report = client().store.fsck()
    if raw:
        print_json(report.to_json())
    else:
        if report.problems:
            print_table(
                ["KIND", "OBJECT", "DETAIL", "COMMITS"],
                [[p.kind, p.object, p.detail, _commits(p.commits)] for p in report.problems],
            )
        out.print(
            f"{len(report.problems)} problem(s); checked {report.commits} commit(s), "
            f"{report.tree_nodes} tree node(s), {report.contents} file content(s), "
            f"{report.packs} pack(s), {report.loose_chunks} loose chunk(s), "
            f"{report.index_rows} index row(s), {fmt_size(report.bytes_read)} read "
            f"in {report.seconds:.1f}s"
        )
    if report.problems:
        sys.exit(1)


def _commits(commits: tuple[str, ...]) -> str:
    if not commits:
        return "-"
    shown = ", ".join(commits[:_SHOWN_COMMITS])
    more = len(commits) - _SHOWN_COMMITS
    return f"{shown} and {more} more" if more > 0 else shown
