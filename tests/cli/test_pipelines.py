"""End-to-end tests of pipelines through the ``cairn`` command: specs, DAGs, incremental
processing, failures, lineage, provenance and the sandbox.

Transforms are small bash or Python scripts written next to the spec; they read their
inputs under ``$CAIRN_PFS`` so they pass with or without bubblewrap. ``test_sandbox``
alone uses the hard-coded ``/pfs`` paths that only the sandbox provides.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blake3
import pytest

from .conftest import (
    Cairn,
    api,
    pfs,
    pipeline,
    seed,
    seed_repo,
    shared_scenario,
    single_error,
)

# One output file per input file: the upper-cased content, same name.
UPPER_SH = """\
set -e
for f in "$CAIRN_PFS"/words/*; do
  name=$(basename "$f")
  tr a-z A-Z < "$f" > "$CAIRN_PFS/out/$name"
  echo "upper: wrote $name"
done
"""

# Every upper-cased file as name=CONTENT, then the config's suffix, in one file.
COMBINE_SH = """\
set -e
{
  for f in "$CAIRN_PFS"/upper/*; do printf '%s=%s\\n' "$(basename "$f")" "$(cat "$f")"; done
  cat "$CAIRN_PFS/config/suffix.txt"
} > "$CAIRN_PFS/out/combined.txt"
"""

# Copy every input file to the output; a file named bad.txt makes it exit 3.
FAIL_ON_BAD_SH = """\
for f in "$CAIRN_PFS"/words/*; do
  name=$(basename "$f")
  if [ "$name" = bad.txt ]; then echo "refusing $name"; exit 3; fi
  cp "$f" "$CAIRN_PFS/out/$name"
done
"""

COPY_SH = """\
set -e
for f in "$CAIRN_PFS"/words/*; do cp "$f" "$CAIRN_PFS/out/$(basename "$f")"; done
"""


# The same copy in one command: for folder datums too.
COPY = 'cp -r "$CAIRN_PFS/words/." "$CAIRN_PFS/out/"'


NO_RUN = {"CAIRN_AUTO_RUN": "0"}


def create(cairn: Cairn, *specs: dict[str, Any], **kwargs: Any) -> Any:
    """``create pipeline -f`` of ``specs``; ``kwargs`` go to ``cairn`` (check, env...)."""
    return cairn("create", "pipeline", "-f", str(cairn.spec(*specs)), **kwargs)


def put_failing(cairn: Cairn, ref: str, data: str) -> str:
    """``put file`` of ``data`` at ``ref`` whose job fails: the put is done, and the command
    exits 1 naming the job; returns the commit id it printed first."""
    proc = cairn("put", "file", ref, "-f", "-", input=data, check=False)
    assert proc.returncode == 1 and "error: job " in proc.stderr, proc.stderr
    return str(proc.stdout.strip().rpartition("@")[2])


def create_failing(cairn: Cairn, *specs: dict[str, Any]) -> None:
    """``create pipeline`` whose first job fails: stored, and exit 1 naming the job."""
    proc = create(cairn, *specs, check=False)
    assert proc.returncode == 1 and "error: job " in proc.stderr, proc.stderr


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


def datums(cairn: Cairn, name: str, job: str) -> list[dict[str, Any]]:
    return cairn.raw("list", "datum", f"{name}@{job}")


def files_of(cairn: Cairn, ref: str) -> dict[str, bytes]:
    """Every file of ``repo@commit`` (fetched with ``get file -r``) as path -> bytes."""
    # An empty commit writes no folder at all, hence the rglob on a missing folder.
    target = cairn.root / f"get-{time.monotonic_ns()}"
    cairn("get", "file", f"{ref}:/", "-r", "-o", str(target))
    return {
        p.relative_to(target).as_posix(): p.read_bytes()
        for p in sorted(target.rglob("*"))
        if p.is_file()
    }


# -- specs ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def spec_store(module_cairn: Cairn) -> Cairn:
    seed_repo(module_cairn, "words", {"a.txt": "a"})
    return module_cairn


GOOD = pipeline("good", pfs("words"), ["bash", "-c", "true"])
MALFORMED = {
    "unknown field": {**GOOD, "transform": {"cmd": ["true"], "cmdd": ["x"]}},
    "missing glob": {**GOOD, "input": {"pfs": {"repo": "words"}}},
    "spout": {**GOOD, "spout": {"overwrite": True}},
    "missing input repo": {**GOOD, "input": pfs("nosuchrepo")},
}


@pytest.mark.parametrize("spec", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_spec_is_refused_and_creates_nothing(
    spec_store: Cairn, spec: dict[str, Any]
) -> None:
    spec_file = spec_store.spec(spec, name=f"bad-{time.monotonic_ns()}.json")

    spec_store.fails("create", "pipeline", "-f", str(spec_file))

    assert spec_store.raw("list", "pipeline") == []
    assert [r["name"] for r in spec_store.raw("list", "repo")] == ["words"]


def test_spec_file_with_one_invalid_spec_creates_none(spec_store: Cairn) -> None:
    spec_file = spec_store.spec(GOOD, MALFORMED["missing glob"], name="half-bad.json")

    spec_store.fails("create", "pipeline", "-f", str(spec_file))

    assert spec_store.raw("list", "pipeline") == []


def test_spec_file_with_a_missing_repo_creates_none(cairn: Cairn) -> None:
    cairn("create", "repo", "words")
    spec = cairn.spec(GOOD, {**GOOD, "pipeline": {"name": "other"}, "input": pfs("nosuchrepo")})

    cairn.fails("create", "pipeline", "-f", str(spec))

    assert cairn.raw("list", "pipeline") == []
    assert [r["name"] for r in cairn.raw("list", "repo")] == ["words"]


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


# -- a two-step DAG, changed step by step --------------------------------------------------
def build_dag(c: Cairn) -> dict[str, Any]:
    """upper (one datum per file of ``words``) feeding combine (cross of upper's output
    and ``config``, one datum each); then a file is added, one modified, one deleted.
    Returns what each step left behind."""
    c.write("upper.sh", UPPER_SH)
    c.write("combine.sh", COMBINE_SH)
    words0 = seed_repo(c, "words", {"a.txt": "apple", "b.txt": "banana", "c.txt": "cherry"})
    seed_repo(c, "config", {"suffix.txt": "END"})
    create(
        c,
        pipeline("upper", pfs("words"), ["bash", "upper.sh"]),
        pipeline(
            "combine", {"cross": [pfs("upper", "/"), pfs("config", "/")]}, ["bash", "combine.sh"]
        ),
    )
    steps: dict[str, Any] = {}

    def snapshot(step: str, commit: str) -> None:
        jobs = c.raw("list", "job")
        steps[step] = {
            "commit": commit,
            "upper_job": next(j for j in jobs if j["pipeline"] == "upper"),
            "combine_job": next(j for j in jobs if j["pipeline"] == "combine"),
            "upper": {k: v.decode() for k, v in files_of(c, "upper@master").items()},
            "combined": c.get("combine@master:/combined.txt").decode(),
        }
        steps["jobs"] = jobs

    snapshot("initial", words0)
    snapshot("add", c.put("words@master:/d.txt", "date"))
    snapshot("modify", c.put("words@master:/b.txt", "blueberry"))
    deleted = c("delete", "file", "words@master:/c.txt").stdout.strip().rpartition("@")[2]
    snapshot("delete", deleted)
    return steps


@pytest.fixture(scope="module")
def dag(tmp_path_factory: pytest.TempPathFactory, cairn_mode: str) -> Iterator[dict[str, Any]]:
    with shared_scenario(tmp_path_factory, "dag", build_dag, cairn_mode) as (cairn, steps):
        yield {**steps, "cairn": cairn}


def test_dag_initial_outputs(dag: dict[str, Any]) -> None:
    initial = dag["initial"]
    assert initial["upper"] == {"a.txt": "APPLE", "b.txt": "BANANA", "c.txt": "CHERRY"}
    assert initial["combined"] == "a.txt=APPLE\nb.txt=BANANA\nc.txt=CHERRY\nEND"
    job = initial["upper_job"]
    assert (job["state"], job["processed"], job["skipped"], job["total"]) == ("success", 3, 0, 3)
    job = initial["combine_job"]
    assert (job["state"], job["processed"], job["total"]) == ("success", 1, 1)


def test_added_file_is_the_only_datum_processed(dag: dict[str, Any]) -> None:
    step = dag["add"]
    job = step["upper_job"]
    assert (job["state"], job["processed"], job["skipped"], job["total"]) == ("success", 1, 3, 4)
    assert step["upper"] == {
        "a.txt": "APPLE",
        "b.txt": "BANANA",
        "c.txt": "CHERRY",
        "d.txt": "DATE",
    }
    c: Cairn = dag["cairn"]
    assert c.raw("inspect", "job", f"upper@{step['commit']}") == step["upper_job"]
    job = step["combine_job"]
    assert (job["state"], job["processed"]) == ("success", 1)
    assert job["id"] != dag["initial"]["combine_job"]["id"]
    assert step["combined"] == "a.txt=APPLE\nb.txt=BANANA\nc.txt=CHERRY\nd.txt=DATE\nEND"


def test_modified_file_is_reprocessed_and_its_output_replaced(dag: dict[str, Any]) -> None:
    step = dag["modify"]
    job = step["upper_job"]
    assert (job["state"], job["processed"], job["skipped"]) == ("success", 1, 3)
    assert step["upper"] == {**dag["add"]["upper"], "b.txt": "BLUEBERRY"}
    assert "b.txt=BLUEBERRY\n" in step["combined"]


def test_deleted_input_file_deletes_its_output(dag: dict[str, Any]) -> None:
    step = dag["delete"]
    job = step["upper_job"]
    assert (job["state"], job["processed"], job["skipped"], job["total"]) == ("success", 0, 3, 3)
    assert step["upper"] == {"a.txt": "APPLE", "b.txt": "BLUEBERRY", "d.txt": "DATE"}
    assert step["combined"] == "a.txt=APPLE\nb.txt=BLUEBERRY\nd.txt=DATE\nEND"
    c: Cairn = dag["cairn"]
    changes = c.raw("diff", "file", "upper@master")
    assert [(x["path"], x["status"]) for x in changes] == [("/c.txt", "deleted")]


@pytest.mark.parametrize("step", ["initial", "add", "modify", "delete"])
def test_jobs_of_one_cause_share_the_commit_id(dag: dict[str, Any], step: str) -> None:
    commit = dag[step]["commit"]
    upper, combine = dag[step]["upper_job"], dag[step]["combine_job"]
    assert upper["id"] == combine["id"] == commit
    assert upper["output_commit"] == combine["output_commit"] == commit
    assert upper["inputs"] == {"words": commit}
    assert {j["pipeline"] for j in dag["jobs"] if j["id"] == commit} == {"upper", "combine"}


def test_output_commit_records_provenance_code_and_environment(dag: dict[str, Any]) -> None:
    c: Cairn = dag["cairn"]
    upper_head = c.raw("inspect", "commit", "upper@master")
    config_head = c.raw("inspect", "commit", "config@master")

    commit = c.raw("inspect", "commit", "combine@master")

    assert commit["origin"] == "pipeline"
    provenance = {p["name"]: (p["repo"], p["branch"], p["commit"]) for p in commit["provenance"]}
    assert provenance == {
        "upper": ("upper", "master", upper_head["id"]),
        "config": ("config", "master", config_head["id"]),
    }
    info = commit["info"]
    assert info["job"] == commit["id"]
    assert info["pipeline"]["name"] == "combine"
    assert info["pipeline"]["version"] == 1
    assert info["environment"]["python"] == platform.python_version()
    assert info["code"] == {
        "combine.sh": blake3.blake3((c.root / "combine.sh").read_bytes()).hexdigest()
    }
    assert upper_head["provenance"] == [
        {"name": "words", "repo": "words", "branch": "master", "commit": dag["delete"]["commit"]}
    ]


def test_file_lineage_names_the_exact_input_files(dag: dict[str, Any]) -> None:
    c: Cairn = dag["cairn"]
    modified = dag["modify"]["commit"]

    lineage = c.raw("lineage", "upper@master:/b.txt")

    assert lineage["pipeline"] == "upper"
    assert lineage["job"] == modified
    assert lineage["hash"] == c.raw("inspect", "file", "upper@master:/b.txt")["hash"]
    [source] = lineage["inputs"]
    assert (source["input"], source["repo"], source["commit"], source["path"]) == (
        "words",
        "words",
        modified,
        "/b.txt",
    )
    assert source["hash"] == c.raw("inspect", "file", f"words@{modified}:/b.txt")["hash"]
    assert source["hash"] == blake3.blake3(b"blueberry").hexdigest()


def test_file_lineage_through_a_cross(dag: dict[str, Any]) -> None:
    c: Cairn = dag["cairn"]

    lineage = c.raw("lineage", "combine@master:/combined.txt")

    sources = {(s["repo"], s["path"]): s for s in lineage["inputs"]}
    assert set(sources) == {
        ("upper", "/a.txt"),
        ("upper", "/b.txt"),
        ("upper", "/d.txt"),
        ("config", "/suffix.txt"),
    }
    suffix = c.raw("inspect", "file", "config@master:/suffix.txt")
    assert (
        sources["config", "/suffix.txt"]["commit"],
        sources["config", "/suffix.txt"]["hash"],
    ) == (suffix["commit"], suffix["hash"])
    upper_a = c.raw("inspect", "file", "upper@master:/a.txt")
    assert (sources["upper", "/a.txt"]["commit"], sources["upper", "/a.txt"]["hash"]) == (
        dag["delete"]["commit"],
        upper_a["hash"],
    )


def test_file_lineage_of_a_user_file_says_so(dag: dict[str, Any]) -> None:
    c: Cairn = dag["cairn"]
    lineage = c.raw("lineage", "words@master:/a.txt")
    assert "inputs" not in lineage
    assert lineage["hash"] == blake3.blake3(b"apple").hexdigest()
    c.fails("lineage", "upper@master:/nope.txt")


def test_commit_lineage_shows_upstream_and_downstream(dag: dict[str, Any]) -> None:
    c: Cairn = dag["cairn"]
    commit = dag["add"]["commit"]

    down = c.raw("lineage", f"words@{commit}")["downstream"]
    up = c.raw("lineage", f"combine@{commit}")["upstream"]

    assert (down["repo"], down["commit"]) == ("words", commit)
    [upper] = down["children"]
    assert (upper["repo"], upper["commit"], upper["via"]) == ("upper", commit, "words")
    [combine] = upper["children"]
    assert (combine["repo"], combine["commit"], combine["via"]) == ("combine", commit, "upper")
    assert combine["children"] == []
    children = {n["repo"]: n for n in up["children"]}
    assert set(children) == {"upper", "config"}
    assert children["upper"]["commit"] == commit
    [words] = children["upper"]["children"]
    assert (words["repo"], words["commit"], words["via"]) == ("words", commit, "words")
    assert children["config"]["children"] == []


def test_logs_show_what_the_transform_printed(dag: dict[str, Any]) -> None:
    c: Cairn = dag["cairn"]
    initial = dag["initial"]["upper_job"]["id"]

    everything = c("logs", "-p", "upper", "-j", initial).stdout
    one = next(d for d in datums(c, "upper", initial) if d["inputs"][0]["path"] == "/a.txt")
    only_a = c("logs", "-p", "upper", "-j", initial, "-d", one["id"]).stdout
    latest = c("logs", "-p", "upper").stdout

    for name in ("a.txt", "b.txt", "c.txt"):
        assert f"upper: wrote {name}" in everything
    assert "upper: wrote a.txt" in only_a and "upper: wrote b.txt" not in only_a
    assert "upper: wrote" not in latest  # the latest job skipped every datum


def test_logs_of_pipeline_at_job_need_no_pipeline_option(cairn: Cairn) -> None:
    commit = seed_repo(cairn, "words", {"a.txt": "a"})
    create(cairn, pipeline("talk", pfs("words"), ["bash", "-c", "echo said-by-the-datum"]))

    logged = cairn("logs", "-j", f"talk@{commit}").stdout
    refused = cairn.fails("logs")

    assert "said-by-the-datum" in logged
    single_error(refused)


# -- failures ------------------------------------------------------------------------------
def test_failing_datum_fails_the_job_and_leaves_output_alone(cairn: Cairn) -> None:
    cairn.write("fail.sh", FAIL_ON_BAD_SH)
    cairn.write("report.sh", 'ls "$CAIRN_PFS/copy" > "$CAIRN_PFS/out/report.txt"\n')
    seed_repo(cairn, "words", {"a.txt": "a", "b.txt": "b"})
    create(
        cairn,
        pipeline("copy", pfs("words"), ["bash", "fail.sh"]),
        pipeline("report", {"cross": [pfs("copy", "/"), pfs("words", "/")]}, ["bash", "report.sh"]),
    )
    head_before = cairn.raw("inspect", "branch", "copy@master")["head"]
    report_before = cairn.raw("inspect", "branch", "report@master")["head"]

    bad = put_failing(cairn, "words@master:/bad.txt", "bad")

    job = cairn.raw("inspect", "job", f"copy@{bad}")
    assert job["state"] == "failure"
    assert (job["failed"], job["processed"], job["skipped"]) == (1, 0, 2)
    assert job["output_commit"] is None
    assert "/bad.txt" in job["reason"] and "exit code 3" in job["reason"]
    [failed] = [d for d in datums(cairn, "copy", bad) if d["state"] == "failed"]
    assert (failed["exit_code"], failed["attempts"]) == (3, 3)
    assert [i["path"] for i in failed["inputs"]] == ["/bad.txt"]
    assert cairn.raw("inspect", "branch", "copy@master")["head"] == head_before
    assert files_of(cairn, "copy@master") == {"a.txt": b"a", "b.txt": b"b"}
    downstream = newest_job(cairn, "report")
    assert (downstream["id"], downstream["state"]) == (bad, "unrunnable")
    assert cairn.raw("inspect", "branch", "report@master")["head"] == report_before
    assert "refusing bad.txt" in cairn("logs", "-p", "copy", "-j", bad).stdout
    assert cairn("wait", "job", f"copy@{bad}", check=False).returncode == 1


def test_a_failed_job_makes_the_whole_chain_below_it_unrunnable(cairn: Cairn) -> None:
    # Pachyderm marks every downstream job of the failed job's commit set unrunnable, even
    # where the downstream pipeline reads only the failed one's (unchanged) output.
    cairn.write("fail.sh", FAIL_ON_BAD_SH)
    seed_repo(cairn, "words", {"a.txt": "a"})
    create(
        cairn,
        pipeline("copy", pfs("words"), ["bash", "fail.sh"], datum_tries=1),
        pipeline(
            "again", pfs("copy"), ["bash", "-c", 'cp -r "$CAIRN_PFS/copy/." "$CAIRN_PFS/out"']
        ),
        pipeline(
            "third", pfs("again"), ["bash", "-c", 'cp -r "$CAIRN_PFS/again/." "$CAIRN_PFS/out"']
        ),
    )
    heads = {p: cairn.raw("inspect", "branch", f"{p}@master")["head"] for p in ("again", "third")}

    bad = put_failing(cairn, "words@master:/bad.txt", "bad")

    assert cairn.raw("inspect", "job", f"copy@{bad}")["state"] == "failure"
    for name in ("again", "third"):
        job = cairn.raw("inspect", "job", f"{name}@{bad}")
        assert job["state"] == "unrunnable"
        assert cairn.raw("inspect", "branch", f"{name}@master")["head"] == heads[name]

    fixed = cairn("delete", "file", "words@master:/bad.txt").stdout.strip().rpartition("@")[2]

    assert cairn.raw("inspect", "job", f"copy@{fixed}")["state"] == "success"
    assert cairn.raw("inspect", "job", f"third@{fixed}")["state"] == "success"


def test_job_recovers_once_the_bad_input_is_gone(cairn: Cairn) -> None:
    cairn.write("fail.sh", FAIL_ON_BAD_SH)
    seed_repo(cairn, "words", {"a.txt": "a", "bad.txt": "bad"})
    create_failing(cairn, pipeline("copy", pfs("words"), ["bash", "fail.sh"], datum_tries=1))
    assert newest_job(cairn, "copy")["state"] == "failure"
    # nothing was written: the output branch (there from create pipeline) is empty
    assert cairn.raw("list", "file", "copy@master:/") == []

    fixed = cairn("delete", "file", "words@master:/bad.txt").stdout.strip().rpartition("@")[2]

    job = newest_job(cairn, "copy")
    assert (job["id"], job["state"], job["processed"]) == (fixed, "success", 1)
    assert files_of(cairn, "copy@master") == {"a.txt": b"a"}


def test_datum_tries_sets_the_number_of_attempts(cairn: Cairn) -> None:
    cairn.write("fail.sh", FAIL_ON_BAD_SH)
    seed_repo(cairn, "words", {"a.txt": "a", "bad.txt": "bad"})

    create_failing(cairn, pipeline("copy", pfs("words"), ["bash", "fail.sh"], datum_tries=2))

    job = newest_job(cairn, "copy")
    assert job["state"] == "failure"
    attempts = {
        d["inputs"][0]["path"]: (d["state"], d["attempts"])
        for d in datums(cairn, "copy", job["id"])
    }
    assert attempts == {"/a.txt": ("success", 1), "/bad.txt": ("failed", 2)}
    log = cairn("logs", "-p", "copy").stdout
    assert log.count("refusing bad.txt") == 2


def test_inspect_datum_shows_one_datum_with_the_node_it_ran_on(cairn: Cairn) -> None:
    cairn.write("fail.sh", FAIL_ON_BAD_SH)
    seed_repo(cairn, "words", {"a.txt": "a", "bad.txt": "bad"})
    create_failing(cairn, pipeline("copy", pfs("words"), ["bash", "fail.sh"], datum_tries=1))
    job = newest_job(cairn, "copy")["id"]
    [failed] = [d for d in datums(cairn, "copy", job) if d["state"] == "failed"]
    assert failed["node"] == ""  # the local executor ran it: no cluster node

    shown = cairn.raw("inspect", "datum", f"copy@{job}", failed["id"][:10])

    assert shown == failed
    text = cairn("inspect", "datum", f"copy@{job}", failed["id"]).stdout
    assert "exit code 3" in text and "Node" in text
    cairn.fails("inspect", "datum", f"copy@{job}", "ffff" * 4)


def test_err_cmd_that_succeeds_recovers_the_datum(cairn: Cairn) -> None:
    cairn.write("fail.sh", FAIL_ON_BAD_SH)
    seed_repo(cairn, "words", {"a.txt": "a", "bad.txt": "bad"})
    spec = pipeline("copy", pfs("words"), ["bash", "fail.sh"], datum_tries=1)
    spec["transform"]["err_cmd"] = ["bash", "-c", "echo recovering; exit 0"]

    create(cairn, spec)

    job = newest_job(cairn, "copy")
    assert (job["state"], job["processed"], job["recovered"], job["failed"]) == ("success", 1, 1, 0)
    states = {d["inputs"][0]["path"]: d["state"] for d in datums(cairn, "copy", job["id"])}
    assert states == {"/a.txt": "success", "/bad.txt": "recovered"}
    assert files_of(cairn, "copy@master") == {"a.txt": b"a"}


def test_a_batching_shell_transform_takes_datums_with_cairn_next_datum(cairn: Cairn) -> None:
    seed_repo(cairn, "words", {"a.txt": "a", "bad.txt": "bad", "c.txt": "c"})
    loop = (
        'while id=$(cairn next datum ${why:+--fail "$why"}); do why=""; echo "$id";'
        ' if [ -e "$CAIRN_PFS/words/bad.txt" ]; then why="bad word"; continue; fi;'
        ' cp "$CAIRN_PFS"/words/* "$CAIRN_PFS/out/"; done'
    )
    spec = pipeline("copy", pfs("words"), ["bash", "-c", loop], datum_tries=1)
    spec["transform"]["datum_batching"] = True

    create_failing(cairn, spec)

    job = newest_job(cairn, "copy")
    assert (job["state"], job["processed"], job["failed"]) == ("failure", 2, 1)
    assert "bad word" in job["reason"]
    bad = next(d for d in datums(cairn, "copy", job["id"]) if d["state"] == "failed")
    assert bad["id"] in cairn("logs", "-p", "copy", "-j", job["id"], "-d", bad["id"]).stdout
    assert cairn("next", "datum", check=False).returncode == 2  # outside a transform


def test_err_cmd_that_fails_leaves_the_job_failed(cairn: Cairn) -> None:
    cairn.write("fail.sh", FAIL_ON_BAD_SH)
    seed_repo(cairn, "words", {"bad.txt": "bad"})
    spec = pipeline("copy", pfs("words"), ["bash", "fail.sh"], datum_tries=1)
    spec["transform"]["err_cmd"] = ["false"]

    create_failing(cairn, spec)

    job = newest_job(cairn, "copy")
    assert (job["state"], job["recovered"], job["failed"]) == ("failure", 0, 1)


def test_datum_timeout_kills_a_hung_datum(cairn: Cairn) -> None:
    seed_repo(cairn, "words", {"a.txt": "a"})
    spec = pipeline("slow", pfs("words"), ["sleep", "30"], datum_timeout="1s", datum_tries=1)

    started = time.monotonic()
    create_failing(cairn, spec)
    elapsed = time.monotonic() - started

    assert elapsed < 20
    job = newest_job(cairn, "slow")
    assert (job["state"], job["failed"]) == ("failure", 1)
    [datum] = datums(cairn, "slow", job["id"])
    assert (datum["state"], datum["exit_code"]) == ("failed", None)
    assert datum["duration"] < 20


def test_accept_return_code_counts_as_success(cairn: Cairn) -> None:
    seed_repo(cairn, "words", {"a.txt": "a"})
    spec = pipeline(
        "lenient", pfs("words"), ["bash", "-c", 'echo done > "$CAIRN_PFS/out/result"; exit 3']
    )
    spec["transform"]["accept_return_code"] = [3]

    create(cairn, spec)

    job = newest_job(cairn, "lenient")
    assert (job["state"], job["processed"]) == ("success", 1)
    assert datums(cairn, "lenient", job["id"])[0]["exit_code"] == 3
    assert cairn.get("lenient@master:/result") == b"done\n"


def test_two_datums_writing_one_path_fail_the_job(cairn: Cairn) -> None:
    seed_repo(cairn, "words", {"a.txt": "a", "b.txt": "b"})
    spec = pipeline(
        "clash",
        pfs("words"),
        ["bash", "-c", 'cat "$CAIRN_PFS"/words/* > "$CAIRN_PFS/out/same.txt"'],
    )

    create_failing(cairn, spec)

    job = newest_job(cairn, "clash")
    assert (job["state"], job["output_commit"]) == ("failure", None)
    assert "/same.txt" in job["reason"]
    assert cairn.raw("list", "commit", "clash") == []


def test_a_new_datum_writing_a_kept_datums_path_fails_the_job(cairn: Cairn) -> None:
    seed_repo(cairn, "words", {"a.txt": "a"})
    spec = pipeline(
        "clash",
        pfs("words"),
        ["bash", "-c", 'cat "$CAIRN_PFS"/words/* > "$CAIRN_PFS/out/same.txt"'],
    )
    create(cairn, spec)
    before = cairn.raw("inspect", "branch", "clash@master")["head"]

    commit = put_failing(cairn, "words@master:/b.txt", "b")

    job = cairn.raw("inspect", "job", f"clash@{commit}")
    assert (job["state"], job["skipped"]) == ("failure", 1)
    assert "/same.txt" in job["reason"]
    assert cairn.raw("inspect", "branch", "clash@master")["head"] == before
    assert cairn.get("clash@master:/same.txt") == b"a"


def test_output_symlinks_may_point_into_pfs_only(cairn: Cairn) -> None:
    seed_repo(cairn, "words", {"a.txt": "apple"})
    inside = 'ln -s "$CAIRN_PFS/words/a.txt" "$CAIRN_PFS/out/linked.txt"'
    outside = 'ln -s /etc/hostname "$CAIRN_PFS/out/stolen.txt"'

    create_failing(
        cairn,
        pipeline("inside", pfs("words"), ["bash", "-c", inside]),
        pipeline("outside", pfs("words"), ["bash", "-c", outside], datum_tries=1),
    )

    assert cairn.get("inside@master:/linked.txt") == b"apple"
    jobs = {j["pipeline"]: j for j in cairn.raw("list", "job")}
    assert (jobs["inside"]["state"], jobs["outside"]["state"]) == ("success", "failure")
    assert jobs["outside"]["output_commit"] is None


@pytest.mark.embedded_only(
    "a job's datum output streams to the command that ran it; remote jobs run in the "
    "server's worker (cairn logs has it)"
)
def test_datum_log_with_square_brackets_is_printed_verbatim(cairn: Cairn) -> None:
    seed_repo(cairn, "words", {"a.txt": "a"})
    spec = pipeline(
        "noisy",
        pfs("words"),
        ["bash", "-c", "echo '[/oops] [bold]not markup'; exit 2"],
        datum_tries=1,
    )

    proc = create(cairn, spec, check=False)

    assert proc.returncode == 1, proc.stderr  # the job failed
    assert "[/oops] [bold]not markup" in proc.stderr
    job = newest_job(cairn, "noisy")
    assert job["state"] == "failure"
    assert "exit code 2" in job["reason"]


@pytest.mark.embedded_only(
    "a job's notes print in the command that ran it; remote jobs run in the server's worker"
)
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
    proc = create(cairn, spec, env={"CAIRN_SANDBOX": "none"}, check=False)
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr  # the job failed

    assert elapsed < 15
    notes = [line for line in proc.stderr.splitlines() if "note:" in line]
    assert len(notes) == 1 and "sandbox" in notes[0], proc.stderr
    job = newest_job(cairn, "hang")
    assert (job["state"], job["failed"]) == ("failure", 3)
    assert "timed out" in job["reason"]


def test_wait_commit_waits_for_the_jobs_downstream_and_names_the_one_that_failed(
    cairn: Cairn,
) -> None:
    seed_repo(cairn, "words", {"a.txt": "a"})
    copy = pipeline(
        "copy", pfs("words"), ["bash", "-c", 'cp "$CAIRN_PFS"/words/* "$CAIRN_PFS/out/"']
    )
    picky = pipeline("picky", pfs("copy"), ["bash", "-c", 'test ! -e "$CAIRN_PFS/copy/bad.txt"'])
    create(cairn, copy, picky)
    # The put starts no job itself: the jobs run in a server's worker, or (embedded) in
    # the process that waits.
    put = cairn("put", "file", "words@master:/bad.txt", "-f", "-", input="x", env=NO_RUN)
    commit = put.stdout.strip()

    waited = cairn.fails("wait", "commit", commit)

    commit_id = commit.rpartition("@")[2]
    assert f"picky@{commit_id} failure" in waited.stderr
    assert cairn.get("copy@master:/bad.txt") == b"x"
    assert [j["state"] for j in cairn.jobs("picky")][:1] == ["failure"]
    assert cairn("wait", "commit", "words@master^").returncode == 0


# -- updates, stop and start -----------------------------------------------------------------
TAG = 'for f in "$CAIRN_PFS"/words/*; do echo "$MODE" > "$CAIRN_PFS/out/$(basename "$f")"; done'


def tag_spec(mode: str) -> dict[str, Any]:
    """A pipeline whose output is its MODE; a new MODE is a new spec, same datums."""
    spec = pipeline("tag", pfs("words"), ["bash", "-c", TAG])
    spec["transform"]["env"] = {"MODE": mode}
    return spec


def test_update_pipeline_skips_unchanged_datums(cairn: Cairn) -> None:
    seed_repo(cairn, "words", {"a.txt": "a", "b.txt": "b"})
    create(cairn, tag_spec("v1"))

    cairn("update", "pipeline", "-f", str(cairn.spec(tag_spec("v2"))))

    job = newest_job(cairn, "tag")
    assert (job["state"], job["spec_version"], job["processed"], job["skipped"]) == (
        "success",
        2,
        0,
        2,
    )
    assert files_of(cairn, "tag@master") == {"a.txt": b"v1\n", "b.txt": b"v1\n"}
    assert cairn.raw("inspect", "pipeline", "tag")["version"] == 2


def test_update_pipeline_with_reprocess_processes_every_datum(cairn: Cairn) -> None:
    seed_repo(cairn, "words", {"a.txt": "a", "b.txt": "b"})
    create(cairn, tag_spec("v1"))

    cairn("update", "pipeline", "-f", str(cairn.spec(tag_spec("v2"))), "--reprocess")

    job = newest_job(cairn, "tag")
    assert (job["state"], job["spec_version"], job["processed"], job["skipped"]) == (
        "success",
        2,
        2,
        0,
    )
    assert files_of(cairn, "tag@master") == {"a.txt": b"v2\n", "b.txt": b"v2\n"}
    assert cairn.raw("inspect", "commit", "tag@master")["info"]["pipeline"]["version"] == 2


def test_update_of_a_missing_pipeline_and_create_of_an_existing_one_fail(cairn: Cairn) -> None:
    seed_repo(cairn, "words", {"a.txt": "a"})
    spec = cairn.spec(pipeline("copy", pfs("words"), ["bash", "-c", "true"]))
    cairn.fails("update", "pipeline", "-f", str(spec))
    assert cairn.raw("list", "pipeline") == []
    cairn("create", "pipeline", "-f", str(spec))

    cairn.fails("create", "pipeline", "-f", str(spec))

    assert [p["version"] for p in cairn.raw("list", "pipeline")] == [1]


def test_stopped_pipeline_runs_nothing_until_started(cairn: Cairn) -> None:
    cairn.write("copy.sh", COPY_SH)
    seed_repo(cairn, "words", {"a.txt": "a"})
    create(cairn, pipeline("copy", pfs("words"), ["bash", "copy.sh"]))

    cairn("stop", "pipeline", "copy")
    commit = cairn.put("words@master:/b.txt", "b")

    assert cairn.raw("inspect", "pipeline", "copy")["state"] == "paused"
    assert len(cairn.jobs("copy")) == 1
    assert files_of(cairn, "copy@master") == {"a.txt": b"a"}

    cairn("start", "pipeline", "copy")

    job = newest_job(cairn, "copy")
    assert (job["id"], job["state"], job["processed"], job["skipped"]) == (commit, "success", 1, 1)
    assert cairn.raw("inspect", "pipeline", "copy")["state"] == "running"
    assert files_of(cairn, "copy@master") == {"a.txt": b"a", "b.txt": b"b"}


@pytest.mark.embedded_only("drives cairn run, which a server does itself")
def test_run_once_runs_what_a_put_left_stale(cairn: Cairn) -> None:
    cairn.write("copy.sh", COPY_SH)
    seed_repo(cairn, "words", {"a.txt": "a"})
    create(cairn, pipeline("copy", pfs("words"), ["bash", "copy.sh"]))

    commit = (
        cairn(
            "put", "file", "words@master:/b.txt", "-f", "-", input=b"b", env={"CAIRN_AUTO_RUN": "0"}
        )
        .stdout.decode()
        .strip()
        .rpartition("@")[2]
    )

    assert len(cairn.jobs("copy")) == 1

    cairn("run", "--once")

    job = newest_job(cairn, "copy")
    assert (job["id"], job["state"], job["processed"]) == (commit, "success", 1)
    assert cairn.get("copy@master:/b.txt") == b"b"
    cairn("run", "--once")
    assert len(cairn.jobs("copy")) == 2


@pytest.mark.embedded_only("drives cairn run, which a server does itself")
def test_run_cron_ticks_a_cron_input_by_hand(cairn: Cairn) -> None:
    lister = ["bash", "-c", 'ls "$CAIRN_PFS/tick" > "$CAIRN_PFS/out/ticks"']
    create(cairn, pipeline("clock", {"cron": {"name": "tick", "spec": "never"}}, lister))
    assert [r["name"] for r in cairn.raw("list", "repo")] == ["clock", "clock_tick"]

    cairn("run", "cron", "clock")

    (tick,) = paths(cairn, "clock_tick@master")
    assert re.fullmatch(r"/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", tick)
    assert cairn.get("clock@master:/ticks").decode().split() == [tick.lstrip("/")]
    cairn.fails("run", "cron", "nosuch")


def test_moving_an_input_branch_back_brings_the_output_back(cairn: Cairn) -> None:
    seed_repo(cairn, "words", {"a.txt": "a"})
    create(cairn, pipeline("copy", pfs("words"), ["bash", "-c", COPY]))
    cairn.put("words@master:/b.txt", "b")
    assert paths(cairn, "copy@master") == ["/a.txt", "/b.txt"]

    cairn("create", "branch", "words@master", "--head", "master^")

    # embedded, the move ran the job before returning; a server's worker runs it just after
    deadline = time.monotonic() + 60
    while paths(cairn, "copy@master") != ["/a.txt"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert paths(cairn, "copy@master") == ["/a.txt"]
    assert newest_job(cairn, "copy")["state"] == "success"


def test_delete_pipeline_removes_it_and_its_output_repo(cairn: Cairn) -> None:
    cairn.write("copy.sh", COPY_SH)
    seed_repo(cairn, "words", {"a.txt": "a"})
    create(
        cairn,
        pipeline("copy", pfs("words"), ["bash", "copy.sh"]),
        pipeline("again", pfs("copy"), ["bash", "-c", "true"]),
    )
    cairn.fails("delete", "pipeline", "copy")

    cairn("delete", "pipeline", "again")
    cairn("delete", "pipeline", "copy")

    assert cairn.raw("list", "pipeline") == []
    assert [r["name"] for r in cairn.raw("list", "repo")] == ["words"]
    cairn("delete", "repo", "words")


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


# -- limits and unreadable specs ---------------------------------------------------------------
def nested_cross(depth: int) -> dict[str, Any]:
    node = pfs("words")
    for _ in range(depth):
        node = {"cross": [node]}
    return node


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("deep.json", json.dumps(pipeline("deep", nested_cross(150), ["true"]))),
        ("lists.json", "[" * 10_000 + "]" * 10_000),
        ("lists.yaml", "pipeline: " + "[" * 10_000),
    ],
    ids=["150-crosses", "json-lists", "yaml-lists"],
)
def test_deeply_nested_specs_are_refused_in_one_line(
    spec_store: Cairn, name: str, text: str
) -> None:
    spec_file = spec_store.write(name, text)

    refused = spec_store.fails("create", "pipeline", "-f", str(spec_file))

    assert "Traceback" not in refused.stderr
    assert spec_store.raw("list", "pipeline") == []


@pytest.mark.embedded_only("drives cairn run, which a server does itself")
def test_a_spec_an_older_cairn_stored_unreadable_is_listed_broken_skipped_and_deletable(
    cairn: Cairn,
) -> None:
    from sqlalchemy import insert

    from cairn.catalog.schema import pipeline_versions, pipelines
    from cairn.client import Client

    cairn.write("copy.sh", COPY_SH)
    seed_repo(cairn, "words", {"a.txt": "a"})
    create(cairn, pipeline("copy", pfs("words"), ["bash", "copy.sh"]))
    # What an older cairn stored for 150 nested crosses: accepted, and unreadable since.
    body = json.dumps(pipeline("deep", nested_cross(150), ["true"]), sort_keys=True)
    client = Client(cairn.home, auto_run=False)
    try:
        client.data.create_repo("deep", type="pipeline")
        with client.data.catalog.write() as conn:
            conn.execute(
                insert(pipeline_versions).values(
                    name="deep", version=1, spec=body, salt="s", created=1.0
                )
            )
            conn.execute(
                insert(pipelines).values(
                    name="deep",
                    version=1,
                    spec=body,
                    spec_dir=str(cairn.root),
                    salt="s",
                    state="running",
                    created=1.0,
                    updated=1.0,
                )
            )
    finally:
        client.data.catalog.dispose()

    table = cairn("list", "pipeline").stdout
    listed = {p["name"]: p["state"] for p in cairn.raw("list", "pipeline")}
    put = cairn("put", "file", "words@master:/b.txt", "-f", "-", input="b")
    ran = cairn("run", "--once")

    assert "broken" in table
    assert listed == {"copy": "running", "deep": "broken"}
    assert "deep" in put.stderr and "Traceback" not in put.stderr + ran.stderr
    assert cairn.get("copy@master:/b.txt") == b"b"
    assert "Traceback" not in cairn.fails("inspect", "pipeline", "deep").stderr

    cairn("delete", "pipeline", "deep", "--force")

    assert [p["name"] for p in cairn.raw("list", "pipeline")] == ["copy"]
    assert sorted(r["name"] for r in cairn.raw("list", "repo")) == ["copy", "words"]


# -- secrets -------------------------------------------------------------------------------------
SECRET = "s3cr3t-t0ken-value"


def test_secrets_reach_the_transform_and_are_masked_wherever_cairn_prints(cairn: Cairn) -> None:
    seed_repo(cairn, "words", {"a.txt": "a"})
    cairn.write("token.txt", "from-a-file")
    cairn(
        "create", "secret", "api", "--from-literal", f"token={SECRET}", "--from-file", "token.txt"
    )
    use = 'printf %s "$API_TOKEN" > "$CAIRN_PFS/out/token"; echo "token is $API_TOKEN"'
    transform = {
        "cmd": ["bash", "-c", use],
        "env": {"PASTED": SECRET},  # a stored value pasted into env by mistake is masked too
        "secrets": [{"name": "api", "key": "token", "env_var": "API_TOKEN"}],
    }
    create(cairn, pipeline("use", pfs("words", "/"), [], transform=transform))

    printed = [
        cairn("inspect", "pipeline", "use").stdout,
        cairn("inspect", "pipeline", "use", "--raw").stdout,
        cairn("list", "pipeline", "--raw").stdout,
        cairn("logs", "-p", "use").stdout,
        cairn("list", "secret", "--raw").stdout,
    ]

    assert cairn.get("use@master:/token") == SECRET.encode()
    assert not [text for text in printed if SECRET in text]
    assert "token is ***" in printed[3]
    assert json.loads(printed[4]) == [{"name": "api", "keys": ["token", "token.txt"]}]
    assert (cairn.home / "secrets.json").stat().st_mode & 0o777 == 0o600
    cairn.fails("create", "secret", "api", "--from-literal", "token=again")

    cairn("delete", "secret", "api")

    assert json.loads((cairn.home / "secrets.json").read_text()) == {}


# -- input combinators -------------------------------------------------------------------------
def test_join_pairs_files_by_capture_group(cairn: Cairn) -> None:
    seed_repo(cairn, "texts", {"a.txt": "ta", "b.txt": "tb", "c.txt": "tc"})
    seed_repo(cairn, "tables", {"a.csv": "ca", "b.csv": "cb", "d.csv": "cd"})
    pair = (
        'shopt -s nullglob; for t in "$CAIRN_PFS"/texts/*; do s=$(basename "$t" .txt); '
        'cat "$t" "$CAIRN_PFS"/tables/* > "$CAIRN_PFS/out/$s"; done'
    )
    inner = {
        "join": [pfs("texts", "/(*).txt", join_on="$1"), pfs("tables", "/(*).csv", join_on="$1")]
    }
    outer = {
        "join": [
            pfs("texts", "/(*).txt", join_on="$1", outer_join=True),
            pfs("tables", "/(*).csv", join_on="$1"),
        ]
    }

    create(
        cairn,
        pipeline("inner", inner, ["bash", "-c", pair]),
        pipeline("outer", outer, ["bash", "-c", pair]),
    )

    assert newest_job(cairn, "inner")["total"] == 2
    assert files_of(cairn, "inner@master") == {"a": b"taca", "b": b"tbcb"}
    assert newest_job(cairn, "outer")["total"] == 3
    assert files_of(cairn, "outer@master") == {"a": b"taca", "b": b"tbcb", "c": b"tc"}
    pairs = sorted(
        sorted(i["path"] for i in d["inputs"])
        for d in datums(cairn, "inner", newest_job(cairn, "inner")["id"])
    )
    assert pairs == [["/a.csv", "/a.txt"], ["/b.csv", "/b.txt"]]


def test_group_gathers_files_by_key(cairn: Cairn) -> None:
    seed_repo(
        cairn,
        "logs",
        {
            "x-1.log": "1",
            "x-2.log": "2",
            "y-1.log": "3",
            "z-1.log": "4",
            "z-2.log": "5",
            "z-3.log": "6",
        },
    )
    count = (
        'f=$(ls "$CAIRN_PFS"/logs | head -n1); k=${f%%-*}; '
        'ls "$CAIRN_PFS"/logs | wc -l | tr -d " " > "$CAIRN_PFS/out/$k"'
    )

    create(
        cairn,
        pipeline(
            "grouped", {"group": [pfs("logs", "/(*)-*.log", group_by="$1")]}, ["bash", "-c", count]
        ),
    )

    job = newest_job(cairn, "grouped")
    assert (job["state"], job["total"]) == ("success", 3)
    assert files_of(cairn, "grouped@master") == {"x": b"2\n", "y": b"1\n", "z": b"3\n"}


def test_union_processes_the_datums_of_every_input(cairn: Cairn) -> None:
    cairn.write(
        "both.sh",
        'for d in "$CAIRN_PFS"/*/; do n=$(basename "$d"); '
        '[ "$n" = out ] || cp "$d"* "$CAIRN_PFS/out/"; done\n',
    )
    seed_repo(cairn, "left", {"a.txt": "a", "b.txt": "b"})
    seed_repo(cairn, "right", {"c.txt": "c", "d.txt": "d", "e.txt": "e"})

    create(cairn, pipeline("both", {"union": [pfs("left"), pfs("right")]}, ["bash", "both.sh"]))

    job = newest_job(cairn, "both")
    assert (job["state"], job["total"], job["processed"]) == ("success", 5, 5)
    assert files_of(cairn, "both@master") == {
        n: n[0].encode() for n in ("a.txt", "b.txt", "c.txt", "d.txt", "e.txt")
    }


