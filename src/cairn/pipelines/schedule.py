"""Schedules of cron inputs and branch triggers, written as Pachyderm writes them.

- cron syntax: five fields (minute hour day-of-month month day-of-week), or six with
  seconds first (``*/10 * * * * *``, the form Pachyderm's examples use for seconds);
- the names ``@yearly`` (``@annually``), ``@monthly``, ``@weekly``, ``@daily``
  (``@midnight``) and ``@hourly``;
- ``@every <duration>`` (``@every 1h30m``, ``@every 10s``; see ``cairn.pipelines.units``):
  one tick per duration after the one before;
- ``never``: no tick on its own (``cairn run cron`` still ticks by hand).

Cron syntax and names are read by croniter. Times are timezone-aware; cron fields are
matched in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import croniter
from pydantic_core import PydanticCustomError

from cairn.pipelines.units import parse_duration
from cairn.storage.errors import FieldError

__all__ = ["NEVER", "Schedule", "check_schedule", "parse_schedule"]

NEVER = "never"
_EVERY = "@every"
_EXAMPLES = "e.g. '*/10 * * * *', '@daily', '@every 1h30m' or 'never'"


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: ``cron`` (an expression croniter reads, ``seconds_first`` when
    it has six fields), or ``every`` seconds, or neither (``never``)."""

    text: str
    cron: str | None = None
    seconds_first: bool = False
    every: float | None = None

    def next_after(self, moment: datetime) -> datetime | None:
        """The first tick strictly after ``moment`` (aware), or None for ``never``."""
        if self.every is not None:
            return moment + timedelta(seconds=self.every)
        if self.cron is None:
            return None
        it = croniter(self.cron, moment.astimezone(UTC), second_at_beginning=self.seconds_first)
        found: datetime = it.get_next(datetime)
        return found


def parse_schedule(text: str) -> Schedule:
    """The schedule ``text`` writes (see the module doc). Raises FieldError (a ValueError)."""
    body = text.strip()
    if body == NEVER:
        return Schedule(text)
    if body.startswith(_EVERY + " ") or body == _EVERY:
        seconds = parse_duration(body[len(_EVERY) :].strip() or "x", "spec")
        if seconds <= 0:
            raise FieldError(f"spec: {text!r} must be longer than zero", "spec")
        return Schedule(text, every=seconds)
    fields = body.split()
    seconds_first = len(fields) == 6
    if not croniter.is_valid(body, second_at_beginning=seconds_first):
        raise FieldError(f"spec: {text!r} is not a schedule; write {_EXAMPLES}", "spec")
    return Schedule(text, cron=body, seconds_first=seconds_first)


def check_schedule(text: str) -> str:
    """``text`` if it is a schedule; else a pydantic error (for spec validators)."""
    try:
        parse_schedule(text)
    except ValueError as exc:
        raise PydanticCustomError("cairn_schedule", "{reason}", {"reason": str(exc)}) from None
    return text
