"""Pipelines: create and manage pipelines, and run the jobs that keep them current.

Triggering is level-based: a pipeline is *stale* when no job has run for the
current heads of its input branches under its current spec version.
``propagate()`` runs every stale pipeline in DAG order, so one input commit
carries through to the end of the DAG; the CLI calls it after each write, and
``cairn run`` calls it in a loop for commits that arrive from other
processes. A file lock serializes propagations across processes.

Job state machine::

    running ──► success      output commit written, branch moved
            ├─► failure      nothing written; inputs and previous output untouched
            └─► killed       the process died mid-job; the inputs run again next time
    unrunnable               an upstream pipeline failed for these inputs

Jobs of one cause share one id: a job takes the id of its newest input commit
(the commit that triggered it, or the upstream job's output commit, which
carries that id on), and its output commit takes the same id.
"""

from __future__ import annotations

import fcntl
import graphlib
import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy import update as sql_update

from cairn.catalog import Catalog
from cairn.catalog.rows import row_to
from cairn.catalog.schema import datums, jobs, pipeline_versions, pipelines
from cairn.data import (
    AlreadyExists,
    CommitInfo,
    DataStore,
    FileEntry,
    NotFound,
    Provenance,
    Ref,
    RepoInUse,
    new_commit_id,
)
from cairn.pipelines.datums import Datum, build_datums, canonical_hash
from cairn.pipelines.environment import code_files, environment_fingerprint
from cairn.pipelines.errors import PipelineError, SpecError
from cairn.pipelines.executor import DatumResult, RunContext, run_datum
from cairn.pipelines.models import DatumInfo, JobInfo, PipelineInfo, Reporter
from cairn.pipelines.sandbox import sandbox_available
from cairn.pipelines.spec import PipelineSpec
from cairn.storage import ObjectNotFound

__all__ = ["Pipelines"]

_SUCCESS_STATES = ("success", "skipped")
Heads = dict[tuple[str, str], CommitInfo]


def _job_from_row(row: Any) -> JobInfo:
    return row_to(JobInfo, row, inputs=json.loads(row.input_key))


def _datum_from_row(row: Any) -> DatumInfo:
    return row_to(DatumInfo, row, inputs=json.loads(row.inputs))