def test_union_of_inputs_sharing_a_name(cairn: Cairn) -> None:
    seed_repo(cairn, "left", {"a.txt": "a", "b.txt": "b"})
    seed_repo(cairn, "right", {"c.txt": "c"})
    cp = 'cp "$CAIRN_PFS"/in/* "$CAIRN_PFS/out/"'

    create(
        cairn,
        pipeline(
            "both", {"union": [pfs("left", name="in"), pfs("right", name="in")]}, ["bash", "-c", cp]
        ),
    )

    assert newest_job(cairn, "both")["total"] == 3
    assert files_of(cairn, "both@master") == {"a.txt": b"a", "b.txt": b"b", "c.txt": b"c"}


def test_parallelism_constant_runs_datums_concurrently(cairn: Cairn) -> None:
    seed_repo(cairn, "words", {"a.txt": "a", "b.txt": "b"})
    timed = (
        'n=$(basename "$CAIRN_PFS"/words/*); s=$(date +%s.%N); sleep 1.5; '
        'echo "$s $(date +%s.%N)" > "$CAIRN_PFS/out/$n"'
    )

    create(
        cairn,
        pipeline("par", pfs("words"), ["bash", "-c", timed], parallelism_spec={"constant": 2}),
    )

    assert newest_job(cairn, "par")["state"] == "success"
    spans = [tuple(map(float, v.split())) for v in files_of(cairn, "par@master").values()]
    assert len(spans) == 2
    assert max(s for s, _ in spans) < min(e for _, e in spans), "datums did not overlap"


