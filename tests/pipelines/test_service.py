"""Tests of cairn.pipelines.service (create / update / delete, propagate), and of the jobs it
runs and records (cairn.pipelines.jobs, cairn.pipelines.history): output commits, datum
reuse, provenance and job history. Everything runs in-process on the host."""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from pathlib import Path

import blake3
import pytest
from sqlalchemy import insert, select

from cairn.catalog.schema import datums as datums_table
from cairn.catalog.schema import jobs as jobs_table
from cairn.catalog.schema import pipeline_versions as versions_table
from cairn.catalog.schema import pipelines as pipelines_table
from cairn.data import (
    AlreadyExists,
    CommitInfo,
    DataStore,
    FileEntry,
    NotFound,
    Provenance,
    Ref,
    RepoInUse,
)
from cairn.pipelines import JobInfo, Pipelines, PipelineSpec, Reporter, SpecError
from cairn.pipelines.datums import canonical_hash
from cairn.pipelines.environment import environment_fingerprint
from cairn.pipelines.errors import PipelineError, UnreadableSpec
from cairn.pipelines.models import DatumState
from cairn.pipelines.secret_store import SecretStore
from cairn.pipelines.spec import MAX_SPEC_BYTES

from .conftest import Recorder

MakeSpec = Callable[..., PipelineSpec]
Put = Callable[..., CommitInfo]
Contents = Callable[..., dict[str, bytes]]
Entries = Callable[..., dict[str, FileEntry]]

# Fails the datum whose input file is named bad.txt, after copying like COPY would.
FAIL_ON_BAD = 'cp -r "$CAIRN_PFS/in/." "$CAIRN_PFS/out/"; ! ls "$CAIRN_PFS/in" | grep -qx bad.txt'


def states(ran: list[JobInfo]) -> list[tuple[str, str]]:
    return [(j.pipeline, j.state) for j in ran]


# -- create / update / delete ------------------------------------------------------------------
def test_create_pipeline_makes_a_pipeline_repo_and_a_running_pipeline(
    pipelines: Pipelines, data: DataStore, make_spec: MakeSpec, put: Put, spec_dir: Path
) -> None:
    put("in", {"a.txt": b"a"})

    info = pipelines.create_pipeline(make_spec("copy"), spec_dir)

    assert (info.name, info.version, info.state, info.input_repos) == (
        "copy",
        1,
        "running",
        ["in"],
    )
    assert info.spec_dir == str(spec_dir.resolve())
    assert data.inspect_repo("copy").type == "pipeline"
    with pytest.raises(AlreadyExists):
        pipelines.create_pipeline(make_spec("copy"), spec_dir)
    with pytest.raises(NotFound):
        pipelines.create_pipeline(make_spec("other"), spec_dir, update=True)
    with pytest.raises(NotFound):
        pipelines.create_pipeline(make_spec("reads-nothing", "missing"), spec_dir)


def test_update_keeps_the_salt_and_reprocess_draws_a_new_one(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path
) -> None:
    put("in", {"a.txt": b"a"})
    first = pipelines.create_pipeline(make_spec("copy"), spec_dir)

    updated = pipelines.create_pipeline(make_spec("copy", cmd="true"), spec_dir, update=True)
    reprocessed = pipelines.create_pipeline(
        make_spec("copy"), spec_dir, update=True, reprocess=True
    )

    assert (updated.version, updated.salt) == (2, first.salt)
    assert reprocessed.version == 3
    assert reprocessed.salt != first.salt


@pytest.mark.parametrize("bad", ["missing-input", "user-repo-name", "existing-pipeline"])
def test_create_pipelines_is_all_or_none(
    pipelines: Pipelines,
    data: DataStore,
    make_spec: MakeSpec,
    put: Put,
    spec_dir: Path,
    bad: str,
) -> None:
    put("in", {"a.txt": b"a"})
    data.create_repo("taken")
    pipelines.create_pipeline(make_spec("old"), spec_dir)
    second, error = {
        "missing-input": (make_spec("second", "missing"), NotFound),
        "user-repo-name": (make_spec("taken"), SpecError),
        "existing-pipeline": (make_spec("old"), AlreadyExists),
    }[bad]

    with pytest.raises(error):
        pipelines.create_pipelines([make_spec("first"), second], spec_dir)

    assert [p.name for p in pipelines.list_pipelines()] == ["old"]
    with pytest.raises(NotFound):
        data.inspect_repo("first")
    assert data.inspect_repo("taken").type == "user"


def test_create_pipelines_lets_a_spec_read_an_earlier_one(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path
) -> None:
    put("in", {"a.txt": b"a"})

    created = pipelines.create_pipelines([make_spec("up"), make_spec("down", "up")], spec_dir)

    assert [p.name for p in created] == ["up", "down"]
    with pytest.raises(NotFound):  # the other way round, "down" reads a repo not yet there
        pipelines.create_pipelines([make_spec("d2", "u2"), make_spec("u2")], spec_dir)
    assert [p.name for p in pipelines.list_pipelines()] == ["down", "up"]


