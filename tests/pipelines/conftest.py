"""Fixtures of the pipelines tests: a DataStore and Pipelines in-process, over a SQLite file
catalog and a local object store under ``tmp_path``, with datums run on the host
(``CAIRN_SANDBOX=none``) unless a test asks for the sandbox."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from cairn.catalog import CatalogChunkIndex, open_catalog
from cairn.data import CommitInfo, DataStore, FileEntry, NotFound, Ref
from cairn.pipelines import DatumInfo, JobInfo, Pipelines, PipelineSpec, Reporter, load_specs
from cairn.pipelines.sandbox import sandbox_available
from cairn.storage import ChunkStore, LocalObjectStore

# Copies every input folder of the datum into the output, so output paths equal input paths.
COPY = 'for d in "$CAIRN_PFS"/*; do [ "${d##*/}" = out ] || cp -r "$d/." "$CAIRN_PFS/out/"; done'


@pytest.fixture
def host_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Datums run on the host: faster, and the same wherever the tests run.
    ``sandbox_available`` is cached per process, so the cache is cleared both ways."""
    monkeypatch.setenv("CAIRN_SANDBOX", "none")
    sandbox_available.cache_clear()
    yield
    sandbox_available.cache_clear()


@pytest.fixture
def data(tmp_path: Path) -> Iterator[DataStore]:
    catalog = open_catalog(f"sqlite:///{tmp_path}/c.db")
    yield DataStore(
        catalog,
        ChunkStore(
            LocalObjectStore(tmp_path / "obj", fsync=False),
            avg_size=1024,
            index=CatalogChunkIndex(catalog),
        ),
    )
    catalog.dispose()


@pytest.fixture
def pipelines(data: DataStore, tmp_path: Path, host_only: None) -> Pipelines:
    return Pipelines(
        data,
        data.catalog,
        work_dir=tmp_path / "work",
        parallelism=2,
    )


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    """The folder a spec file would sit in; transforms run there."""
    folder = tmp_path / "specs"
    folder.mkdir()
    return folder


@pytest.fixture
def make_spec() -> Callable[..., PipelineSpec]:
    """``make_spec(name, input, cmd=None, **fields)``: a spec parsed from YAML the way
    ``create pipeline`` parses it. ``input`` is a repo name (read with ``glob``, default
    ``/*``) or a whole ``input`` mapping; ``cmd`` a shell script (run by ``bash -c``) or
    an argv list, default COPY; ``transform`` fields other than cmd go in ``transform``."""

    def make(
        name: str,
        input: str | Mapping[str, Any] = "in",
        cmd: str | list[str] | None = None,
        *,
        glob: str = "/*",
        transform: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> PipelineSpec:
        argv = ["bash", "-c", cmd or COPY] if cmd is None or isinstance(cmd, str) else cmd
        doc = {
            "pipeline": {"name": name},
            "transform": {"cmd": argv, **(transform or {})},
            "input": {"pfs": {"repo": input, "glob": glob}} if isinstance(input, str) else input,
            **fields,
        }
        return load_specs(yaml.safe_dump(doc, sort_keys=False))[0]

    return make


@pytest.fixture
def put(data: DataStore) -> Callable[..., CommitInfo]:
    """``put(repo, {path: bytes}, target=None)``: one commit writing the files; the repo is
    created on first use."""

    def put_files(repo: str, files: Mapping[str, bytes], target: str | None = None) -> CommitInfo:
        try:
            data.inspect_repo(repo)
        except NotFound:
            data.create_repo(repo)
        return data.put_files(repo, target, [(p, io.BytesIO(b)) for p, b in files.items()])

    return put_files


@pytest.fixture
def entries(data: DataStore) -> Callable[..., dict[str, FileEntry]]:
    """``entries(repo, commitish=None)``: path -> FileEntry of a commit (default the head of
    master); {} when the branch has no commit."""

    def read(repo: str, commitish: str | None = None) -> dict[str, FileEntry]:
        try:
            commit = data.resolve(Ref.parse(repo, commitish))
        except NotFound:
            return {}
        return dict(data.trees.walk(commit.tree))

    return read


@pytest.fixture
def contents(
    data: DataStore, entries: Callable[..., dict[str, FileEntry]]
) -> Callable[..., dict[str, bytes]]:
    """``contents(repo, commitish=None)``: path -> bytes of a commit."""

    def read(repo: str, commitish: str | None = None) -> dict[str, bytes]:
        return {
            path: b"".join(data.chunks.read(entry.content))
            for path, entry in entries(repo, commitish).items()
        }

    return read


class Recorder(Reporter):
    """A Reporter that keeps every call as (method, args)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def job_started(self, job: JobInfo, to_process: int) -> None:
        self.calls.append(("job_started", (job, to_process)))

    def datum_done(self, job: JobInfo, datum: DatumInfo) -> None:
        self.calls.append(("datum_done", (job, datum)))

    def job_finished(self, job: JobInfo) -> None:
        self.calls.append(("job_finished", (job,)))

    def note(self, pipeline: str, message: str) -> None:
        self.calls.append(("note", (pipeline, message)))

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def args(self, name: str) -> list[tuple[Any, ...]]:
        return [args for n, args in self.calls if n == name]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()
