"""The facade: one Python API over data and pipelines, used by the CLI and by programs.

``Client.open()`` finds the embedded store the way git finds ``.git``: the
``$CAIRN_HOME`` folder if set, else the nearest ``.cairn/`` folder in the
current folder or a parent, else a new ``.cairn/`` in the current folder.
The folder holds ``catalog.db`` (SQLite), ``objects/`` (chunks, trees, logs),
``work/`` (datums' scratch space) and ``pipelines.lock``.

Every write that finishes a commit (a put without an open commit, ``finish
commit``, creating or updating a pipeline) then runs the pipelines downstream
of it, in this process, before returning, unless ``auto_run`` is False (set
``CAIRN_AUTO_RUN=0`` when a ``cairn run`` process does that work).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from cairn.catalog import open_catalog
from cairn.data import (
    BranchInfo,
    CommitInfo,
    DataStore,
    FileChange,
    FileInfo,
    NotFound,
    Ref,
    RepoInfo,
    RepoInUse,
    parse_ref,
)
from cairn.pipelines import (
    JobInfo,
    PipelineError,
    PipelineInfo,
    Pipelines,
    Reporter,
    commit_lineage,
    file_lineage,
    load_spec_file,
)
from cairn.storage import ChunkStore, open_object_store

__all__ = ["Client", "find_home"]

HOME_DIR = ".cairn"


def find_home(start: Path | None = None) -> tuple[Path, bool]:
    """The store folder to use and whether it exists already (see the module doc)."""
    env = os.environ.get("CAIRN_HOME")
    if env:
        path = Path(env).expanduser().resolve()
        return path, (path / "catalog.db").exists()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / HOME_DIR / "catalog.db").exists():
            return folder / HOME_DIR, True
    return here / HOME_DIR, False


class Client:
    """cairn's Python API. Reads go straight to ``data`` and ``pipelines``; writes go
    through the methods here so that they trigger pipelines."""

    def __init__(
        self, home: Path, *, reporter: Reporter | None = None, auto_run: bool | None = None
    ) -> None:
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        catalog = open_catalog(f"sqlite:///{self.home / 'catalog.db'}")
        objects = open_object_store((self.home / "objects").as_uri())
        self.data = DataStore(catalog, ChunkStore(objects))
        self.pipelines = Pipelines(
            self.data, catalog, work_dir=self.home / "work", lock_path=self.home / "pipelines.lock"
        )
        self.reporter = reporter or Reporter()
        if auto_run is None:
            auto_run = os.environ.get("CAIRN_AUTO_RUN", "1") not in ("0", "false", "no")
        self.auto_run = auto_run

    @classmethod
    def open(cls, home: str | Path | None = None, **kwargs: object) -> Client:
        """Open the store at ``home`` or the one ``find_home`` picks."""
        path = Path(home) if home else find_home()[0]
        return cls(path, **kwargs)  # type: ignore[arg-type]

    def run_pipelines(self) -> list[JobInfo]:
        """Run every stale pipeline to the end of the DAG; return the jobs."""
        return self.pipelines.propagate(self.reporter)

    def _after(self, commit: CommitInfo) -> CommitInfo:
        if self.auto_run and commit.state == "finished":
            self.run_pipelines()
        return commit

    # -- repos and branches ----------------------------------------------------------
    def create_repo(self, name: str, description: str = "") -> RepoInfo:
        return self.data.create_repo(name, description)

    def delete_repo(self, name: str, *, force: bool = False) -> None:
        """Delete a user repo. Raises RepoInUse while a pipeline reads it, unless ``force``;
        a pipeline's output repo goes with ``delete_pipeline``."""
        readers = self.pipelines.readers_of(name)
        if readers and not force:
            raise RepoInUse(
                f"repo {name!r} is read by pipeline {', '.join(readers)}; "
                "delete the pipeline first or pass --force"
            )
        if self.data.inspect_repo(name).type == "pipeline":
            self.pipelines.delete_pipeline(name, force=force)
        else:
            self.data.delete_repo(name)

    def create_branch(self, repo: str, name: str, head: str | None = None) -> BranchInfo:
        return self.data.create_branch(repo, name, head)

    # -- commits and files -----------------------------------------------------------
    def start_commit(
        self, repo: str, branch: str | None = None, description: str = ""
    ) -> CommitInfo:
        return self.data.start_commit(repo, branch or "master", description)

    def finish_commit(self, repo: str, commitish: str | None = None) -> CommitInfo:
        return self._after(self.data.finish_commit(repo, commitish))

    def wait_commit(
        self, repo: str, commitish: str | None = None, timeout: float | None = None
    ) -> CommitInfo:
        """Block until a commit is finished. For a pipeline's output repo, an id that has
        no commit yet is waited for too (its job may still be queued in a ``cairn run``
        process), until the job with that id fails. Raises TimeoutError, PipelineError."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                return self.data.wait_commit(repo, commitish, left)
            except NotFound:
                repo_info = self.data.inspect_repo(repo)
                if repo_info.type != "pipeline" or not commitish:
                    raise
                for job in self.pipelines.list_jobs(repo, commitish):
                    if job.state in ("failure", "unrunnable"):
                        raise PipelineError(
                            f"job {repo}@{job.id} {job.state}: no commit will come"
                        ) from None
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"no commit {repo}@{commitish} after {timeout}s")
            time.sleep(0.2)

    def put_files(
        self,
        repo: str,
        target: str | None,
        items: Iterable[tuple[str, BinaryIO]],
        *,
        append: bool = False,
        progress=None,
        description: str = "",
    ) -> CommitInfo:
        return self._after(
            self.data.put_files(
                repo, target, items, append=append, progress=progress, description=description
            )
        )

    def delete_files(self, repo: str, target: str | None, paths: Iterable[str]) -> CommitInfo:
        return self._after(self.data.delete_files(repo, target, paths))

    def copy_file(self, src: Ref, repo: str, target: str | None, path: str) -> CommitInfo:
        return self._after(self.data.copy_file(src, repo, target, path))

    def list_file(self, ref: str) -> list[FileInfo]:
        return self.data.list_file(parse_ref(ref))

    def diff_file(self, new: str, old: str | None = None) -> list[FileChange]:
        return self.data.diff_file(parse_ref(new), parse_ref(old) if old else None)

    # -- pipelines -------------------------------------------------------------------
    def create_pipelines(
        self, spec_file: str | Path, *, update: bool = False, reprocess: bool = False
    ) -> list[PipelineInfo]:
        """Create (or update) every pipeline in a JSON/YAML spec file, then run them.

        The transform runs in the spec file's folder, so ``cmd: [python3, edges.py]``
        finds ``edges.py`` beside the spec. Raises SpecError, NotFound, AlreadyExists.
        """
        path = Path(spec_file)
        specs = load_spec_file(path)
        created = self.pipelines.create_pipelines(
            specs, path.parent, update=update, reprocess=reprocess
        )
        if self.auto_run:
            self.run_pipelines()
        return created

    def delete_pipeline(self, name: str, *, force: bool = False) -> None:
        self.pipelines.delete_pipeline(name, force=force)

    def start_pipeline(self, name: str) -> PipelineInfo:
        info = self.pipelines.set_state(name, "running")
        if self.auto_run:
            self.run_pipelines()
        return info

    def stop_pipeline(self, name: str) -> PipelineInfo:
        return self.pipelines.set_state(name, "paused")

    # -- lineage ---------------------------------------------------------------------
    def lineage(self, ref: str) -> dict:
        """``{"upstream", "downstream"}`` commit trees for ``repo@commit``, or the datum
        and input files of one output file for ``repo@commit:/path``."""
        parsed = parse_ref(ref)
        if parsed.path:
            return file_lineage(self.data, self.pipelines, parsed)
        return commit_lineage(self.data, parsed)
