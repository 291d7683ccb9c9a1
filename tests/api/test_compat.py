"""The names callers used before the face keep working for one release: those the README
taught warn, the others are forwarded quietly. Embedded only: a remote client never had
them."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from cairn.client import Client
from cairn.ml.runs import Runs
from cairn.pipelines import Pipelines


@pytest.fixture
def client(tmp_path: Path) -> Client:
    return Client(tmp_path / "home", auto_run=False)


def test_taught_client_methods_warn_and_still_work(client: Client, tmp_path: Path) -> None:
    with pytest.deprecated_call():
        client.create_repo("images")
    assert client.repos.get("images").name == "images"
    client.files.put("images@master:/a.png", b"a")
    with pytest.deprecated_call():
        assert client.lineage("images@master:/a.png")["path"] == "/a.png"
    spec = tmp_path / "copy.yaml"
    spec.write_text(
        "pipeline: {name: copy}\ntransform: {cmd: [bash, -c, 'true']}\n"
        "input: {pfs: {repo: images, glob: /*}}\n"
    )
    with pytest.deprecated_call():
        [made] = client.create_pipelines(spec)
    assert made.name == "copy"


def test_taught_names_of_replaced_classes_warn(client: Client) -> None:
    with pytest.deprecated_call():
        assert client.runs.sync() == []
    with pytest.deprecated_call():
        assert client.runs.for_datum("nothing", "0" * 64) is None


def test_other_old_names_are_forwarded_quietly(client: Client) -> None:
    client.repos.create("images")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert client.pipelines.list_pipelines() == []
        assert client.pipelines.list_jobs() == []
        assert client.runs.start("quiet").state == "running"
        assert client.deployments.list_deployments() == []
        assert client.monitors.list_monitors() == []
        assert isinstance(client.pipelines.work_dir, Path)
    with pytest.raises(AttributeError):
        client.runs.no_such_name  # noqa: B018
    assert isinstance(client.registry.runs, Runs)
    assert isinstance(client.registry.pipelines, Pipelines)