def test_duplicate_names_in_one_list_are_refused(
    pipelines: Pipelines, data: DataStore, make_spec: MakeSpec, put: Put, spec_dir: Path
) -> None:
    put("in", {"a.txt": b"a"})

    with pytest.raises(SpecError) as caught:
        pipelines.create_pipelines([make_spec("p"), make_spec("p", cmd="true")], spec_dir)

    assert caught.value.field == "pipeline.name"
    assert pipelines.list_pipelines() == []
    with pytest.raises(NotFound):
        data.inspect_repo("p")


def test_a_pipeline_cannot_take_the_name_of_a_user_repo(
    pipelines: Pipelines, data: DataStore, make_spec: MakeSpec, put: Put, spec_dir: Path
) -> None:
    put("in", {"a.txt": b"a"})
    data.create_repo("taken")

    with pytest.raises(SpecError) as caught:
        pipelines.create_pipeline(make_spec("taken"), spec_dir)

    assert caught.value.field == "pipeline.name"
    assert pipelines.list_pipelines() == []
    assert data.inspect_repo("taken").type == "user"


def test_cycles_are_refused_and_change_nothing(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path
) -> None:
    put("in", {"a.txt": b"a"})
    pipelines.create_pipelines([make_spec("up"), make_spec("down", "up")], spec_dir)

    with pytest.raises(SpecError):
        pipelines.create_pipeline(make_spec("up", "down"), spec_dir, update=True)
    with pytest.raises(SpecError):
        pipelines.create_pipelines([make_spec("up", "down")], spec_dir, update=True)
    with pytest.raises(SpecError):  # reading its own output is refused when the spec loads
        make_spec("up", "up")

    up = pipelines.inspect_pipeline("up")
    assert (up.version, up.input_repos) == (1, ["in"])


def test_update_of_several_pipelines_is_all_or_none(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path
) -> None:
    put("in", {"a.txt": b"a"})
    pipelines.create_pipelines([make_spec("p1"), make_spec("p2"), make_spec("p3", "p2")], spec_dir)
    # The new DAG, in -> p3 -> p2 -> p1, has no cycle; only a mix of old and new would.
    new = [make_spec("p1", "p3"), make_spec("p2", "p3"), make_spec("p3")]

    try:
        pipelines.create_pipelines(new, spec_dir, update=True)
    except PipelineError:
        pass

    versions = {p.name: p.version for p in pipelines.list_pipelines()}
    assert versions in ({"p1": 1, "p2": 1, "p3": 1}, {"p1": 2, "p2": 2, "p3": 2})


def test_update_may_reverse_an_edge_of_the_dag(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path
) -> None:
    put("in", {"a.txt": b"a"})
    pipelines.create_pipelines([make_spec("a"), make_spec("b", "a")], spec_dir)

    pipelines.create_pipelines([make_spec("a", "b"), make_spec("b")], spec_dir, update=True)

    assert pipelines.inspect_pipeline("a").input_repos == ["b"]


def test_readers_of_names_the_pipelines_that_read_a_repo(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path
) -> None:
    put("in", {"a.txt": b"a"})
    both = {"cross": [{"pfs": {"repo": "in", "glob": "/"}}, {"pfs": {"repo": "up", "glob": "/"}}]}
    pipelines.create_pipelines(
        [make_spec("up"), make_spec("down", "up"), make_spec("both", both)], spec_dir
    )

    assert pipelines.readers_of("in") == ["both", "up"]
    assert pipelines.readers_of("up") == ["both", "down"]
    assert pipelines.readers_of("down") == []


def test_delete_pipeline_refuses_while_another_reads_it_unless_forced(
    pipelines: Pipelines, data: DataStore, make_spec: MakeSpec, put: Put, spec_dir: Path
) -> None:
    put("in", {"a.txt": b"a"})
    pipelines.create_pipelines([make_spec("up"), make_spec("down", "up")], spec_dir)
    pipelines.propagate()

    with pytest.raises(RepoInUse):
        pipelines.delete_pipeline("up")
    assert pipelines.inspect_pipeline("up").name == "up"
    assert data.inspect_repo("up").type == "pipeline"

    pipelines.delete_pipeline("up", force=True)

    with pytest.raises(NotFound):
        pipelines.inspect_pipeline("up")
    with pytest.raises(NotFound):
        data.inspect_repo("up")
    assert {j.pipeline for j in pipelines.list_jobs()} == {"down"}
    assert pipelines.propagate() == []  # "down" waits for an input that is gone
    pipelines.delete_pipeline("down")
    assert pipelines.list_jobs() == []
    with pytest.raises(NotFound):
        pipelines.delete_pipeline("down")


def test_set_state_of_a_missing_pipeline_is_not_found(pipelines: Pipelines) -> None:
    with pytest.raises(NotFound):
        pipelines.set_state("nope", "paused")


