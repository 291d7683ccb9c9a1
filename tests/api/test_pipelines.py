"""Pipelines and jobs through the face: a small copy pipeline, its jobs, datums, logs and
lineage."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest

from cairn.api import DatumState, JobState
from cairn.api.protocol import ClientProtocol
from cairn.data import InvalidReference, NotFound
from cairn.pipelines import SpecError
from cairn.storage.errors import FieldError

from .helpers import roundtrips

COPY = (
    'for f in "$CAIRN_PFS"/words/*; do echo "copy $(basename "$f")"; '
    'cp "$f" "$CAIRN_PFS/out/"; done'
)


def spec(cmd: str = COPY) -> dict[str, Any]:
    return {
        "pipeline": {"name": "copy"},
        "transform": {"cmd": ["bash", "-c", cmd]},
        "datum_tries": 1,
        "input": {"pfs": {"repo": "words", "glob": "/*"}},
    }


def test_a_pipeline_runs_and_its_jobs_say_what_happened(
    client: ClientProtocol, tmp_path: Path
) -> None:
    client.repos.create("words")
    client.files.put("words@master:/", {"a.txt": b"alpha", "b.txt": b"beta"})
    [made] = client.pipelines.create(spec(), spec_dir=tmp_path)
    assert (made.name, made.version, made.state) == ("copy", 1, "running")
    assert [p.name for p in client.pipelines.list()] == ["copy"]
    assert client.files.read("copy@master:/b.txt") == b"beta"
    [job] = client.jobs.list("copy")
    assert job.state is JobState.SUCCESS and isinstance(job.state, StrEnum)
    assert roundtrips(job)["state"] == "success"
    ref = f"copy@{job.id}"
    assert client.jobs.get(ref) == job
    assert client.jobs.wait(ref, timeout=5).state is JobState.SUCCESS
    datums = client.jobs.datums(ref)
    assert [d.state for d in datums] == [DatumState.SUCCESS, DatumState.SUCCESS]
    assert any("copy a.txt" in log.text for log in client.jobs.logs(ref))
    assert client.jobs.logs("copy") == client.jobs.logs(ref)  # the latest job
    with pytest.raises(InvalidReference):
        client.jobs.get("copy")
    with pytest.raises(NotFound):
        client.jobs.get("copy@" + "0" * 32)

    # A second put skips the datum it already processed.
    client.files.put("words@master:/c.txt", b"gamma")
    newest = client.jobs.list("copy")[0]
    states = {d.id: d.state for d in client.jobs.datums(f"copy@{newest.id}")}
    assert sorted(states.values()) == [DatumState.SKIPPED, DatumState.SKIPPED, DatumState.SUCCESS]
    # a page of them, by state or id prefix, as the console shows a job of many datums
    newest_ref = f"copy@{newest.id}"
    ids = sorted(states)
    assert [d.id for d in client.jobs.datums(newest_ref, offset=1, limit=1)] == ids[1:2]
    skipped = client.jobs.datums(newest_ref, state="skipped")
    assert [d.id for d in skipped] == [i for i in ids if states[i] == DatumState.SKIPPED]
    assert [d.id for d in client.jobs.datums(newest_ref, datum=ids[2][:10])] == ids[2:]
    assert client.jobs.datums(newest_ref, state="failed", limit=1) == []
    with pytest.raises(FieldError):
        client.jobs.datums(newest_ref, state="exploded")
    with pytest.raises(FieldError):
        client.jobs.datums(newest_ref, offset=-1)

    lineage = client.files.lineage("copy@master:/c.txt")
    assert lineage.pipeline == "copy" and lineage.job == newest.id
    [source] = lineage.inputs
    assert (source.repo, source.path) == ("words", "/c.txt")
    tree = client.commits.lineage("copy@master")
    assert [c.repo for c in tree.upstream.children] == ["words"]
    assert tree.upstream.children[0].via == "words"


def test_stop_start_update_delete(client: ClientProtocol, tmp_path: Path) -> None:
    client.repos.create("words")
    client.pipelines.create(spec(), spec_dir=tmp_path)
    assert client.pipelines.stop("copy").state == "paused"
    client.files.put("words@master:/a.txt", b"alpha")
    with pytest.raises(NotFound):
        client.files.read("copy@master:/a.txt")  # paused: the commit waits
    assert client.pipelines.start("copy").state == "running"
    assert client.files.read("copy@master:/a.txt") == b"alpha"
    [updated] = client.pipelines.update(
        spec('cp "$CAIRN_PFS"/words/* "$CAIRN_PFS/out/"'), spec_dir=tmp_path, reprocess=True
    )
    assert updated.version == 2 and client.pipelines.get("copy").version == 2
    client.pipelines.delete("copy")
    with pytest.raises(NotFound):
        client.pipelines.get("copy")
    with pytest.raises(NotFound):
        client.repos.get("copy")


def test_a_spec_file_runs_its_transform_in_its_folder(
    client: ClientProtocol, tmp_path: Path
) -> None:
    import json

    (tmp_path / "copy.sh").write_text(COPY)
    body = spec()
    body["transform"]["cmd"] = ["bash", "copy.sh"]
    path = tmp_path / "copy.json"
    path.write_text(json.dumps(body))
    client.repos.create("words")
    client.files.put("words@master:/a.txt", b"alpha")
    client.pipelines.create(path)
    assert client.files.read("copy@master:/a.txt") == b"alpha"


def test_specs_given_as_values_run_in_spec_dir(client: ClientProtocol, tmp_path: Path) -> None:
    folder = tmp_path / "code"
    folder.mkdir()
    folder.chmod(0o755)
    (folder / "copy.sh").write_text(COPY)
    body = spec()
    body["transform"]["cmd"] = ["bash", "copy.sh"]
    client.repos.create("words")
    client.files.put("words@master:/a.txt", b"alpha")
    client.pipelines.create([body], spec_dir=folder)
    assert client.files.read("copy@master:/a.txt") == b"alpha"
    body["transform"]["cmd"] = ["bash", "missing.sh"]
    with pytest.raises(SpecError):
        client.pipelines.update({**body, "datum_triez": 1}, spec_dir=folder)
