"""What every command shares: the app and its verb groups (defined in ``cairn.cli.root``),
output helpers, job progress, and the client the commands call: remote over a ``cairn
server`` when ``$CAIRN_URL`` or the active saved context names one, else embedded
(cairn.client.connect)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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

from cairn.cli.root import app, groups, output_format, verb
from cairn.cli.text import printable, printable_lines
from cairn.data import NotFound
from cairn.pipelines import DatumInfo, JobInfo, Reporter
from cairn.storage.errors import ConfigError
from cairn.storage.settings import read_settings

if TYPE_CHECKING:
    from cairn.api.protocol import ClientProtocol
    from cairn.client import Client

__all__ = [
    "ByteProgress",
    "CliReporter",
    "Raw",
    "app",
    "byte_progress",
    "client",
    "CREATING_VERBS",
    "embedded",
    "err",
    "fail_on_jobs",
    "waits",
    "require_embedded",
    "store_home",
    "fmt_size",
    "fmt_time",
    "groups",
    "job_line",
    "out",
    "printable",
    "printable_lines",
    "print_json",
    "print_pairs",
    "print_table",
]

out = Console(highlight=False, markup=False, width=None if sys.stdout.isatty() else 400)
err = Console(
    stderr=True, highlight=False, markup=False, width=None if sys.stderr.isatty() else 400
)

Raw = Annotated[bool, typer.Option("--raw", help="Print JSON instead of a table.")]


# -- output helpers ------------------------------------------------------------------------
def fmt_time(t: float | None) -> str:
    return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S") if t else "-"


def fmt_size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def print_json(obj: Any) -> None:
    """``obj`` as indented JSON, or as YAML when the command was given ``-o yaml``."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=str)
    if output_format() == "yaml":
        import yaml

        text = yaml.safe_dump(json.loads(text), sort_keys=True, allow_unicode=True).rstrip()
    print(text)


