"""Branch triggers (``input.pfs.trigger``): move an input branch to the head of another
branch of its repo when a condition holds, as Pachyderm's triggers do.

For an input reading ``repo@branch`` with ``trigger.branch`` = ``source``, when the head
of ``source`` is not the head of ``branch``, the conditions are measured since the head of
``branch`` (or since the first commit, while ``branch`` has none):

- ``commits``: at least this many commits on ``source`` since then;
- ``size``: at least this many bytes added (the size of ``source``'s head minus that of
  ``branch``'s head);
- ``cron_spec``: a tick of this schedule has passed since ``branch``'s head was made;
- ``rate_limit_spec``: the same test, as a bound: no move before the next tick of it.

With ``all``, every condition set must hold, else any one; with none set, every new
commit on ``source`` moves ``branch``. ``rate_limit_spec`` always applies. The current
time is a parameter.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cairn.data import CommitInfo, DataStore, NotFound, Ref
from cairn.pipelines.schedule import parse_schedule
from cairn.pipelines.spec import PFSInput, Trigger

__all__ = ["fire_trigger", "trigger_holds"]


def _commits_since(data: DataStore, repo: str, head: CommitInfo, stop: str | None) -> int:
    count = 0
    current: CommitInfo | None = head
    while current is not None and current.id != stop:
        count += 1
        current = data.resolve(Ref(repo, current.parent)) if current.parent else None
    return count


def _ticked(spec: str, since: float, now: datetime) -> bool:
    following = parse_schedule(spec).next_after(datetime.fromtimestamp(since, UTC))
    return following is not None and following <= now


def trigger_holds(
    data: DataStore,
    repo: str,
    trigger: Trigger,
    source: CommitInfo,
    target: CommitInfo | None,
    now: datetime,
) -> bool:
    """Whether ``trigger`` moves the branch at ``target`` (None: no commit yet) to
    ``source`` at ``now`` (see the module doc)."""
    since = target.created if target is not None else None
    if trigger.rate_limit_spec and since is not None:
        if not _ticked(trigger.rate_limit_spec, since, now):
            return False
    tests: list[bool] = []
    if trigger.commits is not None:
        stop = target.id if target is not None else None
        tests.append(_commits_since(data, repo, source, stop) >= trigger.commits)
    if trigger.size is not None:
        tests.append(source.size - (target.size if target else 0) >= trigger.size)
    if trigger.cron_spec:
        start = since if since is not None else source.created
        tests.append(_ticked(trigger.cron_spec, start, now))
    if not tests:
        return True
    return all(tests) if trigger.all else any(tests)


def fire_trigger(data: DataStore, pfs: PFSInput, now: datetime) -> bool:
    """Move ``pfs.branch`` to the head of ``pfs.trigger.branch`` if its trigger holds at
    ``now``; True when it moved. Nothing happens while the source has no finished head."""
    trigger = pfs.trigger
    if trigger is None:
        return False
    try:
        source = data.resolve(Ref(pfs.repo, trigger.branch))
    except NotFound:
        return False
    if not source.finished_ok:
        return False
    try:
        target: CommitInfo | None = data.resolve(Ref(pfs.repo, pfs.branch))
    except NotFound:
        target = None
    if target is not None and target.id == source.id:
        return False
    if not trigger_holds(data, pfs.repo, trigger, source, target, now):
        return False
    data.create_branch(pfs.repo, pfs.branch, source.id)
    return True
