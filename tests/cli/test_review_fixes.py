"""Regression tests, end to end through the ``cairn`` command, for behaviours a review
found broken: datum identity across branches, output branches that change or move,
``--reprocess`` with a fixed salt, ``^`` ancestry in commit commands, repo-qualified
``--head``, ``logs -j PIPELINE@JOB``, errors without tracebacks, host-mode timeouts and
notes, lineage after an input repo is deleted, ``every_job``, dotted branch names and
unsupported spec fields.

Data is seeded through the Python API where the put itself is not under test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from cairn.client import Client

from .conftest import Cairn, pfs, pipeline, seed, seed_repo

COPY = 'cp -r "$CAIRN_PFS/words/." "$CAIRN_PFS/out/"'


def create(cairn: Cairn, *specs: dict[str, Any], **kwargs: Any) -> Any:
    return cairn("create", "pipeline", "-f", str(cairn.spec(*specs)), **kwargs)


def update(cairn: Cairn, *specs: dict[str, Any], reprocess: bool = False) -> Any:
    flags = ["--reprocess"] if reprocess else []
    return cairn("update", "pipeline", "-f", str(cairn.spec(*specs)), *flags)


def newest_job(cairn: Cairn, name: str) -> dict[str, Any]:
    return cairn.jobs(name)[0]


def counts(job: dict[str, Any]) -> tuple[Any, ...]:
    return job["state"], job["processed"], job["skipped"], job["total"]


def paths(cairn: Cairn, ref: str) -> list[str]:
    """Paths of the files at the top of ``repo@commit`` (``list file --raw``)."""
    return [f["path"] for f in cairn.raw("list", "file", f"{ref}:/")]


@contextmanager
def api(cairn: Cairn) -> Iterator[Client]:
    """The store's Python API, pipelines off (for setting up what a test does not test)."""
    client = Client(cairn.home, auto_run=False)
    try:
        yield client
    finally:
        client.data.catalog.dispose()


def single_error(proc: Any) -> None:
    """A refusal as users should see it: one ``error:`` line and no traceback."""
    assert proc.stderr.count("error:") == 1, proc.stderr
    assert "Traceback" not in proc.stderr


# -- datum identity ------------------------------------------------------------------------
def test_union_of_two_branches_of_one_repo_keeps_both_datums(cairn: Cairn) -> None:
    seed(cairn, "u", {"a.txt": "master"})
    seed(cairn, "u", {"a.txt": "dev"}, branch="dev")
    tag = 'echo hi > "$CAIRN_PFS/out/$(cat "$CAIRN_PFS/u/a.txt").txt"'
    union = {"union": [pfs("u", branch="master"), pfs("u", branch="dev")]}

    create(cairn, pipeline("both", union, ["bash", "-c", tag]))

    assert counts(newest_job(cairn, "both")) == ("success", 2, 0, 2)
    assert paths(cairn, "both@master") == ["/dev.txt", "/master.txt"]


# -- output branches -----------------------------------------------------------------------
def test_changing_output_branch_reprocesses_into_the_new_branch(cairn: Cairn) -> None:
    seed_repo(cairn, "words", {"a.txt": "a", "b.txt": "b", "c.txt": "c"})
    create(cairn, pipeline("copy", pfs("words"), ["bash", "-c", COPY], output_branch="out"))

    update(cairn, pipeline("copy", pfs("words"), ["bash", "-c", COPY], output_branch="out2"))

    assert counts(newest_job(cairn, "copy")) == ("success", 3, 0, 3)
    assert paths(cairn, "copy@out2") == ["/a.txt", "/b.txt", "/c.txt"]


def test_moving_the_output_branch_back_rebuilds_a_complete_output(cairn: Cairn) -> None:
    seed_repo(cairn, "words", {"a.txt": "a"})
    create(cairn, pipeline("copy", pfs("words"), ["bash", "-c", COPY], output_branch="out"))
    seed(cairn, "words", {"b.txt": "b"})
    with api(cairn) as client:
        client.run_pipelines()
        first_output = client.data.inspect_commit("copy", "out").parent

    cairn("create", "branch", "copy@out", "--head", "copy@out^")
    assert cairn.raw("inspect", "branch", "copy@out")["head"] == first_output
    commit = cairn.put("words@master:/c.txt", "c")

    job = cairn.raw("inspect", "job", f"copy@{commit}")
    assert counts(job) == ("success", 3, 0, 3)
    assert paths(cairn, "copy@out") == ["/a.txt", "/b.txt", "/c.txt"]


# -- salts and reprocessing ----------------------------------------------------------------
def test_reprocess_ignores_a_fixed_salt_and_a_plain_update_skips_again(cairn: Cairn) -> None:
    seed_repo(cairn, "words", {"a.txt": "a", "b.txt": "b"})
    spec = pipeline("copy", pfs("words"), ["bash", "-c", COPY], salt="fixed")
    create(cairn, spec)

    update(cairn, spec, reprocess=True)
    reprocessed = newest_job(cairn, "copy")
    update(cairn, spec)
    plain = newest_job(cairn, "copy")

    assert counts(reprocessed) == ("success", 2, 0, 2)
    assert counts(plain) == ("success", 0, 2, 2)
    assert (reprocessed["spec_version"], plain["spec_version"]) == (2, 3)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("v1", "v2"),
        ("v10", "v1"),
    ],
)
def test_changing_the_salt_reprocesses_every_datum(cairn: Cairn, old: str, new: str) -> None:
    seed_repo(cairn, "words", {"a.txt": "a", "b.txt": "b"})
    create(cairn, pipeline("copy", pfs("words"), ["bash", "-c", COPY], salt=old))

    update(cairn, pipeline("copy", pfs("words"), ["bash", "-c", COPY], salt=new))

    assert counts(newest_job(cairn, "copy")) == ("success", 2, 0, 2)


