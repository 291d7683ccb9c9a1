"""Cron inputs: the commits that tick a cron input's repo, as Pachyderm makes them.

Each tick is one commit on the cron repo's ``master`` holding a file named by the tick's
time in RFC 3339 form, UTC, whole seconds (``/2024-05-01T12:00:00Z``), empty; with
``overwrite`` the commit also deletes the earlier tick files, so one file is left.

When ticks are due (:func:`due_ticks`), given the time of the latest tick file in the repo:

- none yet and no ``start``: the first tick is the first scheduled time after the repo was
  made (the pipeline was created); if several are due by now, only the latest is made;
- none yet and a ``start``: every scheduled time after ``start`` up to now is made, oldest
  first, each its own commit (Pachyderm's backfill), at most ``MAX_BACKFILL`` of them (the
  latest ones);
- after a tick: the scheduled times after it up to now. When more than one is due (cairn
  was not running), only the latest is made: a missed tick is made up once, not flooded.

``never`` makes no tick on its own; :func:`tick_now` (``cairn run cron``) ticks by hand
whatever the schedule. The current time is always a parameter, so callers (and tests)
choose the clock.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

from cairn.data import DataStore, NotFound, Ref
from cairn.pipelines.schedule import parse_schedule
from cairn.pipelines.spec import CronInput

__all__ = ["MAX_BACKFILL", "due_ticks", "latest_tick", "tick_file", "tick_now", "tick_cron"]

MAX_BACKFILL = 100


def tick_file(moment: datetime) -> str:
    """The tick file's path for ``moment`` (aware): ``/YYYY-MM-DDTHH:MM:SSZ`` in UTC."""
    return moment.astimezone(UTC).strftime("/%Y-%m-%dT%H:%M:%SZ")


def _parse_tick(path: str) -> datetime | None:
    try:
        return datetime.strptime(path.strip("/"), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None  # a file someone else put there: not a tick


def latest_tick(data: DataStore, repo: str) -> datetime | None:
    """The time of the newest tick file at the head of ``repo@master``, or None."""
    try:
        paths = [path for path, _ in data.walk_files(Ref(repo, "master"))]
    except NotFound:
        return None
    ticks = [t for t in (_parse_tick(p) for p in paths) if t is not None]
    return max(ticks, default=None)


def due_ticks(
    spec: str,
    *,
    last: datetime | None,
    start: datetime | None,
    created: datetime,
    now: datetime,
) -> list[datetime]:
    """The ticks to make now, oldest first (see the module doc). ``spec`` is a schedule
    (``cairn.pipelines.schedule``); every time is aware. Raises FieldError for a bad spec."""
    schedule = parse_schedule(spec)
    backfill = last is None and start is not None
    moment = last or start or created
    ticks: list[datetime] = []
    while True:
        following = schedule.next_after(moment)
        if following is None or following > now:
            break
        ticks.append(following)
        if not backfill and len(ticks) > 1:
            ticks.pop(0)
        elif len(ticks) > MAX_BACKFILL:
            ticks.pop(0)
        moment = following
    return ticks


def _commit_tick(data: DataStore, cron: CronInput, moment: datetime) -> None:
    repo = cron.repo or cron.name
    name = tick_file(moment)
    if not cron.overwrite:
        data.put_files(repo, "master", [(name, io.BytesIO(b""))], description="cron tick")
        return
    commit = data.start_commit(repo, "master", "cron tick")
    try:
        stale = [p for p, _ in data.walk_files(Ref(repo, commit.id)) if p != name.lstrip("/")]
        if stale:
            data.delete_files(repo, commit.id, stale)
        data.put_files(repo, commit.id, [(name, io.BytesIO(b""))])
    finally:
        data.finish_commit(repo, commit.id)


def tick_cron(data: DataStore, cron: CronInput, now: datetime) -> list[datetime]:
    """Make the ticks of ``cron`` that are due at ``now`` (aware); returns them."""
    repo = cron.repo or cron.name
    created = datetime.fromtimestamp(data.inspect_repo(repo).created, UTC)
    ticks = due_ticks(
        cron.spec, last=latest_tick(data, repo), start=cron.start, created=created, now=now
    )
    for moment in ticks:
        _commit_tick(data, cron, moment)
    return ticks


def tick_now(data: DataStore, cron: CronInput, now: datetime) -> datetime:
    """Tick ``cron`` once at ``now`` whatever its schedule (``cairn run cron``)."""
    moment = now.replace(microsecond=0)
    _commit_tick(data, cron, moment)
    return moment
