"""Tests of cairn.pipelines.lineage: commit lineage (upstream provenance and downstream
subvenance trees) and file lineage (the job, datum and exact input files behind one output
file), over a two-step DAG ``in -> upper -> copy`` run in-process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cairn.data import CommitInfo, DataStore, FileEntry, InvalidPath, NotFound, Ref, parse_ref
from cairn.pipelines import Pipelines, PipelineSpec, commit_lineage, file_lineage

UPPER = (
    'cd "$CAIRN_PFS/in" && find . -type f | while read -r f; do'
    ' mkdir -p "$CAIRN_PFS/out/$(dirname "$f")"; tr a-z A-Z < "$f" > "$CAIRN_PFS/out/$f"; done'
)


@pytest.fixture
def dag(
    pipelines: Pipelines,
    make_spec: Callable[..., PipelineSpec],
    put: Callable[..., CommitInfo],
    spec_dir: Path,
) -> CommitInfo:
    """``in`` -> ``upper`` (upper-cases) -> ``copy``, run once; returns the input commit."""
    commit = put("in", {"a.txt": b"alpha", "dir/b.txt": b"beta"})
    pipelines.create_pipelines(
        [make_spec("upper", cmd=UPPER), make_spec("copy", "upper")], spec_dir
    )
    assert [j.state for j in pipelines.propagate()] == ["success", "success"]
    return commit


def shape(node: Any) -> tuple[Any, ...]:
    """(repo, commit, via, deleted, children) of a lineage tree, for comparison."""
    return (node.repo, node.commit, node.via, node.deleted, [shape(c) for c in node.children])


# -- commit lineage ----------------------------------------------------------------------------
def test_commit_lineage_upstream_follows_provenance_to_the_input(
    data: DataStore, dag: CommitInfo
) -> None:
    tree = commit_lineage(data, Ref("copy"))

    cid = dag.id  # jobs of one cause share the id of the input commit
    assert shape(tree["upstream"]) == (
        "copy",
        cid,
        "",
        False,
        [("upper", cid, "upper", False, [("in", cid, "in", False, [])])],
    )
    assert shape(tree["downstream"]) == ("copy", cid, "", False, [])


def test_commit_lineage_downstream_follows_subvenance_to_the_end(
    data: DataStore, dag: CommitInfo
) -> None:
    tree = commit_lineage(data, Ref("in"))

    cid = dag.id
    assert shape(tree["downstream"]) == (
        "in",
        cid,
        "",
        False,
        [("upper", cid, "in", False, [("copy", cid, "upper", False, [])])],
    )
    assert shape(tree["upstream"]) == ("in", cid, "", False, [])
    assert tree["downstream"].to_json()["children"][0]["repo"] == "upper"


def test_commit_lineage_stops_at_depth(data: DataStore, dag: CommitInfo) -> None:
    tree = commit_lineage(data, Ref("copy"), depth=1)

    assert shape(tree["upstream"]) == (
        "copy",
        dag.id,
        "",
        False,
        [("upper", dag.id, "upper", False, [])],
    )


def test_commit_lineage_marks_a_deleted_input_repo(data: DataStore, dag: CommitInfo) -> None:
    data.delete_repo("in")

    tree = commit_lineage(data, Ref("upper"))

    [node] = tree["upstream"].children
    assert (node.repo, node.commit, node.deleted, node.children) == ("in", dag.id, True, [])
    assert tree["upstream"].to_json()["children"][0]["deleted"] is True


def test_commit_lineage_of_a_missing_commit_is_not_found(data: DataStore, dag: CommitInfo) -> None:
    with pytest.raises(NotFound):
        commit_lineage(data, Ref("upper", "0" * 32))


# -- file lineage ------------------------------------------------------------------------------
def file_hash(data: DataStore, ref: str) -> str:
    ref_ = parse_ref(ref)
    entry = data.trees.lookup(data.resolve(ref_).tree, ref_.path or "")
    assert isinstance(entry, FileEntry)
    return entry.hash


def test_file_lineage_names_the_job_datum_and_exact_inputs(
    data: DataStore, pipelines: Pipelines, dag: CommitInfo
) -> None:
    found = file_lineage(data, pipelines, parse_ref("upper@master:/dir/b.txt"))

    [job] = pipelines.list_jobs("upper")
    [datum] = [d for d in pipelines.list_datums("upper", job.id) if d.id == found["datum"]]
    assert found["pipeline"] == "upper"
    assert found["job"] == job.id
    assert found["datum_hash"] == datum.hash
    assert found["path"] == "/dir/b.txt"
    assert found["hash"] == file_hash(data, "upper@master:/dir/b.txt")
    assert found["size"] == 4
    [source] = found["inputs"]
    assert (source["repo"], source["commit"], source["path"]) == ("in", dag.id, "/dir/b.txt")
    assert source["hash"] == file_hash(data, "in@master:/dir/b.txt")
    assert source["hash"] != found["hash"]  # the transform changed the content


def test_file_lineage_through_the_second_step_names_the_first_steps_output(
    data: DataStore, pipelines: Pipelines, dag: CommitInfo
) -> None:
    found = file_lineage(data, pipelines, parse_ref("copy@master:/a.txt"))

    [source] = found["inputs"]
    assert (source["repo"], source["path"]) == ("upper", "/a.txt")
    assert source["hash"] == file_hash(data, "upper@master:/a.txt") == found["hash"]


def test_file_lineage_of_a_user_file_gives_its_origin(
    data: DataStore, pipelines: Pipelines, dag: CommitInfo
) -> None:
    found = file_lineage(data, pipelines, parse_ref("in@master:/a.txt"))

    assert found["origin"]
    assert "pipeline" not in found
    assert found["hash"] == file_hash(data, "in@master:/a.txt")


def test_file_lineage_of_a_folder_is_invalid(
    data: DataStore, pipelines: Pipelines, dag: CommitInfo
) -> None:
    with pytest.raises(InvalidPath):
        file_lineage(data, pipelines, parse_ref("upper@master:/dir"))


def test_file_lineage_of_a_missing_path_is_not_found(
    data: DataStore, pipelines: Pipelines, dag: CommitInfo
) -> None:
    with pytest.raises(NotFound):
        file_lineage(data, pipelines, parse_ref("upper@master:/nope.txt"))


def test_file_lineage_of_an_old_commit_names_the_job_of_that_commit(
    data: DataStore,
    pipelines: Pipelines,
    make_spec: Callable[..., PipelineSpec],
    put: Callable[..., CommitInfo],
    spec_dir: Path,
) -> None:
    put("in", {"a.txt": b"a"})
    pipelines.create_pipeline(make_spec("every", reprocess_spec="every_job"), spec_dir)
    [first] = pipelines.propagate()
    put("in", {"b.txt": b"b"})
    [second] = pipelines.propagate()

    old = file_lineage(data, pipelines, Ref("every", first.id, path="a.txt"))
    new = file_lineage(data, pipelines, Ref("every", second.id, path="a.txt"))

    assert (old["job"], new["job"]) == (first.id, second.id)
    assert old["datum_hash"] == new["datum_hash"]


def test_file_lineage_of_a_kept_output_names_the_job_that_wrote_it(
    data: DataStore,
    pipelines: Pipelines,
    dag: CommitInfo,
    put: Callable[..., CommitInfo],
) -> None:
    [first] = pipelines.list_jobs("upper")
    put("in", {"c.txt": b"gamma"})
    pipelines.propagate()

    found = file_lineage(data, pipelines, parse_ref("upper@master:/a.txt"))

    assert found["job"] == first.id