def test_every_job_reprocesses_every_datum(cairn: Cairn) -> None:
    seed_repo(cairn, "words", {"a.txt": "a", "b.txt": "b"})
    create(
        cairn,
        pipeline("copy", pfs("words"), ["bash", "-c", COPY], reprocess_spec="every_job"),
    )

    commit = cairn.put("words@master:/c.txt", "c")

    assert counts(cairn.raw("inspect", "job", f"copy@{commit}")) == ("success", 3, 0, 3)
    assert paths(cairn, "copy@master") == ["/a.txt", "/b.txt", "/c.txt"]


# -- ancestry in commit commands -------------------------------------------------------------
def test_commit_commands_resolve_ancestry_to_the_parent(cairn: Cairn) -> None:
    oldest, parent, _head = seed(cairn, "r", {"a": "1"}, {"a": "2"}, {"a": "3"})
    [dev_done] = seed(cairn, "r", {"d": "1"}, branch="dev")
    with api(cairn) as client:
        dev_open = client.start_commit("r", "dev").id

    refused = cairn.fails("finish", "commit", "r@dev^")
    waited = cairn("wait", "commit", "r@master^", "--timeout", "5").stdout.strip()
    listed = cairn.raw("list", "commit", "r@master^")

    assert dev_done in refused.stderr
    single_error(refused)
    dev_head = cairn.raw("inspect", "commit", "r@dev")
    assert (dev_head["id"], dev_head["state"]) == (dev_open, "open")
    assert waited == f"r@{parent}"
    assert [c["id"] for c in listed] == [parent, oldest]


def test_branch_head_may_name_its_repo_but_not_another(cairn: Cairn) -> None:
    _first, parent, _head = seed(cairn, "r", {"a": "1"}, {"a": "2"}, {"a": "3"})
    seed_repo(cairn, "other", {"x": "x"})

    cairn("create", "branch", "r@old", "--head", "r@master^")
    refused = cairn.fails("create", "branch", "r@stray", "--head", "other@master")

    single_error(refused)
    branches = {b["name"]: b["head"] for b in cairn.raw("list", "branch", "r")}
    assert branches["old"] == parent
    assert "stray" not in branches


# -- logs and errors -------------------------------------------------------------------------
def test_logs_of_pipeline_at_job_need_no_pipeline_option(cairn: Cairn) -> None:
    commit = seed_repo(cairn, "words", {"a.txt": "a"})
    create(cairn, pipeline("talk", pfs("words"), ["bash", "-c", "echo said-by-the-datum"]))

    logged = cairn("logs", "-j", f"talk@{commit}").stdout
    refused = cairn.fails("logs")

    assert "said-by-the-datum" in logged
    single_error(refused)


def test_missing_spec_file_and_unwritable_output_are_one_line_errors(cairn: Cairn) -> None:
    seed_repo(cairn, "r", {"a": "a"})

    missing = cairn.fails("create", "pipeline", "-f", "missing.yaml")
    unwritable = cairn.fails("get", "file", "r@master:/a", "-o", "/proc/nope/x")

    single_error(missing)
    single_error(unwritable)
    assert "missing.yaml" in missing.stderr


# -- host mode -------------------------------------------------------------------------------
def test_host_mode_timeout_kills_detached_children_and_notes_once(cairn: Cairn) -> None:
    seed_repo(cairn, "words", {"a.txt": "a", "b.txt": "b", "c.txt": "c"})
    spec = pipeline(
        "hang",
        pfs("words"),
        ["bash", "-c", "setsid sleep 30 & sleep 30"],
        datum_timeout="1s",
        datum_tries=1,
        parallelism_spec={"constant": 3},
    )

    started = time.monotonic()
    proc = create(cairn, spec, env={"CAIRN_SANDBOX": "none"})
    elapsed = time.monotonic() - started

    assert elapsed < 15
    notes = [line for line in proc.stderr.splitlines() if "note:" in line]
    assert len(notes) == 1 and "sandbox" in notes[0], proc.stderr
    job = newest_job(cairn, "hang")
    assert (job["state"], job["failed"]) == ("failure", 3)
    assert "timed out" in job["reason"]


# -- lineage ---------------------------------------------------------------------------------
def test_lineage_survives_deleting_the_input_repo(cairn: Cairn) -> None:
    commit = seed_repo(cairn, "words", {"a.txt": "a"})
    create(cairn, pipeline("copy", pfs("words"), ["bash", "-c", COPY]))

    cairn("delete", "repo", "words", "--force")

    assert f"words@{commit}" in cairn("lineage", "copy@master").stdout
    [source] = cairn.raw("lineage", "copy@master")["upstream"]["children"]
    assert (source["repo"], source["commit"], source["deleted"]) == ("words", commit, True)


# -- spec fields -----------------------------------------------------------------------------
def test_a_pipeline_reads_a_branch_with_a_dot(cairn: Cairn) -> None:
    seed(cairn, "words", {"a.txt": "released"}, branch="v1.0")

    create(cairn, pipeline("copy", pfs("words", branch="v1.0"), ["bash", "-c", COPY]))

    assert cairn.get("copy@master:/a.txt") == b"released"


def test_job_timeout_is_refused_and_nothing_is_created(cairn: Cairn) -> None:
    seed_repo(cairn, "words", {"a.txt": "a"})
    spec = pipeline("copy", pfs("words"), ["bash", "-c", COPY], job_timeout="10m")

    refused = cairn.fails("create", "pipeline", "-f", str(cairn.spec(spec)))

    single_error(refused)
    assert "job_timeout" in refused.stderr
    assert cairn.raw("list", "pipeline") == []
    assert [r["name"] for r in cairn.raw("list", "repo")] == ["words"]
