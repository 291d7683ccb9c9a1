"""Fixtures of the ML tests: a Client over a fresh store under ``tmp_path`` whose datums run
on the host (``CAIRN_SANDBOX=none``), and factories that put files and create pipelines
whose transform is a Python script, as a user would."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from cairn.client import Client
from cairn.data import CommitInfo, NotFound
from cairn.pipelines import PipelineInfo
from cairn.pipelines.sandbox import sandbox_available


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """A Client on ``tmp_path/home`` that runs pipelines after every write."""
    monkeypatch.setenv("CAIRN_SANDBOX", "none")
    for name in ("CAIRN_PFS", "PACH_DATUM_ID", "CAIRN_DATUM_CHANNEL", "CAIRN_HOME"):
        monkeypatch.delenv(name, raising=False)
    sandbox_available.cache_clear()
    c = Client(tmp_path / "home", auto_run=True)
    yield c
    c.data.catalog.dispose()
    sandbox_available.cache_clear()


@pytest.fixture
def put(client: Client) -> Callable[..., CommitInfo]:
    """``put(repo, {path: bytes | str})``: one commit writing the files (the repo is created
    on first use); pipelines downstream run before it returns."""

    def put_files(repo: str, files: Mapping[str, bytes | str]) -> CommitInfo:
        try:
            client.data.inspect_repo(repo)
        except NotFound:
            client.create_repo(repo)
        items = [(p, io.BytesIO(b.encode() if isinstance(b, str) else b)) for p, b in files.items()]
        return client.put_files(repo, "master", items)

    return put_files


@pytest.fixture
def python_pipeline(client: Client, tmp_path: Path) -> Callable[..., PipelineInfo]:
    """``python_pipeline(name, input, script, update=False, **spec_fields)``: write
    ``script`` to ``<tmp>/specs/<name>/main.py`` and create (or update) a pipeline running
    it with this interpreter; ``input`` is a spec ``input`` mapping. Jobs run at once."""

    def make(
        name: str,
        input: Mapping[str, Any],
        script: str,
        *,
        update: bool = False,
        transform: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> PipelineInfo:
        folder = tmp_path / "specs" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "main.py").write_text(script)
        spec = {
            "pipeline": {"name": name},
            "transform": {"cmd": [sys.executable, "main.py"], **(transform or {})},
            "input": dict(input),
            **fields,
        }
        (folder / "spec.json").write_text(json.dumps(spec))
        [info] = client.create_pipelines(folder / "spec.json", update=update)
        return info

    return make