def print_table(columns: list[str], rows: list[list[Any]]) -> None:
    """Rows under column headings; every cell goes through ``printable``."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*[printable(str(v)) for v in row])
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
        err.print(job_line(job))

    def note(self, pipeline: str, message: str) -> None:
        if message not in self.noted:
            self.noted.add(message)
            err.print(f"{pipeline}: note: {message}")


def job_line(job: JobInfo) -> str:
    took = f" in {job.duration:.1f}s" if job.duration is not None else ""
    line = (
        f"{job.pipeline}: job {job.id[:12]} {job.state}{took}: {job.processed} processed, "
        f"{job.skipped} skipped, {job.failed} failed, {job.recovered} recovered "
        f"of {job.total} datum(s)"
    )
    if job.reason:
        line += f"\n  {job.reason}"
    return line


_client: ClientProtocol | None = None
_waiting = True


# The verbs whose commands write: in a folder without a store, these (and `cairn init`)
# create one; any other command fails there instead of leaving an empty store behind.
CREATING_VERBS = frozenset({"init", "create", "put", "start"})


def store_home() -> Path:
    """The embedded store's folder for the command running: the one ``find_home`` finds,
    created (and said so) only for a verb of ``CREATING_VERBS``. Raises NotFound naming
    where cairn looked when no store exists and the command only reads."""
    from cairn.client import find_home

    home, exists = find_home()
    if exists:
        return home
    if verb() not in CREATING_VERBS:
        env = read_settings().home
        where = (
            f"{home} (CAIRN_HOME)"
            if env is not None
            else f"{home.parent} and its parents (a .cairn folder; CAIRN_HOME is unset)"
        )
        raise NotFound(
            f"no cairn store: looked in {where}; `cairn init` creates one there, "
            "or set CAIRN_HOME or CAIRN_URL"
        )
    err.print(f"cairn: using a new store at {home}")
    return home


def client(*, wait: bool = True) -> ClientProtocol:
    """The client every command calls, opened on first use (see the module doc and
    ``store_home``: only a writing command creates an embedded store). ``wait=False``
    (a command's ``--no-wait``, given before its first call) leaves the pipelines its
    writes trigger to ``cairn run`` or the server's worker, as ``CAIRN_AUTO_RUN=0``."""
    global _client, _waiting
    if _client is None:
        _waiting = wait
        auto_run = None if wait else False
        settings = read_settings()
        if settings.url is not None:
            # connect's remote case without importing cairn.client, which loads the
            # embedded stack (SQLAlchemy, the pipeline service) every command would pay for
            from cairn.api.remote.client import RemoteClient

            _client = RemoteClient(settings.url, settings.token, auto_run=auto_run)
        else:
            from cairn.client import connect

            _client = connect(home=store_home(), reporter=CliReporter(), auto_run=auto_run)
    return _client


def waits() -> bool:
    """Whether the client runs (embedded) or waits for (remote) the jobs its writes
    trigger: not with ``CAIRN_AUTO_RUN=0`` or ``--no-wait`` (``client(wait=False)``)."""
    return _waiting and read_settings().auto_run


def fail_on_jobs(jobs: list[JobInfo]) -> None:
    """Raise PipelineError naming the jobs of ``jobs`` that did not succeed (as ``dvc
    repro`` exits non-zero when a stage fails); nothing when all succeeded."""
    from cairn.pipelines import JobState, PipelineError

    failed = [j for j in jobs if j.state != JobState.SUCCESS]
    if failed:
        names = ", ".join(f"{j.pipeline}@{j.id} {j.state}" for j in failed)
        raise PipelineError(f"job {names}: {failed[0].reason or 'see cairn logs'}")


def require_embedded(command: str, why: str) -> None:
    """Refuse a command that needs the store in this process when the CLI talks to a
    server. Raises ConfigError naming the server (``why``: what the user can do instead)."""
    url = read_settings().url
    if url is not None:
        raise ConfigError(
            f"cairn {command} needs the store in this process, not the cairn server at "
            f"{url}: {why}",
            "url",
        )


def embedded(command: str, why: str) -> Client:
    """The embedded Client, for a command that needs the store in this process. Raises
    ConfigError as ``require_embedded``."""
    from cairn.client import Client

    require_embedded(command, why)
    found = client()
    assert isinstance(found, Client)  # no URL: connect opened the embedded store
    return found


def print_pairs(values: dict[str, Any]) -> None:
    """``Key: value`` lines, aligned; values go through ``printable_lines`` (a job's
    reason keeps its lines), so a caller passes a path through ``printable``."""
    width = max(len(k) for k in values)
    for key, value in values.items():
        out.print(f"{key + ':':<{width + 1}} {printable_lines(str(value))}")


class ByteProgress:
    """A byte progress bar on a terminal, or one plain line on stderr when it stops.

    ``advance(n)`` after each piece; ``stop()`` ends it (idempotent), so a put can close its
    bar before the pipelines it triggers open theirs.
    """

    def __init__(self, total: int | None, label: str) -> None:
        self.total, self.label, self.done = total, label, 0
        self.started = time.monotonic()
        self.stopped = False
        self.progress: Progress | None = None
        if err.is_terminal:
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                console=err,
                transient=True,
            )
            self.task = self.progress.add_task(label, total=total)
            self.progress.start()

    def plan(self, total: int | None, count: int) -> None:
        """Set the total bytes (None: unknown, as for stdin) and how many files are coming."""
        self.total = total
        self.label = f"{self.label} {count} file(s)" if total is not None else f"{self.label} stdin"
        if self.progress is not None:
            self.progress.update(self.task, total=total, description=self.label)

    def advance(self, n: int) -> None:
        self.done += n
        if self.progress is not None:
            self.progress.advance(self.task, n)

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        if self.progress is not None:
            self.progress.stop()
        else:
            took = time.monotonic() - self.started
            err.print(f"{self.label}: {fmt_size(self.done)} in {took:.1f}s")


@contextmanager
def byte_progress(total: int | None, label: str) -> Iterator[ByteProgress]:
    """A ByteProgress that stops when the block ends."""
    bar = ByteProgress(total, label)
    try:
        yield bar
    finally:
        bar.stop()