def test_transform_runs_in_the_spec_folder(cairn: Cairn, cairn_mode: str) -> None:
    seed_repo(cairn, "words", {"a.txt": "a"})
    cairn.write("specs/helper.txt", "beside the spec")
    spec = pipeline("where", pfs("words"), ["bash", "-c", 'cp helper.txt "$CAIRN_PFS/out/"'])
    cairn.write("specs/where.json", json.dumps(spec))

    cairn("create", "pipeline", "-f", "specs/where.json")

    assert cairn.get("where@master:/helper.txt") == b"beside the spec"
    spec_dir = cairn.raw("inspect", "pipeline", "where")["spec_dir"]
    if cairn_mode == "remote":  # the folder travelled: the server's copy of it, by content
        assert re.fullmatch(rf"{re.escape(str(cairn.home))}/code/[0-9a-f]{{64}}", spec_dir)
    else:
        assert spec_dir == str(cairn.root / "specs")


def test_union_of_two_branches_of_one_repo_keeps_both_datums(cairn: Cairn) -> None:
    seed(cairn, "u", {"a.txt": "master"})
    seed(cairn, "u", {"a.txt": "dev"}, branch="dev")
    tag = 'echo hi > "$CAIRN_PFS/out/$(cat "$CAIRN_PFS/u/a.txt").txt"'
    union = {"union": [pfs("u", branch="master"), pfs("u", branch="dev")]}

    create(cairn, pipeline("both", union, ["bash", "-c", tag]))

    assert counts(newest_job(cairn, "both")) == ("success", 2, 0, 2)
    assert paths(cairn, "both@master") == ["/dev.txt", "/master.txt"]