class Pipelines:
    """The pipelines API over a DataStore.

    ``work_dir`` holds datums' scratch folders; ``lock_path`` (a file) serializes
    job runs across processes; ``parallelism`` overrides the default pool size
    (the number of cores) when a spec has no ``parallelism_spec``.
    """

    def __init__(
        self,
        data: DataStore,
        catalog: Catalog,
        *,
        work_dir: Path,
        lock_path: Path | None = None,
        parallelism: int | None = None,
    ) -> None:
        self.data = data
        self.catalog = catalog
        self.work_dir = Path(work_dir)
        self.lock_path = lock_path
        self.parallelism = parallelism or os.cpu_count() or 1
        self._thread_lock = threading.RLock()

    # -- pipeline CRUD -------------------------------------------------------------
    def create_pipeline(
        self,
        spec: PipelineSpec,
        spec_dir: str | Path,
        *,
        update: bool = False,
        reprocess: bool = False,
    ) -> PipelineInfo:
        """Create (or with ``update``, replace) a pipeline and its output repo.

        Raises AlreadyExists (create of an existing pipeline), NotFound (update of a
        missing one, or an input repo that does not exist), SpecError (cycles, an output
        repo that is a user repo). ``reprocess`` gives the pipeline a new salt so no
        earlier datum is reused.
        """
        name = spec.name
        for pfs in spec.input.pfs_inputs():
            self.data.inspect_repo(pfs.repo)
        existing = self._row(name)
        if existing and not update:
            raise AlreadyExists(f"pipeline {name!r} exists; use `cairn update pipeline`")
        if update and not existing:
            raise NotFound(f"pipeline {name!r} not found")
        self._check_acyclic([spec])
        now = time.time()
        salt = spec.salt or (existing.salt if existing and not reprocess else secrets.token_hex(16))
        if existing and reprocess and not spec.salt:
            salt = secrets.token_hex(16)
        if not existing:
            self._check_output_repo(spec)
            try:
                self.data.inspect_repo(name)
            except NotFound:
                self.data.create_repo(name, spec.description, type="pipeline")
        body = spec.canonical_json()
        with self.catalog.write() as conn:
            version = (existing.version + 1) if existing else 1
            conn.execute(
                insert(pipeline_versions).values(
                    name=name, version=version, spec=body, salt=salt, created=now
                )
            )
            values = dict(
                version=version,
                spec=body,
                spec_dir=str(Path(spec_dir).resolve()),
                salt=salt,
                updated=now,
            )
            if existing:
                conn.execute(sql_update(pipelines).where(pipelines.c.name == name).values(**values))
            else:
                conn.execute(
                    insert(pipelines).values(name=name, state="running", created=now, **values)
                )
        return self.inspect_pipeline(name)

    def create_pipelines(
        self,
        specs: list[PipelineSpec],
        spec_dir: str | Path,
        *,
        update: bool = False,
        reprocess: bool = False,
    ) -> list[PipelineInfo]:
        """Create (or update) several pipelines from one file, all or none: every spec is
        checked (names, input repos, output repos, cycles) before any is created. A spec may
        read the output of one created earlier in the same list. Raises as create_pipeline."""
        names = [s.name for s in specs]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise SpecError(
                    f"pipeline.name: {name!r} appears twice in one file", "pipeline.name"
                )
        existing = {p.name for p in self.list_pipelines()}
        for i, spec in enumerate(specs):
            if update and spec.name not in existing:
                raise NotFound(f"pipeline {spec.name!r} not found")
            if not update and spec.name in existing:
                raise AlreadyExists(f"pipeline {spec.name!r} exists; use `cairn update pipeline`")
            for pfs in spec.input.pfs_inputs():
                if pfs.repo not in names[:i]:
                    self.data.inspect_repo(pfs.repo)
            if spec.name not in existing:
                self._check_output_repo(spec)
        self._check_acyclic(specs)
        return [
            self.create_pipeline(s, spec_dir, update=update, reprocess=reprocess) for s in specs
        ]

    def _check_output_repo(self, spec: PipelineSpec) -> None:
        try:
            repo = self.data.inspect_repo(spec.name)
        except NotFound:
            return
        if repo.type != "pipeline":
            raise SpecError(
                f"pipeline.name: a user repo named {spec.name!r} exists; pick another name",
                "pipeline.name",
            )

    def _check_acyclic(self, specs: list[PipelineSpec]) -> None:
        new = {s.name for s in specs}
        graph = {p.name: set(p.input_repos) for p in self.list_pipelines() if p.name not in new}
        for spec in specs:
            graph[spec.name] = {p.repo for p in spec.input.pfs_inputs()}
        try:
            tuple(graphlib.TopologicalSorter(graph).static_order())
        except graphlib.CycleError as exc:
            raise SpecError(
                f"input: pipelines would form a cycle: {exc.args[1]}", "input"
            ) from None

    def _row(self, name: str) -> Any:
        with self.catalog.read() as conn:
            return conn.execute(select(pipelines).where(pipelines.c.name == name)).first()

    def inspect_pipeline(self, name: str) -> PipelineInfo:
        """Raises NotFound."""
        row = self._row(name)
        if row is None:
            raise NotFound(f"pipeline {name!r} not found; `cairn list pipeline` shows them")
        spec = PipelineSpec.model_validate_json(row.spec)
        return PipelineInfo(
            row.name, row.version, spec, row.spec_dir, row.salt, row.state, row.created, row.updated
        )

    def list_pipelines(self) -> list[PipelineInfo]:
        with self.catalog.read() as conn:
            names = list(
                conn.execute(select(pipelines.c.name).order_by(pipelines.c.name)).scalars()
            )
        return [self.inspect_pipeline(n) for n in names]

    def readers_of(self, repo: str) -> list[str]:
        """Names of pipelines that read ``repo``."""
        return [p.name for p in self.list_pipelines() if repo in p.input_repos]

    def delete_pipeline(self, name: str, *, force: bool = False) -> None:
        """Delete a pipeline, its jobs, datums and output repo. Raises RepoInUse if another
        pipeline reads its output (unless ``force``)."""
        self.inspect_pipeline(name)
        readers = [r for r in self.readers_of(name) if r != name]
        if readers and not force:
            raise RepoInUse(
                f"pipeline {name!r} feeds {', '.join(readers)}; delete those first or pass --force"
            )
        with self.catalog.write() as conn:
            for table in (datums, jobs):
                conn.execute(delete(table).where(table.c.pipeline == name))
            conn.execute(delete(pipeline_versions).where(pipeline_versions.c.name == name))
            conn.execute(delete(pipelines).where(pipelines.c.name == name))
        try:
            self.data.delete_repo(name)
        except NotFound:
            pass

    def set_state(self, name: str, state: str) -> PipelineInfo:
        """``running`` (start pipeline) or ``paused`` (stop pipeline)."""
        self.inspect_pipeline(name)
        with self.catalog.write() as conn:
            conn.execute(sql_update(pipelines).where(pipelines.c.name == name).values(state=state))
        return self.inspect_pipeline(name)

    # -- triggering ----------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            if self.lock_path is None:
                yield
                return
            self.lock_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.lock_path, "a+") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(f, fcntl.LOCK_UN)

    def _order(self) -> list[PipelineInfo]:
        infos = {p.name: p for p in self.list_pipelines()}
        graph = {n: {r for r in p.input_repos if r in infos} for n, p in infos.items()}
        return [infos[n] for n in graphlib.TopologicalSorter(graph).static_order()]

    def _input_heads(self, info: PipelineInfo) -> Heads | None:
        """The finished head of each input (repo, branch), or None if one is missing or open."""
        heads: Heads = {}
        for pfs in info.spec.input.pfs_inputs():
            try:
                commit = self.data.resolve(Ref(pfs.repo, pfs.branch))
            except NotFound:
                return None
            if commit.state != "finished":
                return None
            heads[(pfs.repo, pfs.branch)] = commit
        return heads

    @staticmethod
    def _provenance(spec: PipelineSpec, heads: Heads) -> list[Provenance]:
        """One entry per distinct input; the input name labels it, qualified by repo and
        branch when a union gives two inputs one name."""
        leaves = {(p.input_name, p.repo, p.branch) for p in spec.input.pfs_inputs()}
        names = [name for name, _, _ in leaves]
        return [
            Provenance(
                name if names.count(name) == 1 else f"{name}:{repo}@{branch}",
                repo,
                branch,
                heads[(repo, branch)].id,
            )
            for name, repo, branch in sorted(leaves)
        ]

    def _job_for(self, name: str, version: int, key: str) -> JobInfo | None:
        with self.catalog.read() as conn:
            row = conn.execute(
                select(jobs)
                .where(
                    jobs.c.pipeline == name, jobs.c.spec_version == version, jobs.c.input_key == key
                )
                .order_by(jobs.c.created.desc())
                .limit(1)
            ).first()
        return _job_from_row(row) if row else None

    def _status(self, info: PipelineInfo) -> tuple[str, Heads | None, str]:
        """(``current`` | ``stale`` | ``waiting`` | ``failed``, input heads, input key)."""
        heads = self._input_heads(info)
        if heads is None:
            return "waiting", None, ""
        key = json.dumps(
            {p.name: p.commit for p in self._provenance(info.spec, heads)}, sort_keys=True
        )
        job = self._job_for(info.name, info.version, key)
        if job is None:
            return "stale", heads, key
        if job.state == "success":
            return "current", heads, key
        # "killed" (interrupted) jobs count as stale and run again.
        return ("failed" if job.state in ("failure", "unrunnable") else "stale"), heads, key

    def propagate(self, reporter: Reporter | None = None) -> list[JobInfo]:
        """Run every stale pipeline, upstream first, until the DAG is current.

        When a job fails, every pipeline downstream of it gets a job with the same id in
        state ``unrunnable`` (as in Pachyderm), and stays blocked until its inputs change.
        Pipelines behind a paused pipeline or an open input commit wait without a job.
        Returns the jobs run or recorded. A failed job does not raise: its JobInfo says why.
        """
        reporter = reporter or Reporter()
        ran: list[JobInfo] = []
        with self._locked():
            self._reap_interrupted()
            status: dict[str, str] = {}
            failed_now: dict[str, str] = {}  # pipeline -> id of the job that failed just now
            for info in self._order():
                state, heads, key = self._status(info)
                upstream = [r for r in info.input_repos if r in status]
                failed_up = [r for r in upstream if status[r] == "failed"]
                waiting_up = [r for r in upstream if status[r] in ("waiting", "paused")]
                if info.state != "running":
                    status[info.name] = "current" if state == "current" else "paused"
                    continue
                cause = next((failed_now[r] for r in failed_up if r in failed_now), None)
                if heads is not None and failed_up and (state == "stale" or cause):
                    job = self._record_unrunnable(info, heads, key, failed_up, cause)
                    reporter.job_finished(job)
                    ran.append(job)
                    failed_now[info.name] = job.id
                    state = "failed"
                elif state == "stale" and waiting_up:
                    state = "waiting"
                elif state == "stale" and heads is not None:
                    job = self._run_job(info, heads, key, reporter)
                    ran.append(job)
                    if job.state == "success":
                        state = "current"
                    else:
                        failed_now[info.name] = job.id
                        state = "failed"
                status[info.name] = state
        return ran

    def _reap_interrupted(self) -> None:
        """Jobs still ``running`` while we hold the lock belong to a process that died: mark
        them ``killed`` so that their inputs count as stale and run again."""
        with self.catalog.write() as conn:
            conn.execute(
                sql_update(jobs)
                .where(jobs.c.state == "running")
                .values(
                    state="killed",
                    finished=time.time(),
                    reason="the process running this job stopped before it finished",
                )
            )

    def _job_exists(self, pipeline: str, job_id: str) -> bool:
        with self.catalog.read() as conn:
            return (
                conn.execute(
                    select(jobs.c.id).where(jobs.c.pipeline == pipeline, jobs.c.id == job_id)
                ).first()
                is not None
            )

    def _job_id(self, info: PipelineInfo, heads: Heads) -> str:
        newest = max(heads.values(), key=lambda c: c.created)
        if self._job_exists(info.name, newest.id):
            return new_commit_id()
        try:
            self.data.inspect_commit(info.name, newest.id)
        except NotFound:
            return newest.id
        return new_commit_id()

    def _record_unrunnable(
        self, info: PipelineInfo, heads: Heads, key: str, blocked: list[str], cause: str | None
    ) -> JobInfo:
        job_id = cause if cause and not self._job_exists(info.name, cause) else None
        job_id = job_id or self._job_id(info, heads)
        now = time.time()
        with self.catalog.write() as conn:
            conn.execute(
                insert(jobs).values(
                    pipeline=info.name,
                    id=job_id,
                    state="unrunnable",
                    spec_version=info.version,
                    input_key=key,
                    created=now,
                    started=now,
                    finished=now,
                    reason=f"upstream {', '.join(blocked)} did not succeed for these inputs",
                )
            )
        return self.inspect_job(info.name, job_id)

    # -- running a job ---------------------------------------------------------------
    def _previous_success(self, name: str) -> set[str]:
        """Datum hashes whose outputs the last successful job kept."""
        with self.catalog.read() as conn:
            last = conn.execute(
                select(jobs.c.id)
                .where(jobs.c.pipeline == name, jobs.c.state == "success")
                .order_by(jobs.c.finished.desc())
                .limit(1)
            ).scalar()
            if last is None:
                return set()
            return set(
                conn.execute(
                    select(datums.c.hash).where(
                        datums.c.pipeline == name,
                        datums.c.job == last,
                        datums.c.state.in_(_SUCCESS_STATES),
                    )
                ).scalars()
            )

    def _run_job(self, info: PipelineInfo, heads: Heads, key: str, reporter: Reporter) -> JobInfo:
        spec = info.spec
        job_id = self._job_id(info, heads)
        now = time.time()
        with self.catalog.write() as conn:
            conn.execute(
                insert(jobs).values(
                    pipeline=info.name,
                    id=job_id,
                    state="running",
                    spec_version=info.version,
                    input_key=key,
                    created=now,
                    started=now,
                )
            )
        try:
            job = self._execute(info, spec, job_id, heads, reporter)
        except Exception as exc:
            self._finish(
                job_id,
                info.name,
                state="failure",
                reason=f"job crashed: {type(exc).__name__}: {exc}",
            )
            job = self.inspect_job(info.name, job_id)
            if not isinstance(exc, PipelineError | OSError):
                raise
        reporter.job_finished(job)
        return job

    def _execute(
        self,
        info: PipelineInfo,
        spec: PipelineSpec,
        job_id: str,
        heads: Heads,
        reporter: Reporter,
    ) -> JobInfo:
        all_datums = build_datums(self.data, spec.input, heads)
        keep = set() if spec.reprocess_spec == "every_job" else self._previous_success(info.name)
        hashes = {d.id: d.hash(info.salt) for d in all_datums}
        skipped = [d for d in all_datums if hashes[d.id] in keep]
        todo = [d for d in all_datums if hashes[d.id] not in keep]
        self._finish(
            job_id, info.name, state="running", total=len(all_datums), skipped=len(skipped)
        )
        reporter.job_started(self.inspect_job(info.name, job_id), len(todo))

        sandbox = sandbox_available()
        notes = []
        if not sandbox:
            notes.append(
                "no sandbox (bubblewrap not found): datums run on the host with "
                "their inputs under $CAIRN_PFS"
            )
        if spec.transform.image:
            notes.append(
                f"image {spec.transform.image} recorded; no container runtime, "
                "so the command runs on the host"
            )
        for note in notes:
            reporter.note(info.name, note)
        ctx = RunContext(
            pipeline=info.name,
            job=job_id,
            transform=spec.transform,
            tries=spec.datum_tries,
            timeout=spec.datum_timeout,
            cwd=Path(info.spec_dir),
            work_dir=self.work_dir / info.name / job_id,
            sandbox=sandbox,
        )
        workers = spec.parallelism_spec.constant if spec.parallelism_spec else self.parallelism
        results: list[DatumResult] = []
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = [pool.submit(run_datum, self.data, ctx, d, hashes[d.id]) for d in todo]
            for future in as_completed(futures):
                result = future.result()
                results.append(result)
                reporter.datum_done(
                    self.inspect_job(info.name, job_id), self._datum_info(info.name, job_id, result)
                )
        self._store_datums(info.name, job_id, results, skipped, hashes)
        if notes:
            self.data.chunks.objects.put(
                f"logs/{info.name}/{job_id}/job", "\n".join(notes).encode() + b"\n"
            )
        counts = dict(
            processed=sum(r.state == "success" for r in results),
            failed=sum(r.state == "failed" for r in results),
            recovered=sum(r.state == "recovered" for r in results),
            bytes_in=sum(r.datum.size for r in results),
            bytes_out=sum(r.bytes_out for r in results),
        )
        failed = sorted((r for r in results if r.state == "failed"), key=lambda r: r.datum.id)
        if failed:
            first = failed[0]
            tail = first.log.decode(errors="replace").strip().splitlines()[-5:]
            reason = (
                f"datum {first.datum.id[:12]} ({self._describe(first.datum)}) failed "
                f"after {first.attempts} attempt(s): {first.error or 'error'}"
                + ("\n  " + "\n  ".join(tail) if tail else "")
            )
            if len(failed) > 1:
                reason += f"\n  and {len(failed) - 1} more failed datum(s)"
            self._finish(job_id, info.name, state="failure", reason=reason, **counts)
        else:
            try:
                output = self._write_output(info, spec, job_id, heads, results, skipped, hashes)
            except PipelineError as exc:
                self._finish(job_id, info.name, state="failure", reason=str(exc), **counts)
            else:
                self._finish(job_id, info.name, state="success", output_commit=output.id, **counts)
        return self.inspect_job(info.name, job_id)

    @staticmethod
    def _describe(datum: Datum) -> str:
        return ", ".join(f"{name}:{path}" for name, _repo, path in datum.roots)

    def _write_output(
        self,
        info: PipelineInfo,
        spec: PipelineSpec,
        job_id: str,
        heads: Heads,
        results: list[DatumResult],
        skipped: list[Datum],
        hashes: dict[str, str],
    ) -> CommitInfo:
        try:
            previous = self.data.resolve(Ref(info.name, spec.output_branch))
        except NotFound:
            previous = None
        kept_hashes = {hashes[d.id] for d in skipped}
        owners: dict[str, str] = {}
        changes: dict[str, FileEntry | None] = {}
        by_hash = {hashes[d.id]: d for d in skipped}
        old_tree = previous.tree if previous else None
        for path, entry in self.data.trees.walk(old_tree):
            if entry.datum in kept_hashes:
                owners[path] = entry.datum
            else:
                changes[path] = None
        for result in sorted(results, key=lambda r: r.datum.id):
            if result.state != "success":
                continue
            for path, content in result.outputs.items():
                other = owners.get(path)
                if other is not None and other != result.hash:
                    other_datum = by_hash.get(other)
                    other_desc = self._describe(other_datum) if other_datum else other[:12]
                    raise PipelineError(
                        f"datums {self._describe(result.datum)} and {other_desc} both wrote "
                        f"/{path}; each output path must come from one datum"
                    )
                owners[path] = result.hash
                changes[path] = FileEntry(content, result.hash)
        tree = self.data.trees.apply(old_tree, changes)
        env = environment_fingerprint()
        env_key = f"env/{env['hash'][:2]}/{env['hash']}"
        self.data.chunks.objects.put(env_key, json.dumps(env, sort_keys=True).encode())
        commit_info = {
            "job": job_id,
            "pipeline": {"name": info.name, "version": info.version, "spec_hash": spec.spec_hash()},
            "transform_hash": canonical_hash(spec.transform.model_dump(mode="json")),
            "code": code_files(spec.transform, Path(info.spec_dir)),
            "image": spec.transform.image,
            "environment": {
                k: env[k] for k in ("hash", "python", "platform", "cpu", "accelerator")
            },
        }
        provenance = self._provenance(spec, heads)
        return self.data.write_commit(
            info.name,
            spec.output_branch,
            tree,
            expected_head=previous.id if previous else None,
            commit_id=job_id,
            origin="pipeline",
            provenance=provenance,
            info=commit_info,
        )

    def _datum_info(self, pipeline: str, job_id: str, r: DatumResult) -> DatumInfo:
        return DatumInfo(
            pipeline,
            job_id,
            r.datum.id,
            r.hash,
            r.state,
            [f.to_json() for f in r.datum.files],
            r.attempts,
            r.exit_code,
            r.duration,
            r.datum.size,
            r.bytes_out,
            r.error,
        )

    def _store_datums(
        self,
        pipeline: str,
        job_id: str,
        results: list[DatumResult],
        skipped: list[Datum],
        hashes: dict[str, str],
    ) -> None:
        rows = []
        for r in results:
            log_key = f"logs/{pipeline}/{job_id}/{r.datum.id}"
            self.data.chunks.objects.put(log_key, r.log)
            d = self._datum_info(pipeline, job_id, r)
            rows.append(
                dict(
                    pipeline=pipeline,
                    job=job_id,
                    id=d.id,
                    hash=d.hash,
                    state=d.state,
                    inputs=json.dumps(d.inputs),
                    attempts=d.attempts,
                    exit_code=d.exit_code,
                    duration=d.duration,
                    bytes_in=d.bytes_in,
                    bytes_out=d.bytes_out,
                    log=log_key,
                    error=d.error,
                )
            )
        for d in skipped:
            rows.append(
                dict(
                    pipeline=pipeline,
                    job=job_id,
                    id=d.id,
                    hash=hashes[d.id],
                    state="skipped",
                    inputs=json.dumps([f.to_json() for f in d.files]),
                    attempts=0,
                    exit_code=None,
                    duration=0.0,
                    bytes_in=0,
                    bytes_out=0,
                    log=None,
                    error="",
                )
            )
        if rows:
            with self.catalog.write() as conn:
                conn.execute(insert(datums), rows)

    def _finish(self, job_id: str, pipeline: str, *, state: str, **values: Any) -> None:
        if state != "running":
            values["finished"] = time.time()
        with self.catalog.write() as conn:
            conn.execute(
                sql_update(jobs)
                .where(jobs.c.pipeline == pipeline, jobs.c.id == job_id)
                .values(state=state, **values)
            )

    # -- jobs, datums, logs ---------------------------------------------------------
    def inspect_job(self, pipeline: str, job_id: str) -> JobInfo:
        """A job by pipeline and id (or unique id prefix). Raises NotFound."""
        with self.catalog.read() as conn:
            rows = conn.execute(
                select(jobs)
                .where(jobs.c.pipeline == pipeline, jobs.c.id.startswith(job_id))
                .limit(2)
            ).all()
        if len(rows) != 1:
            raise NotFound(f"job {pipeline}@{job_id} " + ("is ambiguous" if rows else "not found"))
        return _job_from_row(rows[0])

    def list_jobs(self, pipeline: str | None = None, job_id: str | None = None) -> list[JobInfo]:
        """Jobs newest first, optionally of one pipeline or one id (a whole job set)."""
        query = select(jobs).order_by(jobs.c.created.desc())
        if pipeline:
            self.inspect_pipeline(pipeline)
            query = query.where(jobs.c.pipeline == pipeline)
        if job_id:
            query = query.where(jobs.c.id.startswith(job_id))
        with self.catalog.read() as conn:
            return [_job_from_row(r) for r in conn.execute(query).all()]

    def wait_job(self, pipeline: str, job_id: str, timeout: float | None = None) -> JobInfo:
        """Block until the job leaves ``running``. Raises TimeoutError."""
        deadline = None if timeout is None else time.monotonic() + timeout
        job = self.inspect_job(pipeline, job_id)
        while job.state == "running":
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {pipeline}@{job_id} still running after {timeout}s")
            time.sleep(0.2)
            job = self.inspect_job(pipeline, job.id)
        return job

    def list_datums(self, pipeline: str, job_id: str) -> list[DatumInfo]:
        job = self.inspect_job(pipeline, job_id)
        with self.catalog.read() as conn:
            rows = conn.execute(
                select(datums)
                .where(datums.c.pipeline == pipeline, datums.c.job == job.id)
                .order_by(datums.c.id)
            ).all()
        return [_datum_from_row(r) for r in rows]

    def datum_by_hash(
        self, pipeline: str, datum_hash: str, up_to_job: str | None = None
    ) -> DatumInfo | None:
        """The datum record of the newest job that processed ``datum_hash`` (not a skip),
        among jobs no newer than ``up_to_job`` when given (lineage of an old commit)."""
        limit = self.inspect_job(pipeline, up_to_job).created if up_to_job else None
        with self.catalog.read() as conn:
            row = conn.execute(
                select(datums)
                .select_from(
                    datums.join(
                        jobs, (jobs.c.pipeline == datums.c.pipeline) & (jobs.c.id == datums.c.job)
                    )
                )
                .where(
                    datums.c.pipeline == pipeline,
                    datums.c.hash == datum_hash,
                    datums.c.state == "success",
                    jobs.c.created <= limit if limit is not None else jobs.c.created.isnot(None),
                )
                .order_by(jobs.c.created.desc())
                .limit(1)
            ).first()
        return _datum_from_row(row) if row else None

    def logs(
        self, pipeline: str, job_id: str | None = None, datum_id: str | None = None
    ) -> Iterator[tuple[str, str]]:
        """(heading, text) for each log: a datum's, a job's datums', or the pipeline's
        latest job's when ``job_id`` is None."""
        self.inspect_pipeline(pipeline)
        if job_id is None:
            found = self.list_jobs(pipeline)
            if not found:
                return
            job_id = found[0].id
        job = self.inspect_job(pipeline, job_id)
        try:
            text = self.data.chunks.objects.get(f"logs/{pipeline}/{job.id}/job").decode()
            yield f"{pipeline}@{job.id}", text
        except ObjectNotFound:
            pass
        for d in self.list_datums(pipeline, job.id):
            if datum_id and not d.id.startswith(datum_id):
                continue
            if d.state == "skipped":
                continue
            try:
                text = self.data.chunks.objects.get(f"logs/{pipeline}/{job.id}/{d.id}").decode(
                    errors="replace"
                )
            except ObjectNotFound:
                text = ""
            yield f"{pipeline}@{job.id} datum {d.id[:12]} ({d.state})", text

    def connection(self) -> Connection:  # pragma: no cover - convenience for debugging
        return self.catalog.engine.connect()
