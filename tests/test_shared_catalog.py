"""Runners on two machines, sharing one catalog and one object store, never run one job
twice: each ``Client`` has its own store folder (as on two machines), so only a lock in
the catalog (``Catalog.lock``) can keep their ``run_pipelines`` apart."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from cairn import Client
from cairn.catalog.schema import jobs

# One round of `cairn run` in a store folder, started when the file argv[2] appears, so
# that both runners look for stale pipelines at the same moment.
_RUNNER = """
import sys, time
from pathlib import Path
from cairn import Client
client = Client(Path(sys.argv[1]), auto_run=False)
print("ready", flush=True)
while not Path(sys.argv[2]).exists():
    time.sleep(0.01)
client.run_forever(once=True)
"""


def _spec(name: str, repo: str, tally: Path) -> dict:
    # Each datum appends a line to a file outside the store: the count of executions.
    cmd = (
        f'for f in "$CAIRN_PFS"/{repo}/*; do echo "{name} ${{f##*/}}" >> {tally}; done; '
        f'sleep 0.2; cp -r "$CAIRN_PFS/{repo}/." "$CAIRN_PFS/out/"'
    )
    return {
        "pipeline": {"name": name},
        "transform": {"cmd": ["bash", "-c", cmd]},
        "parallelism_spec": {"constant": 1},
        "datum_tries": 1,
        "input": {"pfs": {"repo": repo, "glob": "/*"}},
    }


@pytest.mark.parametrize("catalog", ["sqlite", "postgresql"])
def test_two_runners_on_one_catalog_run_each_job_once(
    tmp_path: Path, catalog: str, request: pytest.FixtureRequest, monkeypatch
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    if catalog == "postgresql":
        catalog_url = request.getfixturevalue("make_postgres_url")()
    else:
        catalog_url = f"sqlite:///{shared / 'catalog.db'}"
    config = f'[store]\nobjects = "{(shared / "objects").as_uri()}"\ncatalog = "{catalog_url}"\n'
    homes = [tmp_path / name for name in ("setup", "one", "two")]
    for home in homes:
        home.mkdir()
        (home / "config.toml").write_text(config)
    for name in ("CAIRN_OBJECTS_URL", "CAIRN_CATALOG_URL", "CAIRN_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CAIRN_SANDBOX", "none")  # the transforms write the tally file
    tally = tmp_path / "tally"

    setup = Client(homes[0], auto_run=False)
    setup.repos.create("words")
    setup.files.put("words@master:/", {"a": b"1", "b": b"2", "c": b"3"})
    setup.pipelines.create([_spec("upper", "words", tally), _spec("lower", "upper", tally)])
    assert not tally.exists()

    go = tmp_path / "go"
    runners = [
        subprocess.Popen(
            [sys.executable, "-c", _RUNNER, str(home), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ.copy(),
        )
        for home in homes[1:]
    ]
    try:
        for runner in runners:
            assert runner.stdout is not None
            assert runner.stdout.readline() == "ready\n"
        go.touch()
        for runner in runners:
            _, err = runner.communicate(timeout=60)
            assert runner.returncode == 0, err
    finally:
        for runner in runners:
            runner.kill()
            runner.wait()

    executions = sorted(tally.read_text().splitlines())
    assert executions == ["lower a", "lower b", "lower c", "upper a", "upper b", "upper c"]
    with setup.data.catalog.read() as conn:
        ran = sorted(conn.execute(select(jobs.c.pipeline, jobs.c.state)).all())
    assert ran == [("lower", "success"), ("upper", "success")]
    setup.data.catalog.dispose()
