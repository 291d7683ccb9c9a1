"""Tests of cron inputs (cairn.pipelines.schedule, cairn.pipelines.cron, and their ticks in
Pipelines.propagate / run_cron), with the clock passed in: nothing here sleeps."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cairn.data import DataStore
from cairn.pipelines import Pipelines, PipelineSpec, SpecError
from cairn.pipelines.cron import MAX_BACKFILL, due_ticks, tick_file
from cairn.pipelines.schedule import parse_schedule
from cairn.storage.errors import FieldError

from .conftest import Recorder

MakeSpec = Callable[..., PipelineSpec]
Contents = Callable[..., dict[str, bytes]]

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
LIST_TICKS = 'ls "$CAIRN_PFS/tick" > "$CAIRN_PFS/out/ticks"; echo "$tick" > "$CAIRN_PFS/out/path"'


@pytest.mark.parametrize(
    ("spec", "after", "expected"),
    [
        ("*/10 * * * *", T0, T0 + timedelta(minutes=10)),
        ("*/10 * * * * *", T0, T0 + timedelta(seconds=10)),  # six fields: seconds first
        ("@daily", T0, datetime(2024, 5, 2, tzinfo=UTC)),
        ("@midnight", T0, datetime(2024, 5, 2, tzinfo=UTC)),
        ("@hourly", T0, T0 + timedelta(hours=1)),
        ("@weekly", T0, datetime(2024, 5, 5, tzinfo=UTC)),  # Sunday
        ("@monthly", T0, datetime(2024, 6, 1, tzinfo=UTC)),
        ("@yearly", T0, datetime(2025, 1, 1, tzinfo=UTC)),
        ("@every 1h30m", T0, T0 + timedelta(minutes=90)),
        ("@every 10s", T0, T0 + timedelta(seconds=10)),
        ("never", T0, None),
    ],
)
def test_schedules_as_pachyderm_writes_them(
    spec: str, after: datetime, expected: datetime | None
) -> None:
    assert parse_schedule(spec).next_after(after) == expected


@pytest.mark.parametrize("spec", ["", "@every", "@every 0s", "@every soon", "61 * * * *", "@often"])
def test_bad_schedules_are_refused(spec: str) -> None:
    with pytest.raises(FieldError):
        parse_schedule(spec)


def test_a_bad_schedule_in_a_spec_names_its_field(make_spec: MakeSpec) -> None:
    with pytest.raises(SpecError) as info:
        make_spec("c", {"cron": {"name": "tick", "spec": "every hour"}})
    assert info.value.field == "input.cron.spec"


def test_the_cron_repo_defaults_to_pipeline_underscore_name(make_spec: MakeSpec) -> None:
    spec = make_spec("c", {"cron": {"name": "tick", "spec": "@every 1m"}})
    assert spec.input.cron_inputs()[0].repo == "c_tick"
    assert [p.repo for p in spec.input.pfs_inputs()] == ["c_tick"]


def test_missed_ticks_are_made_up_once_not_flooded() -> None:
    last = T0
    now = T0 + timedelta(hours=5, minutes=3)
    ticks = due_ticks("*/10 * * * *", last=last, start=None, created=T0, now=now)
    assert ticks == [T0 + timedelta(hours=5)]


def test_start_in_the_past_backfills_every_tick_since() -> None:
    start = T0 - timedelta(hours=3)
    ticks = due_ticks("@hourly", last=None, start=start, created=T0, now=T0 + timedelta(minutes=1))
    assert ticks == [T0 - timedelta(hours=2), T0 - timedelta(hours=1), T0]


def test_backfill_is_bounded() -> None:
    start = T0 - timedelta(days=30)
    ticks = due_ticks("@every 1m", last=None, start=start, created=T0, now=T0)
    assert len(ticks) == MAX_BACKFILL
    assert ticks[-1] == T0


def test_start_in_the_future_skips_ticks_until_then() -> None:
    start = T0 + timedelta(days=1)
    now = T0 + timedelta(hours=5)
    assert due_ticks("@hourly", last=None, start=start, created=T0, now=now) == []


def test_never_ticks_on_its_own() -> None:
    assert due_ticks("never", last=None, start=None, created=T0, now=T0 + timedelta(days=9)) == []


def _created(data: DataStore, repo: str) -> datetime:
    return datetime.fromtimestamp(data.inspect_repo(repo).created, UTC)


def test_ticks_commit_files_and_run_the_pipeline(
    pipelines: Pipelines,
    data: DataStore,
    make_spec: MakeSpec,
    spec_dir: Path,
    contents: Contents,
    recorder: Recorder,
) -> None:
    spec = make_spec("c", {"cron": {"name": "tick", "spec": "@every 1m"}}, LIST_TICKS)
    pipelines.create_pipeline(spec, spec_dir)
    made = _created(data, "c_tick")

    assert pipelines.propagate(now=made + timedelta(seconds=30)) == []  # no tick due yet

    first = made + timedelta(minutes=1, seconds=5)
    (job,) = pipelines.propagate(recorder, now=first)
    assert job.state == "success"
    tick = tick_file(made + timedelta(minutes=1)).lstrip("/")
    assert list(contents("c_tick")) == [tick]
    assert contents("c")["ticks"].decode().split() == [tick]
    assert contents("c")["path"].endswith(b"/tick\n")  # glob "/": the whole repo
    assert any("ticked" in args[1] for args in recorder.args("note"))

    # Down for ten minutes: one tick makes them up, then the ticks accumulate.
    (job,) = pipelines.propagate(now=first + timedelta(minutes=10))
    assert len(contents("c_tick")) == 2
    assert len(contents("c")["ticks"].split()) == 2
    assert pipelines.propagate(now=first + timedelta(minutes=10, seconds=1)) == []


def test_overwrite_keeps_only_the_latest_tick(
    pipelines: Pipelines, data: DataStore, make_spec: MakeSpec, spec_dir: Path, contents: Contents
) -> None:
    cron = {"name": "tick", "spec": "@every 1m", "overwrite": True}
    pipelines.create_pipeline(make_spec("c", {"cron": cron}, LIST_TICKS), spec_dir)
    made = _created(data, "c_tick")

    pipelines.propagate(now=made + timedelta(minutes=1))
    pipelines.propagate(now=made + timedelta(minutes=2))

    assert list(contents("c_tick")) == [tick_file(made + timedelta(minutes=2)).lstrip("/")]
    assert len(data.list_commits("c_tick")) == 2


def test_start_backfills_one_commit_per_tick(
    pipelines: Pipelines, data: DataStore, make_spec: MakeSpec, spec_dir: Path, contents: Contents
) -> None:
    start = T0 - timedelta(hours=3)
    cron = {"name": "tick", "spec": "@hourly", "start": start.isoformat()}
    pipelines.create_pipeline(make_spec("c", {"cron": cron}, LIST_TICKS), spec_dir)

    pipelines.propagate(now=T0)

    assert len(data.list_commits("c_tick")) == 3
    assert len(contents("c")["ticks"].split()) == 3


def test_run_cron_ticks_by_hand_even_with_never(
    pipelines: Pipelines, make_spec: MakeSpec, spec_dir: Path, contents: Contents
) -> None:
    spec = make_spec("c", {"cron": {"name": "tick", "spec": "never"}}, LIST_TICKS)
    pipelines.create_pipeline(spec, spec_dir)

    (job,) = pipelines.run_cron("c", now=T0)

    assert job.state == "success"
    assert contents("c")["ticks"].decode().split() == [tick_file(T0).lstrip("/")]


def test_run_cron_of_a_pipeline_without_cron_is_refused(
    pipelines: Pipelines, make_spec: MakeSpec, spec_dir: Path, put: Callable[..., object]
) -> None:
    put("in", {"a": b"a"})
    pipelines.create_pipeline(make_spec("copy"), spec_dir)
    with pytest.raises(SpecError):
        pipelines.run_cron("copy", now=T0)