def test_a_spec_whose_stored_form_would_not_read_back_is_refused_and_nothing_is_made(
    pipelines: Pipelines, data: DataStore, put: Put, spec_dir: Path
) -> None:
    put("in", {"a.txt": b"a"})
    # Built in Python, not loaded from a file: under every limit but the stored form's size
    # (each "é" is escaped to six bytes in the stored JSON).
    spec = PipelineSpec.model_validate(
        {
            "pipeline": {"name": "big"},
            "description": "é" * (MAX_SPEC_BYTES // 4),
            "transform": {"cmd": ["true"]},
            "input": {"pfs": {"repo": "in", "glob": "/*"}},
        }
    )

    with pytest.raises(SpecError):
        pipelines.create_pipeline(spec, spec_dir)
    with pytest.raises(SpecError):
        pipelines.create_pipelines([spec], spec_dir)

    assert pipelines.list_pipelines() == []
    with pytest.raises(NotFound):
        data.inspect_repo("big")


def nested_cross(depth: int) -> dict[str, object]:
    node: dict[str, object] = {"pfs": {"repo": "in", "glob": "/*"}}
    for _ in range(depth):
        node = {"cross": [node]}
    return node


def store_unreadable(pipelines: Pipelines, data: DataStore, name: str = "deep") -> None:
    """Store a pipeline the way an older cairn did, with 150 nested crosses, which it accepted
    and could not read back."""
    body = json.dumps(
        {
            "pipeline": {"name": name},
            "transform": {"cmd": ["true"]},
            "input": nested_cross(150),
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    data.create_repo(name, type="pipeline")
    with pipelines.catalog.write() as conn:
        conn.execute(
            insert(versions_table).values(name=name, version=1, spec=body, salt="s", created=1.0)
        )
        conn.execute(
            insert(pipelines_table).values(
                name=name,
                version=1,
                spec=body,
                spec_dir="/",
                salt="s",
                state="running",
                created=1.0,
                updated=1.0,
            )
        )


def test_an_unreadable_stored_spec_breaks_only_its_own_pipeline(
    pipelines: Pipelines,
    data: DataStore,
    make_spec: MakeSpec,
    put: Put,
    spec_dir: Path,
    recorder: Recorder,
) -> None:
    put("in", {"a.txt": b"a"})
    pipelines.create_pipeline(make_spec("copy"), spec_dir)
    store_unreadable(pipelines, data)

    listed = pipelines.list_pipelines()
    broken = pipelines.broken_pipelines()
    ran = pipelines.propagate(recorder)

    assert [p.name for p in listed] == ["copy"]
    assert [(b.name, b.version, b.state) for b in broken] == [("deep", 1, "running")]
    assert states(ran) == [("copy", "success")]
    assert "deep" in [pipeline for pipeline, _ in recorder.args("note")]
    with pytest.raises(UnreadableSpec):
        pipelines.inspect_pipeline("deep")
    assert pipelines.readers_of("in") == ["copy"]
    with pytest.raises(AlreadyExists):  # the name stays taken until it is deleted
        pipelines.create_pipelines([make_spec("deep")], spec_dir)


@pytest.mark.parametrize("force", [False, True])
def test_delete_pipeline_removes_an_unreadable_one(
    pipelines: Pipelines, data: DataStore, force: bool
) -> None:
    store_unreadable(pipelines, data)

    pipelines.delete_pipeline("deep", force=force)

    assert pipelines.broken_pipelines() == []
    with pytest.raises(NotFound):
        data.inspect_repo("deep")
    with pipelines.catalog.read() as conn:
        assert conn.execute(select(versions_table)).first() is None


def test_update_replaces_an_unreadable_spec(
    pipelines: Pipelines, data: DataStore, make_spec: MakeSpec, put: Put, spec_dir: Path
) -> None:
    put("in", {"a.txt": b"a"})
    store_unreadable(pipelines, data)

    info = pipelines.create_pipelines([make_spec("deep")], spec_dir, update=True)[0]

    assert (info.name, info.version) == ("deep", 2)
    assert pipelines.broken_pipelines() == []
    assert states(pipelines.propagate()) == [("deep", "success")]


# -- propagate ---------------------------------------------------------------------------------
def test_a_pipeline_does_not_run_twice_for_the_same_inputs(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path, contents: Contents
) -> None:
    put("in", {"a.txt": b"a", "dir/b.txt": b"b"})
    pipelines.create_pipeline(make_spec("copy"), spec_dir)

    first = pipelines.propagate()
    again = pipelines.propagate()

    assert states(first) == [("copy", "success")]
    assert again == []
    assert contents("copy") == {"a.txt": b"a", "dir/b.txt": b"b"}


def test_propagate_carries_one_commit_through_the_dag_in_order(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path, contents: Contents
) -> None:
    put("in", {"a.txt": b"a"})
    pipelines.create_pipelines([make_spec("mid"), make_spec("down", "mid")], spec_dir)
    pipelines.propagate()
    put("in", {"b.txt": b"b"})

    ran = pipelines.propagate()

    assert states(ran) == [("mid", "success"), ("down", "success")]
    assert contents("down") == {"a.txt": b"a", "b.txt": b"b"}


def test_a_paused_pipeline_and_its_downstream_wait_without_a_job(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path, contents: Contents
) -> None:
    put("in", {"a.txt": b"a"})
    pipelines.create_pipelines([make_spec("up"), make_spec("down", "up")], spec_dir)
    assert pipelines.set_state("up", "paused").state == "paused"

    assert pipelines.propagate() == []
    assert pipelines.list_jobs() == []
    assert contents("down") == {}

    pipelines.set_state("up", "running")
    ran = pipelines.propagate()

    assert states(ran) == [("up", "success"), ("down", "success")]
    assert contents("down") == {"a.txt": b"a"}


def test_a_paused_downstream_does_not_hold_back_its_upstream(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path, contents: Contents
) -> None:
    put("in", {"a.txt": b"a"})
    pipelines.create_pipelines([make_spec("up"), make_spec("down", "up")], spec_dir)
    pipelines.set_state("down", "paused")

    assert states(pipelines.propagate()) == [("up", "success")]
    assert pipelines.propagate() == []

    pipelines.set_state("down", "running")
    assert states(pipelines.propagate()) == [("down", "success")]
    assert contents("down") == {"a.txt": b"a"}


def test_an_open_input_commit_makes_the_pipeline_wait_until_it_is_finished(
    pipelines: Pipelines,
    data: DataStore,
    make_spec: MakeSpec,
    put: Put,
    spec_dir: Path,
    contents: Contents,
) -> None:
    put("in", {"a.txt": b"a"})
    pipelines.create_pipeline(make_spec("copy"), spec_dir)
    pipelines.propagate()
    open_commit = data.start_commit("in")
    put("in", {"b.txt": b"b"}, target=open_commit.id)

    assert pipelines.propagate() == []
    assert contents("copy") == {"a.txt": b"a"}

    data.finish_commit("in", open_commit.id)
    [job] = pipelines.propagate()

    assert (job.state, job.id) == ("success", open_commit.id)
    assert contents("copy") == {"a.txt": b"a", "b.txt": b"b"}


def test_an_input_branch_with_no_commit_makes_the_pipeline_wait(
    pipelines: Pipelines, data: DataStore, make_spec: MakeSpec, spec_dir: Path
) -> None:
    data.create_repo("in")
    pipelines.create_pipeline(make_spec("copy"), spec_dir)

    assert pipelines.propagate() == []


class _Died(BaseException):
    """Stands for the process dying mid-job: nothing in cairn catches it."""


class _DieOnStart(Reporter):
    def job_started(self, job: object, to_process: int) -> None:
        raise _Died


def test_a_job_left_running_by_a_dead_process_is_rerun_under_the_same_id(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path, contents: Contents
) -> None:
    put("in", {"a.txt": b"a"})
    pipelines.create_pipeline(make_spec("copy"), spec_dir)
    with pytest.raises(_Died):
        pipelines.propagate(_DieOnStart())
    [dead] = pipelines.list_jobs("copy")
    assert dead.state == "running"

    [rerun] = pipelines.propagate()

    # The rerun keeps its cause's id (jobs of one cause share one id): the record of the
    # interrupted attempt makes way for it.
    assert rerun.state == "success"
    assert rerun.id == dead.id
    assert rerun.inputs == dead.inputs
    assert [j.id for j in pipelines.list_jobs("copy")] == [dead.id]
    assert contents("copy") == {"a.txt": b"a"}
    assert pipelines.propagate() == []


def test_a_running_row_in_the_catalog_is_reaped_by_the_next_propagate(
    pipelines: Pipelines, data: DataStore, make_spec: MakeSpec, put: Put, spec_dir: Path
) -> None:
    commit = put("in", {"a.txt": b"a"})
    pipelines.create_pipeline(make_spec("copy"), spec_dir)
    with data.catalog.write() as conn:
        conn.execute(
            jobs_table.insert().values(
                pipeline="copy",
                id=commit.id,
                state="running",
                spec_version=1,
                input_key=json.dumps({"in": commit.id}, sort_keys=True),
                created=1.0,
                started=1.0,
            )
        )

    [job] = pipelines.propagate()

    assert job.state == "success"
    assert job.inputs == {"in": commit.id}
    assert job.id == commit.id
    with data.catalog.read() as conn:
        assert conn.execute(select(jobs_table).where(jobs_table.c.state == "running")).all() == []


def test_reporter_hears_start_notes_datums_and_finish_in_order(
    pipelines: Pipelines,
    make_spec: MakeSpec,
    put: Put,
    spec_dir: Path,
    recorder: Recorder,
) -> None:
    put("in", {"a.txt": b"a", "b.txt": b"b", "c.txt": b"c"})
    pipelines.create_pipeline(make_spec("copy"), spec_dir)

    [job] = pipelines.propagate(recorder)

    assert recorder.names == ["job_started", "note"] + ["datum_done"] * 3 + ["job_finished"]
    [(started, to_process)] = recorder.args("job_started")
    assert (started.id, started.state, to_process, started.total, started.skipped) == (
        job.id,
        "running",
        3,
        3,
        0,
    )
    [(pipeline, _message)] = recorder.args("note")
    assert pipeline == "copy"
    done = [datum for _job, datum in recorder.args("datum_done")]
    assert {d.state for d in done} == {"success"}
    assert {d.job for d in done} == {job.id}
    assert len({d.id for d in done}) == 3
    [(finished,)] = recorder.args("job_finished")
    assert (finished.state, finished.processed, finished.total) == ("success", 3, 3)

    put("in", {"d.txt": b"d"})
    again = Recorder()
    pipelines.propagate(again)

    [(started, to_process)] = again.args("job_started")
    assert (to_process, started.skipped, started.total) == (1, 3, 4)
    assert again.names.count("datum_done") == 1


def test_reporter_notes_an_image_that_cannot_be_used(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path, recorder: Recorder
) -> None:
    put("in", {"a.txt": b"a"})
    spec = make_spec("copy", transform={"image": "python:3.11"})
    pipelines.create_pipeline(spec, spec_dir)

    pipelines.propagate(recorder)

    assert recorder.names == ["job_started", "note", "note", "datum_done", "job_finished"]


def test_a_failed_job_makes_its_downstream_unrunnable_with_the_same_id(
    pipelines: Pipelines,
    make_spec: MakeSpec,
    put: Put,
    spec_dir: Path,
    recorder: Recorder,
    contents: Contents,
) -> None:
    put("in", {"a.txt": b"a"})
    pipelines.create_pipelines(
        [make_spec("up", cmd=FAIL_ON_BAD, datum_tries=1), make_spec("down", "up")], spec_dir
    )
    pipelines.propagate()
    commit = put("in", {"bad.txt": b"x"})

    ran = pipelines.propagate(recorder)

    assert states(ran) == [("up", "failure"), ("down", "unrunnable")]
    assert {j.id for j in ran} == {commit.id}
    assert recorder.names[-2:] == ["job_finished", "job_finished"]
    assert recorder.names.count("job_started") == 1
    assert contents("up") == {"a.txt": b"a"}  # the previous output stays
    assert pipelines.propagate() == []  # blocked until the inputs change


# -- jobs: output commits ----------------------------------------------------------------------
def test_output_files_carry_the_hash_of_the_datum_that_wrote_them(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path, entries: Entries
) -> None:
    put("in", {"a.txt": b"a", "dir/b.txt": b"b", "dir/c.txt": b"c"})
    pipelines.create_pipeline(make_spec("copy"), spec_dir)

    [job] = pipelines.propagate()

    datums = pipelines.list_datums("copy", job.id)
    assert len(datums) == 2  # /a.txt and /dir
    by_input = {f["path"]: d.hash for d in datums for f in d.inputs}
    output = entries("copy")
    assert {p: e.datum for p, e in output.items()} == {
        "a.txt": by_input["/a.txt"],
        "dir/b.txt": by_input["/dir/b.txt"],
        "dir/c.txt": by_input["/dir/c.txt"],
    }
    assert by_input["/dir/b.txt"] == by_input["/dir/c.txt"] != by_input["/a.txt"]


def test_unchanged_datums_are_skipped_and_keep_their_outputs(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path, entries: Entries
) -> None:
    put("in", {"a.txt": b"a", "b.txt": b"b"})
    pipelines.create_pipeline(make_spec("copy"), spec_dir)
    pipelines.propagate()
    before = entries("copy")

    put("in", {"b.txt": b"B", "c.txt": b"c"})
    [job] = pipelines.propagate()

    after = entries("copy")
    assert (job.processed, job.skipped, job.total) == (2, 1, 3)
    assert after["a.txt"] == before["a.txt"]  # same content, same datum hash
    assert after["b.txt"].hash != before["b.txt"].hash
    assert after["b.txt"].datum != before["b.txt"].datum
    datums = {d.inputs[0]["path"]: d.state for d in pipelines.list_datums("copy", job.id)}
    assert datums == {"/a.txt": "skipped", "/b.txt": "success", "/c.txt": "success"}


def test_a_deleted_input_file_deletes_its_outputs(
    pipelines: Pipelines,
    data: DataStore,
    make_spec: MakeSpec,
    put: Put,
    spec_dir: Path,
    contents: Contents,
) -> None:
    put("in", {"a.txt": b"a", "dir/b.txt": b"b", "dir/c.txt": b"c"})
    pipelines.create_pipeline(make_spec("copy"), spec_dir)
    pipelines.propagate()

    data.delete_files("in", None, ["a.txt", "dir/c.txt"])
    [job] = pipelines.propagate()

    assert job.state == "success"
    assert contents("copy") == {"dir/b.txt": b"b"}


def test_two_datums_writing_one_path_fail_the_job_naming_the_path(
    pipelines: Pipelines,
    data: DataStore,
    make_spec: MakeSpec,
    put: Put,
    spec_dir: Path,
) -> None:
    put("in", {"a.txt": b"a", "b.txt": b"b"})
    pipelines.create_pipeline(
        make_spec("clash", cmd='echo x > "$CAIRN_PFS/out/same.txt"'), spec_dir
    )

    [job] = pipelines.propagate()

    assert job.state == "failure"
    assert "/same.txt" in job.reason
    assert job.output_commit is None
    with pytest.raises(NotFound):
        data.resolve(Ref("clash"))


def test_output_commit_provenance_matches_the_input_heads(
    pipelines: Pipelines, data: DataStore, make_spec: MakeSpec, put: Put, spec_dir: Path
) -> None:
    put("left", {"a.txt": b"a"})
    put("right", {"b.txt": b"b"})
    pipelines.create_pipeline(
        make_spec(
            "pair",
            {
                "cross": [
                    {"pfs": {"repo": "left", "glob": "/*"}},
                    {"pfs": {"repo": "right", "glob": "/*", "name": "r"}},
                ]
            },
            'touch "$CAIRN_PFS/out/$(ls "$CAIRN_PFS/r")"',
        ),
        spec_dir,
    )
    right = put("right", {"c.txt": b"c"})
    left = data.resolve(Ref("left"))

    [job] = pipelines.propagate()

    commit = data.resolve(Ref("pair"))
    assert commit.id == job.output_commit
    assert commit.provenance == (
        Provenance("left", "left", "master", left.id),
        Provenance("r", "right", "master", right.id),
    )
    assert job.inputs == {"left": left.id, "r": right.id}
    assert job.id == right.id  # the newest input triggered it


def test_output_commit_info_records_job_spec_code_and_environment(
    pipelines: Pipelines, data: DataStore, make_spec: MakeSpec, put: Put, spec_dir: Path
) -> None:
    script = spec_dir / "step.sh"
    script.write_text('cp -r "$CAIRN_PFS/in/." "$CAIRN_PFS/out/"\n')
    put("in", {"a.txt": b"a"})
    spec = make_spec("step", cmd=["bash", "step.sh"])
    info = pipelines.create_pipeline(spec, spec_dir)

    [job] = pipelines.propagate()

    commit = data.resolve(Ref("step"))
    env = environment_fingerprint()
    assert commit.origin == "pipeline"
    assert commit.info["job"] == job.id
    assert commit.info["pipeline"] == {
        "name": "step",
        "version": info.version,
        "spec_hash": spec.spec_hash(),
    }
    assert commit.info["transform_hash"] == canonical_hash(spec.transform.model_dump(mode="json"))
    assert commit.info["code"] == {"step.sh": blake3.blake3(script.read_bytes()).hexdigest()}
    assert commit.info["environment"]["python"] == platform.python_version()
    assert commit.info["environment"]["hash"] == env["hash"]
    stored = data.chunks.objects.get(f"env/{env['hash'][:2]}/{env['hash']}")
    assert json.loads(stored) == env


def test_job_output_commit_and_trigger_share_one_id(
    pipelines: Pipelines, data: DataStore, make_spec: MakeSpec, put: Put, spec_dir: Path
) -> None:
    put("in", {"a.txt": b"a"})
    pipelines.create_pipelines([make_spec("mid"), make_spec("down", "mid")], spec_dir)
    pipelines.propagate()

    commit = put("in", {"b.txt": b"b"})
    ran = pipelines.propagate()

    assert [(j.id, j.output_commit) for j in ran] == [(commit.id, commit.id)] * 2
    assert data.resolve(Ref("down")).id == commit.id


def test_reprocess_every_job_processes_unchanged_datums_again(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path
) -> None:
    put("in", {"a.txt": b"a"})
    pipelines.create_pipeline(make_spec("copy", reprocess_spec="every_job"), spec_dir)
    pipelines.propagate()

    put("in", {"b.txt": b"b"})
    [job] = pipelines.propagate()

    assert (job.processed, job.skipped) == (2, 0)


# -- history -----------------------------------------------------------------------------------
def test_list_jobs_is_newest_first(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path
) -> None:
    put("in", {"a.txt": b"a"})
    pipelines.create_pipelines([make_spec("mid"), make_spec("down", "mid")], spec_dir)
    [first, _] = pipelines.propagate()
    put("in", {"b.txt": b"b"})
    [second, _] = pipelines.propagate()

    assert [j.id for j in pipelines.list_jobs("mid")] == [second.id, first.id]
    assert [j.pipeline for j in pipelines.list_jobs(job_id=second.id)] == ["down", "mid"]
    assert len(pipelines.list_jobs()) == 4
    with pytest.raises(NotFound):
        pipelines.list_jobs("nope")


def test_inspect_job_by_unique_prefix(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path
) -> None:
    put("in", {"a.txt": b"a"})
    pipelines.create_pipeline(make_spec("copy"), spec_dir)
    [job] = pipelines.propagate()

    assert pipelines.inspect_job("copy", job.id[:6]) == job
    assert pipelines.inspect_job("copy", job.id) == job


def test_inspect_job_with_an_ambiguous_or_unknown_id_is_not_found(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path
) -> None:
    put("in", {"a.txt": b"a"})
    pipelines.create_pipeline(make_spec("copy"), spec_dir)
    [first] = pipelines.propagate()
    put("in", {"b.txt": b"b"})
    pipelines.propagate()
    unknown = "0" * 32 if not first.id.startswith("0") else "f" * 32

    with pytest.raises(NotFound):
        pipelines.inspect_job("copy", "")  # a prefix of every job
    with pytest.raises(NotFound):
        pipelines.inspect_job("copy", unknown)
    with pytest.raises(NotFound):
        pipelines.inspect_job("other", first.id)


@pytest.mark.parametrize("pattern", ["%", "_"])
def test_inspect_job_treats_the_prefix_literally(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path, pattern: str
) -> None:
    put("in", {"a.txt": b"a"})
    pipelines.create_pipeline(make_spec("copy"), spec_dir)
    pipelines.propagate()

    with pytest.raises(NotFound):
        pipelines.inspect_job("copy", pattern)


def test_list_datums_records_every_state(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path, contents: Contents
) -> None:
    put("in", {"good.txt": b"g", "bad.txt": b"b"})
    pipelines.create_pipelines(
        [
            make_spec("strict", cmd=FAIL_ON_BAD, datum_tries=2),
            make_spec("lenient", cmd=FAIL_ON_BAD, datum_tries=1, transform={"err_cmd": ["true"]}),
        ],
        spec_dir,
    )

    jobs = {j.pipeline: j for j in pipelines.propagate()}

    def recorded(pipeline: str) -> dict[str, tuple[str, int]]:
        return {
            d.inputs[0]["path"]: (d.state, d.attempts)
            for d in pipelines.list_datums(pipeline, jobs[pipeline].id)
        }

    assert jobs["strict"].state == "failure"
    assert (jobs["strict"].processed, jobs["strict"].failed) == (1, 1)
    assert "/bad.txt" in jobs["strict"].reason
    assert recorded("strict") == {"/good.txt": ("success", 1), "/bad.txt": ("failed", 2)}
    assert jobs["lenient"].state == "success"
    assert jobs["lenient"].recovered == 1
    assert recorded("lenient") == {"/good.txt": ("success", 1), "/bad.txt": ("recovered", 1)}
    assert contents("lenient") == {"good.txt": b"g"}  # a recovered datum writes nothing


def test_logs_hold_what_the_transform_printed(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path
) -> None:
    put("in", {"a.txt": b"a", "b.txt": b"b"})
    pipelines.create_pipeline(
        make_spec("say", cmd='echo "hello from $(ls "$CAIRN_PFS/in")"'), spec_dir
    )
    [job] = pipelines.propagate()
    datums = {d.inputs[0]["path"]: d for d in pipelines.list_datums("say", job.id)}

    logs = list(pipelines.logs("say"))
    one = list(pipelines.logs("say", job.id, datums["/b.txt"].id[:10]))

    headings = [h for h, _ in logs]
    assert headings[0] == f"say@{job.id}"  # the job's notes (no sandbox) come first
    text = "".join(t for _, t in logs[1:])
    assert "hello from a.txt" in text
    assert "hello from b.txt" in text
    assert [t for h, t in one if "datum" in h] == [
        t for h, t in logs if datums["/b.txt"].id[:12] in h
    ]
    assert "hello from b.txt" in one[-1][1]


def test_logs_of_a_skipped_datum_are_those_of_the_job_that_processed_it(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path
) -> None:
    """Before, ``cairn logs -d`` printed nothing and exited 0 for a skipped datum or one
    that does not exist."""
    put("in", {"a.txt": b"a"})
    pipelines.create_pipeline(
        make_spec("say", cmd='echo "hello from $(ls "$CAIRN_PFS/in")"'), spec_dir
    )
    [first] = pipelines.propagate()
    put("in", {"b.txt": b"b"})
    [second] = pipelines.propagate()
    [a] = [d for d in pipelines.list_datums("say", second.id) if d.inputs[0]["path"] == "/a.txt"]
    assert a.state == DatumState.SKIPPED

    [(heading, text)] = list(pipelines.logs("say", second.id, a.id[:10]))
    assert "skipped" in heading and f"say@{first.id}" in heading
    assert "hello from a.txt" in text
    with pytest.raises(NotFound):
        list(pipelines.logs("say", second.id, "0123456789"))


def test_logs_of_a_pipeline_with_no_job_are_empty(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path
) -> None:
    put("in", {"a.txt": b"a"})
    pipelines.create_pipeline(make_spec("copy"), spec_dir)

    assert list(pipelines.logs("copy")) == []
    with pytest.raises(NotFound):
        list(pipelines.logs("nope"))


def test_datum_by_hash_finds_the_newest_job_that_processed_it(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path
) -> None:
    put("in", {"a.txt": b"a"})
    pipelines.create_pipeline(make_spec("every", reprocess_spec="every_job"), spec_dir)
    pipelines.create_pipeline(make_spec("once"), spec_dir)
    first = {j.pipeline: j for j in pipelines.propagate()}
    put("in", {"b.txt": b"b"})
    second = {j.pipeline: j for j in pipelines.propagate()}

    def datum_hash(pipeline: str) -> str:
        [d] = [
            d
            for d in pipelines.list_datums(pipeline, first[pipeline].id)
            if d.inputs[0]["path"] == "/a.txt"
        ]
        return d.hash

    def job_of(pipeline: str, hash_: str, up_to_job: str | None = None) -> str | None:
        found = pipelines.datum_by_hash(pipeline, hash_, up_to_job)
        return found.job if found else None

    every, once = datum_hash("every"), datum_hash("once")
    assert job_of("every", every) == second["every"].id
    assert job_of("every", every, up_to_job=first["every"].id) == first["every"].id
    # A skip is not a record of who made the output: the first job's stays the answer.
    assert job_of("once", once) == first["once"].id
    assert job_of("once", once, up_to_job=second["once"].id) == first["once"].id
    assert job_of("once", "0" * 64) is None


# -- secrets -----------------------------------------------------------------------------------
SECRET = "hunter2-very-secret"
# Writes the secret to the output, prints it to the log, then fails if asked to.
USE_SECRET = (
    'printf %s "$API_TOKEN" > "$CAIRN_PFS/out/token"; echo "token is $API_TOKEN"; '
    '! ls "$CAIRN_PFS/in" | grep -qx bad.txt'
)


@pytest.fixture
def secrets(tmp_path: Path) -> SecretStore:
    return SecretStore(tmp_path / "home" / "secrets.json")


@pytest.fixture
def secret_pipelines(pipelines: Pipelines, secrets: SecretStore) -> Pipelines:
    pipelines.secrets = secrets
    return pipelines


def secret_spec(make_spec: MakeSpec, glob: str = "/") -> PipelineSpec:
    refs = [{"name": "api", "key": "token", "env_var": "API_TOKEN"}]
    return make_spec("use", cmd=USE_SECRET, glob=glob, transform={"secrets": refs})


def test_a_secret_reaches_the_transform_but_not_the_catalog_or_the_logs(
    secret_pipelines: Pipelines,
    secrets: SecretStore,
    data: DataStore,
    make_spec: MakeSpec,
    put: Put,
    spec_dir: Path,
    contents: Contents,
) -> None:
    put("in", {"a.txt": b"a"})
    secrets.create("api", {"token": SECRET})
    secret_pipelines.create_pipeline(secret_spec(make_spec), spec_dir)

    (job,) = secret_pipelines.propagate()

    assert job.state == "success"
    assert contents("use")["token"] == SECRET.encode()
    log = "".join(text for _, text in secret_pipelines.logs("use", job.id))
    assert "token is ***" in log and SECRET not in log
    with data.catalog.read() as conn:
        stored = [row.spec for row in conn.execute(select(pipelines_table))]
        stored += [row.spec for row in conn.execute(select(versions_table))]
    assert stored and not any(SECRET in body for body in stored)
    assert (secrets.path.stat().st_mode & 0o777) == 0o600


def test_a_failed_datum_masks_the_secret_in_its_error_and_the_job_reason(
    secret_pipelines: Pipelines,
    secrets: SecretStore,
    make_spec: MakeSpec,
    put: Put,
    spec_dir: Path,
) -> None:
    put("in", {"bad.txt": b"x"})
    secrets.create("api", {"token": SECRET})
    secret_pipelines.create_pipeline(secret_spec(make_spec, glob="/*"), spec_dir)

    (job,) = secret_pipelines.propagate()

    assert job.state == "failure"
    assert "token is ***" in job.reason and SECRET not in job.reason
    with secret_pipelines.catalog.read() as conn:
        errors = [row.error for row in conn.execute(select(datums_table))]
    assert errors and not any(SECRET in e for e in errors)


@pytest.mark.parametrize("store", ["missing-secret", "missing-key", "no-store"])
def test_a_job_whose_secret_is_missing_fails_and_says_which(
    secret_pipelines: Pipelines,
    secrets: SecretStore,
    make_spec: MakeSpec,
    put: Put,
    spec_dir: Path,
    store: str,
) -> None:
    put("in", {"a.txt": b"a"})
    if store == "missing-key":
        secrets.create("api", {"other": SECRET})
    if store == "no-store":
        secret_pipelines.secrets = None
    secret_pipelines.create_pipeline(secret_spec(make_spec), spec_dir)

    (job,) = secret_pipelines.propagate()

    assert job.state == "failure"
    assert "api" in job.reason and SECRET not in job.reason


def test_pipelines_holds_a_runner_that_holds_the_history(pipelines: Pipelines) -> None:
    # Issue 10: composed, not inherited; settings changed on Pipelines reach the runner.
    assert Pipelines.__mro__ == (Pipelines, object)
    assert pipelines.runner.history is pipelines.history
    pipelines.allow_unconfined = True
    assert pipelines.runner.settings.allow_unconfined is True
