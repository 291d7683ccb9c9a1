"""Tests of branch triggers (cairn.pipelines.triggers) as propagate fires them, with the
clock passed in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cairn.data import CommitInfo, DataStore, NotFound, Ref
from cairn.pipelines import Pipelines, PipelineSpec

MakeSpec = Callable[..., PipelineSpec]
Put = Callable[..., CommitInfo]
Contents = Callable[..., dict[str, bytes]]


def staged(trigger: dict[str, Any]) -> dict[str, Any]:
    """An input reading in@staging, moved there from in@master by ``trigger``."""
    return {"pfs": {"repo": "in", "branch": "staging", "glob": "/*", "trigger": trigger}}


def staging_head(data: DataStore) -> str | None:
    try:
        return data.resolve(Ref("in", "staging")).id
    except NotFound:
        return None


@pytest.fixture
def later() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=5)


def test_without_a_condition_every_commit_moves_the_branch(
    pipelines: Pipelines, make_spec: MakeSpec, spec_dir: Path, put: Put, contents: Contents
) -> None:
    put("in", {"a": b"a"})
    pipelines.create_pipeline(make_spec("copy", staged({"branch": "master"})), spec_dir)
    (job,) = pipelines.propagate()
    assert job.state == "success"
    assert contents("copy") == {"a": b"a"}


def test_commits_moves_after_that_many_commits(
    pipelines: Pipelines,
    data: DataStore,
    make_spec: MakeSpec,
    spec_dir: Path,
    put: Put,
    contents: Contents,
) -> None:
    put("in", {"a": b"a"})
    spec = make_spec("copy", staged({"branch": "master", "commits": 2}))
    pipelines.create_pipeline(spec, spec_dir)
    assert pipelines.propagate() == []
    assert staging_head(data) is None

    second = put("in", {"b": b"b"})
    (job,) = pipelines.propagate()
    assert staging_head(data) == second.id
    assert contents("copy") == {"a": b"a", "b": b"b"}

    put("in", {"c": b"c"})
    assert pipelines.propagate() == []
    assert staging_head(data) == second.id


def test_size_moves_once_enough_bytes_were_added(
    pipelines: Pipelines, data: DataStore, make_spec: MakeSpec, spec_dir: Path, put: Put
) -> None:
    put("in", {"a": b"x" * 600})
    pipelines.create_pipeline(
        make_spec("copy", staged({"branch": "master", "size": "1k"})), spec_dir
    )
    assert pipelines.propagate() == []
    big = put("in", {"b": b"y" * 600})
    pipelines.propagate()
    assert staging_head(data) == big.id


def test_cron_spec_moves_after_a_tick_and_all_needs_every_condition(
    pipelines: Pipelines,
    data: DataStore,
    make_spec: MakeSpec,
    spec_dir: Path,
    put: Put,
    later: datetime,
) -> None:
    first = put("in", {"a": b"a"})
    trigger = {"branch": "master", "cron_spec": "@hourly", "commits": 2, "all": True}
    pipelines.create_pipeline(make_spec("copy", staged(trigger)), spec_dir)

    pipelines.propagate(now=later + timedelta(hours=2))  # a tick passed, one commit only
    assert staging_head(data) is None
    second = put("in", {"b": b"b"})
    pipelines.propagate(now=later)  # two commits, no tick yet
    assert staging_head(data) is None
    pipelines.propagate(now=later + timedelta(hours=2))
    assert staging_head(data) == second.id
    assert first.id != second.id


def test_rate_limit_spec_bounds_how_often_the_branch_moves(
    pipelines: Pipelines,
    data: DataStore,
    make_spec: MakeSpec,
    spec_dir: Path,
    put: Put,
    later: datetime,
) -> None:
    first = put("in", {"a": b"a"})
    trigger = {"branch": "master", "rate_limit_spec": "@daily"}
    pipelines.create_pipeline(make_spec("copy", staged(trigger)), spec_dir)
    pipelines.propagate(now=later)
    assert staging_head(data) == first.id

    second = put("in", {"b": b"b"})
    pipelines.propagate(now=later)
    assert staging_head(data) == first.id
    pipelines.propagate(now=later + timedelta(days=1))
    assert staging_head(data) == second.id
