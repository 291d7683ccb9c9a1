"""Tests of cairn.pipelines.transactions: branch moves and commit finishes recorded, then
made at once, so the jobs that follow see them together."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest

from cairn.data import AlreadyExists, CommitStateError, DataStore, NotFound, Ref
from cairn.pipelines import Pipelines, PipelineSpec
from cairn.pipelines.transactions import RequestKind, Transactions

BOTH = 'cat "$CAIRN_PFS/a/x" "$CAIRN_PFS/b/x" > "$CAIRN_PFS/out/both"'


@pytest.fixture
def both(
    pipelines: Pipelines,
    spec_dir: object,
    make_spec: Callable[..., PipelineSpec],
    put: Callable[..., object],
) -> Pipelines:
    """Repos a and b (``x`` = a1, b1 on master; a2, b2 on dev) and a pipeline ``both``
    concatenating them, current for master."""
    for repo in ("a", "b"):
        put(repo, {"x": f"{repo}1".encode()})
        put(repo, {"x": f"{repo}2".encode()}, "dev")
    cross = {"cross": [{"pfs": {"repo": r, "glob": "/"}} for r in ("a", "b")]}
    pipelines.create_pipeline(make_spec("both", cross, BOTH), spec_dir)  # type: ignore[arg-type]
    [job] = pipelines.propagate()
    assert job.state == "success", job.reason
    return pipelines


def output(data: DataStore) -> bytes:
    return b"".join(data.read_file(Ref("both", path="both")))


def test_branch_moves_in_a_transaction_reach_the_pipeline_together(
    both: Pipelines, data: DataStore
) -> None:
    tx = Transactions(both)
    started = tx.start()
    tx.create_branch("a", "master", "dev")
    # a runner's round between two changes: nothing changed yet, so no job sees half
    assert both.propagate() == []
    tx.create_branch("b", "master", "dev")
    assert both.propagate() == []
    assert data.inspect_branch("a", "master").head != data.inspect_branch("a", "dev").head

    finished = tx.finish()
    jobs = both.propagate()

    assert finished.id == started.id and finished.state == "finished"
    assert [r.kind for r in finished.requests] == [RequestKind.CREATE_BRANCH] * 2
    assert [(j.pipeline, j.state) for j in jobs] == [("both", "success")]
    assert output(data) == b"a2b2"
    assert tx.active() is None


def test_commit_finishes_in_a_transaction_are_made_at_finish(
    both: Pipelines, data: DataStore
) -> None:
    for repo in ("a", "b"):
        data.start_commit(repo, "master")
        data.put_files(repo, "master", [("x", io.BytesIO(f"{repo}3".encode()))])
    tx = Transactions(both)
    tx.start()
    tx.finish_commit("a", "master")
    tx.finish_commit("b", "master")
    assert data.inspect_commit("a", "master").state == "open"

    tx.finish()
    jobs = both.propagate()

    assert [j.state for j in jobs] == ["success"]
    assert output(data) == b"a3b3"


def test_a_deleted_transaction_changes_nothing(both: Pipelines, data: DataStore) -> None:
    tx = Transactions(both)
    head = data.inspect_branch("a", "master").head
    tx.start()
    tx.create_branch("a", "master", "dev")
    tx.delete_branch("b", "dev")

    tx.delete()

    assert tx.list() == []
    assert data.inspect_branch("a", "master").head == head
    assert data.inspect_branch("b", "dev").head is not None
    with pytest.raises(NotFound):
        tx.finish()


def test_mistakes_fail_when_recorded(both: Pipelines) -> None:
    tx = Transactions(both)
    with pytest.raises(NotFound):  # no transaction open
        tx.create_branch("a", "master", "dev")
    tx.start()
    with pytest.raises(AlreadyExists):
        tx.start()
    with pytest.raises(NotFound):
        tx.create_branch("a", "master", "nowhere")
    with pytest.raises(CommitStateError):
        tx.finish_commit("a", "master")
    assert tx.active() is not None and tx.active().requests == ()  # type: ignore[union-attr]
