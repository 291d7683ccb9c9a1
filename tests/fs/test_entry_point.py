"""``pandas.read_csv("cairn://...")`` in a fresh interpreter that never imports cairn
itself: fsspec finds the filesystem by the ``fsspec.specs`` entry point pyproject.toml
declares, and the filesystem picks its store as the CLI does (``CAIRN_HOME``, or
``CAIRN_URL`` for a server)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from sklearn.datasets import load_iris
from tests.team_server import team_server

from cairn.api.protocol import ClientProtocol
from cairn.api.remote.client import RemoteClient
from cairn.client import Client

ROOT = Path(__file__).resolve().parents[2]

READER = """
import sys
import pandas
assert "cairn" not in sys.modules
now = pandas.read_csv("cairn://training@master/iris.csv")
old = pandas.read_csv(sys.argv[1])
print(len(now), len(old))
"""


def declared_entry_point(folder: Path) -> Path:
    """A distribution's metadata holding pyproject.toml's ``fsspec.specs`` entry points,
    as installing the checkout writes it, so the test does not depend on how (or
    whether) this checkout is installed."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["entry-points"]["fsspec.specs"]
    info = folder / "cairn_fs_entry_point-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cairn-fs-entry-point\n")
    lines = ["[fsspec.specs]", *(f"{k} = {v}" for k, v in specs.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return folder


def write_two_versions(client: ClientProtocol) -> str:
    iris = load_iris(as_frame=True).frame
    client.repos.create("training")
    client.files.put("training@master:/iris.csv", iris.to_csv(index=False).encode())
    first = client.commits.get("training@master").id
    client.files.put("training@master:/iris.csv", iris.head(7).to_csv(index=False).encode())
    return f"cairn://training@{first}/iris.csv"


def read_in_a_fresh_interpreter(tmp_path: Path, old: str, **env: str) -> list[str]:
    path = [str(declared_entry_point(tmp_path / "meta")), str(ROOT / "src")]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    clean.update(env, PYTHONPATH=os.pathsep.join(path), HOME=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", READER, old],
        env=clean,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.parametrize("kind", ["embedded", "remote"])
def test_pandas_reads_cairn_urls_without_importing_cairn(tmp_path: Path, kind: str) -> None:
    home = tmp_path / "home"
    if kind == "embedded":
        client = Client(home, auto_run=False)
        try:
            old = write_two_versions(client)
        finally:
            client.data.catalog.dispose()
        assert read_in_a_fresh_interpreter(tmp_path, old, CAIRN_HOME=str(home)) == ["7", "150"]
    else:
        with team_server(home, worker=False) as url, RemoteClient(url, auto_run=False) as c:
            old = write_two_versions(c)
            got = read_in_a_fresh_interpreter(tmp_path, old, CAIRN_URL=url)
        assert got == ["7", "150"]
