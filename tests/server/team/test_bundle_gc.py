"""``store.gc`` collects the code bundles of cairn server (``<home>/code/<id>/``) that no
pipeline runs in any more, with the grace period of the other objects."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

from cairn.api.bundles import pack

from .conftest import Server


def _send(server: Server, folder: Path, script: str) -> str:
    folder.mkdir()
    (folder / "run.sh").write_text(script)
    buf = io.BytesIO()
    pack(folder, buf)
    answer = server.http.post("/api/v1/code", content=buf.getvalue())
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id"])


def _spec(script: str = "run.sh") -> dict[str, object]:
    return {
        "pipeline": {"name": "copy"},
        "input": {"pfs": {"repo": "words", "glob": "/*"}},
        "transform": {"cmd": ["sh", script]},
    }


def _gc(server: Server, **args: object) -> dict[str, object]:
    answer = server.call("store", "gc", **args)
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["result"])


def _age(folder: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(folder, (then, then))


def test_gc_removes_the_bundles_no_pipeline_runs_in(server: Server, tmp_path: Path) -> None:
    code = server.home / "code"
    assert server.call("repos", "create", name="words").status_code == 200
    first = _send(server, tmp_path / "v1", "echo one\n")
    created = server.http.post("/api/v1/pipelines/create", json={"spec": _spec(), "code": first})
    assert created.status_code == 200, created.text
    second = _send(server, tmp_path / "v2", "echo two\n")
    updated = server.http.post("/api/v1/pipelines/update", json={"spec": _spec(), "code": second})
    assert updated.status_code == 200, updated.text
    never = _send(server, tmp_path / "v3", "echo never used\n")
    assert {first, second, never} <= {p.name for p in code.iterdir()}

    # young: every bundle stays
    kept = _gc(server, grace=3600)
    assert kept["removed"]["code"] == {"objects": 0, "bytes": 0}
    assert {first, second, never} <= {p.name for p in code.iterdir()}

    for bundle in (first, second, never):
        _age(code / bundle, 7200)
    would = _gc(server, grace=3600, dry_run=True)
    assert would["removed"]["code"]["objects"] == 2
    assert {first, never} <= {p.name for p in code.iterdir()}

    done = _gc(server, grace=3600)
    assert done["removed"]["code"] == {
        "objects": 2,
        "bytes": len("echo one\n") + len("echo never used\n"),
    }
    left = {p.name for p in code.iterdir()}
    assert second in left and first not in left and never not in left
    # the pipeline still runs in its bundle; a bundle asked for is there or not
    assert (
        server.call("pipelines", "get", name="copy").json()["result"]["spec_dir"].endswith(second)
    )
    assert server.http.get(f"/api/v1/code/{first}").json()["present"] is False
    assert server.http.get(f"/api/v1/code/{second}").json()["present"] is True


def test_a_bundle_found_or_replaced_is_young_again(server: Server, tmp_path: Path) -> None:
    code = server.home / "code"
    assert server.call("repos", "create", name="words").status_code == 200
    first = _send(server, tmp_path / "v1", "echo one\n")
    created = server.http.post("/api/v1/pipelines/create", json={"spec": _spec(), "code": first})
    assert created.status_code == 200, created.text
    spare = _send(server, tmp_path / "v2", "echo two\n")
    for bundle in (first, spare):
        _age(code / bundle, 7200)

    # a client that finds the spare bundle will use it; an update leaves the first unused
    # while a job may still run in it
    assert server.http.get(f"/api/v1/code/{spare}").json()["present"] is True
    updated = server.http.post("/api/v1/pipelines/update", json={"spec": _spec(), "code": spare})
    assert updated.status_code == 200, updated.text

    report = _gc(server, grace=3600)
    assert report["removed"]["code"]["objects"] == 0
    assert {first, spare} <= {p.name for p in code.iterdir()}