# -- lineage across history --------------------------------------------------------------------
def test_file_lineage_of_an_old_output_commit(cairn: Cairn) -> None:
    cairn.write("copy.sh", COPY_SH)
    first = seed_repo(cairn, "words", {"a.txt": "one"})
    create(cairn, pipeline("copy", pfs("words"), ["bash", "copy.sh"]))
    cairn.put("words@master:/a.txt", "two")
    cairn.put("words@master:/a.txt", "one")

    lineage = cairn.raw("lineage", f"copy@{first}:/a.txt")

    assert lineage["job"] == first
    assert [i["commit"] for i in lineage["inputs"]] == [first]


def test_lineage_survives_deleting_the_input_repo(cairn: Cairn) -> None:
    commit = seed_repo(cairn, "words", {"a.txt": "a"})
    create(cairn, pipeline("copy", pfs("words"), ["bash", "-c", COPY]))

    cairn("delete", "repo", "words", "--force")

    assert f"words@{commit}" in cairn("lineage", "copy@master").stdout
    [source] = cairn.raw("lineage", "copy@master")["upstream"]["children"]
    assert (source["repo"], source["commit"], source["deleted"]) == ("words", commit, True)


# -- the sandbox -----------------------------------------------------------------------------
SANDBOX_PY = """\
import json, os, socket, sys

def attempt(action):
    try:
        action()
        return "allowed"
    except OSError as exc:
        return type(exc).__name__

def write(path):
    with open(path, "w") as f:
        f.write("x")

result = {
    "pfs": os.environ["CAIRN_PFS"],
    "read": open("/pfs/words/a.txt").read(),
    "write_input": attempt(lambda: write("/pfs/words/a.txt")),
    "create_in_input": attempt(lambda: write("/pfs/words/new.txt")),
    "write_usr": attempt(lambda: write("/usr/cairn-sandbox-test")),
    "connect_host": attempt(
        lambda: socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3).close()),
    "connect_internet": attempt(
        lambda: socket.create_connection(("1.1.1.1", 53), timeout=3).close()),
}
with open("/pfs/out/result.json", "w") as f:
    json.dump(result, f)
"""


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
@pytest.mark.skipif(
    os.environ.get("CAIRN_SANDBOX", "").lower() in ("none", "off", "0"),
    reason="CAIRN_SANDBOX turns the sandbox off",
)
def test_sandbox_provides_pfs_and_blocks_writes_and_network(cairn: Cairn) -> None:
    seed_repo(cairn, "words", {"a.txt": "apple"})
    cairn.write("probe.py", SANDBOX_PY)
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        socket.create_connection(("127.0.0.1", port), timeout=3).close()  # reachable here

        create(
            cairn,
            pipeline("probe", pfs("words"), ["python3", "probe.py", str(port)], datum_tries=1),
        )

    assert newest_job(cairn, "probe")["state"] == "success"
    result = json.loads(cairn.get("probe@master:/result.json"))
    assert result["pfs"] == "/pfs"
    assert result["read"] == "apple"
    for check in (
        "write_input",
        "create_in_input",
        "write_usr",
        "connect_host",
        "connect_internet",
    ):
        assert result[check] != "allowed", check
    assert cairn.get("words@master:/a.txt") == b"apple"
    assert not Path("/usr/cairn-sandbox-test").exists()
