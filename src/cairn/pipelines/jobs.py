"""Running one job: plan datums against the last success, run them on a local pool,
write the output commit with provenance, and record every datum.

Pipelines (cairn.pipelines.service) holds one; see its module doc for the job state
machine and how jobs are triggered. What a job leaves behind (output commit, datum
records) is written by cairn.pipelines.output.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from queue import SimpleQueue
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy import update as sql_update

from cairn.catalog import Catalog
from cairn.catalog.schema import datums, events, jobs
from cairn.data import DataStore, NotFound, Ref, new_commit_id
from cairn.data.subject import about
from cairn.pipelines.batch import DatumQueue, run_batch
from cairn.pipelines.containers import container_runtime, why_not
from cairn.pipelines.datums import Datum, build_datums
from cairn.pipelines.environment import code_files, missing_code
from cairn.pipelines.errors import PipelineError, SecretError, Unconfined
from cairn.pipelines.executor import (
    DatumResult,
    RunContext,
    limits_for,
    run_datum,
    workers_for,
)
from cairn.pipelines.history import JobHistory
from cairn.pipelines.models import DatumState, JobInfo, JobState, PipelineInfo, Reporter
from cairn.pipelines.output import (
    Heads,
    datum_info,
    describe,
    store_datums,
    write_output,
)
from cairn.pipelines.ray_executor import RayExecutor
from cairn.pipelines.sandbox import DEFAULT_LIMITS, others_can_enter, sandbox_available
from cairn.pipelines.secret_store import Masker, SecretStore
from cairn.pipelines.spec import PipelineSpec
from cairn.storage.settings import read_settings

__all__ = ["ALLOW_UNCONFINED_ENV", "UNCONFINED", "Heads", "JobRunner", "JobSettings"]

_SUCCESS_STATES = (DatumState.SUCCESS, DatumState.SKIPPED)
ALLOW_UNCONFINED_ENV = "CAIRN_ALLOW_UNCONFINED"
OWNER_EVENT = "pipeline.owner"
RERUN_EVENT = "pipeline.rerun"
# How a job's reason starts when its code is missing: no input change can fix that, so
# the pipeline waits for a new spec version or a rerun (``JobRunner.blocked``).
CANNOT_START = "the transform cannot start"
UNCONFINED = "unconfined"  # the first word of a job's first log line when no sandbox ran it


@dataclass(slots=True)
class JobSettings:
    """How a JobRunner runs jobs: ``work_dir`` holds the datums' scratch folders;
    ``parallelism`` is the pool size when a spec has no ``parallelism_spec``;
    ``private_paths`` never enter a sandbox; ``allow_unconfined`` lets jobs run another OS
    user's pipelines without a sandbox; ``secrets`` holds the values ``transform.secrets``
    refer to (without it, a job that needs one fails); ``cluster`` runs the datums on a Ray
    cluster instead of the local pool (cairn.pipelines.ray_executor)."""

    work_dir: Path
    parallelism: int
    private_paths: tuple[Path, ...] = ()
    allow_unconfined: bool = False
    secrets: SecretStore | None = None
    shared_paths: tuple[Path, ...] = ()  # inside private ones; a spec folder may be in them
    cluster: RayExecutor | None = None


class JobRunner:
    """Executes jobs of the pipelines in ``catalog`` over ``data`` as ``settings`` say,
    recording them where ``history`` reads them."""

    def __init__(
        self, catalog: Catalog, data: DataStore, history: JobHistory, settings: JobSettings
    ) -> None:
        self.catalog = catalog
        self.data = data
        self.history = history
        self.settings = settings

    def reap_interrupted(self) -> None:
        """Jobs still ``running`` while we hold the lock belong to a process that died: mark
        them ``killed`` so that their inputs count as stale and run again, and remove the
        scratch folders (``<work>/<pipeline>/<job>``) such a process left behind."""
        with self.catalog.write() as conn:
            conn.execute(
                sql_update(jobs)
                .where(jobs.c.state == JobState.RUNNING)
                .values(
                    state=JobState.KILLED,
                    finished=time.time(),
                    reason="the process running this job stopped before it finished",
                )
            )
        with self.catalog.read() as conn:
            done = {(r.pipeline, r.id) for r in conn.execute(select(jobs.c.pipeline, jobs.c.id))}
        try:
            folders = [p for p in self.settings.work_dir.iterdir() if p.is_dir()]
        except OSError:
            return
        for folder in folders:
            for job in [p for p in folder.iterdir() if (folder.name, p.name) in done]:
                shutil.rmtree(job, ignore_errors=True)

    def record_owner(self, name: str) -> None:
        """Note that this process's OS user created or updated pipeline ``name``: without a
        sandbox, only that user's cairn runs its transform (see :meth:`_check_confinement`)."""
        user = os.getuid()
        with self.catalog.write() as conn:
            conn.execute(
                insert(events).values(
                    time=time.time(),
                    kind=OWNER_EVENT,
                    subject=name,
                    info=json.dumps({"uid": user}),
                )
            )

    def record_rerun(self, name: str) -> None:
        """Ask that pipeline ``name`` run again although its last job failed (``cairn
        rerun pipeline``): it unblocks a pipeline ``blocked`` holds."""
        with self.catalog.write() as conn:
            conn.execute(
                insert(events).values(
                    time=time.time(), kind=RERUN_EVENT, subject=name, info=json.dumps({})
                )
            )

    def blocked(self, info: PipelineInfo) -> JobInfo | None:
        """The job that blocks ``info``: its newest job, when it failed because the
        transform cannot start (missing code, CANNOT_START) under the current spec version
        and no rerun was asked since; None when the pipeline may run."""
        with self.catalog.read() as conn:
            last = conn.execute(
                select(jobs.c.id, jobs.c.state, jobs.c.spec_version, jobs.c.reason, jobs.c.created)
                .where(jobs.c.pipeline == info.name)
                .order_by(jobs.c.created.desc())
                .limit(1)
            ).first()
        if (
            last is None
            or last.state != JobState.FAILURE
            or last.spec_version != info.version
            or not (last.reason or "").startswith(CANNOT_START)
        ):
            return None
        asked = self.rerun_asked(info.name)
        if asked is not None and asked >= last.created:
            return None
        return self.history.inspect_job(info.name, last.id)

    def rerun_asked(self, name: str) -> float | None:
        """When a rerun of pipeline ``name`` was last asked (UTC seconds), if ever."""
        with self.catalog.read() as conn:
            return conn.execute(
                select(events.c.time)
                .where(events.c.kind == RERUN_EVENT, events.c.subject == name)
                .order_by(events.c.id.desc())
                .limit(1)
            ).scalar()

    def owner(self, name: str) -> int | None:
        """The uid that last created or updated pipeline ``name``; None if not recorded."""
        with self.catalog.read() as conn:
            info = conn.execute(
                select(events.c.info)
                .where(events.c.kind == OWNER_EVENT, events.c.subject == name)
                .order_by(events.c.id.desc())
                .limit(1)
            ).scalar()
        return None if info is None else int(json.loads(info)["uid"])

    def _check_confinement(self, info: PipelineInfo, sandbox: bool) -> list[str]:
        """The job's first note; raises Unconfined for another user's pipeline with no
        sandbox, and PipelineError for a spec folder the sandbox's uid cannot enter."""
        if sandbox:
            if os.geteuid() == 0 and not others_can_enter(Path(info.spec_dir)):
                raise PipelineError(
                    f"the sandbox runs transforms as an unprivileged user, who cannot enter "
                    f"the spec folder {info.spec_dir}; make it readable (chmod o+rx) or move "
                    "the spec"
                )
            return []
        owner = self.owner(info.name)
        allowed = self.settings.allow_unconfined or read_settings().allow_unconfined
        if owner is not None and owner != os.getuid() and not allowed:
            unconfined = Unconfined(
                f"no sandbox (bwrap missing or unusable, or CAIRN_SANDBOX=none) and pipeline "
                f"{info.name!r} was created by uid {owner}, not {os.getuid()}: its transform "
                f"would run unconfined as this user; install bubblewrap, or allow it with "
                f"{ALLOW_UNCONFINED_ENV}=1"
            )
            raise about(unconfined, "pipeline.unconfined", name=info.name)
        return [
            f"{UNCONFINED}: no sandbox (bwrap missing or unusable, or CAIRN_SANDBOX=none): "
            "datums run on the host as this user, with every file it can read, with their "
            "inputs under $CAIRN_PFS"
        ]

    def _job_id(self, info: PipelineInfo, heads: Heads) -> str:
        newest = max(heads.values(), key=lambda c: c.created)
        if self.history.job_exists(info.name, newest.id):
            if self.history.inspect_job(info.name, newest.id).state != JobState.KILLED:
                return new_commit_id()
            # A rerun after a crash keeps its cause's id: the killed record makes way.
            with self.catalog.write() as conn:
                for table in (datums, jobs):
                    key = table.c.job if table is datums else table.c.id
                    conn.execute(
                        delete(table).where(table.c.pipeline == info.name, key == newest.id)
                    )
        try:
            self.data.inspect_commit(info.name, newest.id)
        except NotFound:
            return newest.id
        return new_commit_id()

    def record_unrunnable(
        self, info: PipelineInfo, heads: Heads, key: str, blocked: list[str], cause: str | None
    ) -> JobInfo:
        job_id = cause if cause and not self.history.job_exists(info.name, cause) else None
        job_id = job_id or self._job_id(info, heads)
        reason = f"upstream {', '.join(blocked)} did not succeed for these inputs"
        self._insert_job(
            info, job_id, key, JobState.UNRUNNABLE, finished=time.time(), reason=reason
        )
        return self.history.inspect_job(info.name, job_id)

    def _insert_job(
        self, info: PipelineInfo, job_id: str, key: str, state: JobState, **values: Any
    ) -> None:
        now = time.time()
        with self.catalog.write() as conn:
            conn.execute(
                insert(jobs).values(
                    pipeline=info.name,
                    id=job_id,
                    state=state,
                    spec_version=info.version,
                    input_key=key,
                    created=now,
                    started=now,
                    **values,
                )
            )

    # -- running a job ---------------------------------------------------------------
    def _previous_success(self, name: str, output_head: str | None) -> set[str]:
        """Datum hashes whose outputs the last successful job kept, provided that job's output
        commit is still the head of the output branch; otherwise (output branch changed,
        moved or deleted) nothing is reused, since the outputs to keep are not there."""
        with self.catalog.read() as conn:
            last = conn.execute(
                select(jobs.c.id, jobs.c.output_commit)
                .where(jobs.c.pipeline == name, jobs.c.state == JobState.SUCCESS)
                .order_by(jobs.c.finished.desc())
                .limit(1)
            ).first()
            if last is None or output_head is None or last.output_commit != output_head:
                return set()
            last = last.id
            return set(
                conn.execute(
                    select(datums.c.hash).where(
                        datums.c.pipeline == name,
                        datums.c.job == last,
                        datums.c.state.in_(_SUCCESS_STATES),
                    )
                ).scalars()
            )

    def run_job(self, info: PipelineInfo, heads: Heads, key: str, reporter: Reporter) -> JobInfo:
        spec = info.spec
        job_id = self._job_id(info, heads)
        self._insert_job(info, job_id, key, JobState.RUNNING)
        try:
            # A writer's lease from the first output stored to the output commit, so that
            # garbage collection spares what the datums' outputs reuse (cairn.catalog.pins).
            with self.data.pins.lease():
                job = self._execute(info, spec, job_id, heads, reporter)
        except PipelineError as exc:
            self._finish(job_id, info.name, state=JobState.FAILURE, reason=str(exc))
            job = self.history.inspect_job(info.name, job_id)
        except Exception as exc:
            self._finish(
                job_id,
                info.name,
                state=JobState.FAILURE,
                reason=f"job crashed: {type(exc).__name__}: {exc}",
            )
            job = self.history.inspect_job(info.name, job_id)
            if not isinstance(exc, OSError):
                raise
        finally:
            shutil.rmtree(self.settings.work_dir / info.name / job_id, ignore_errors=True)
            try:
                (self.settings.work_dir / info.name).rmdir()
            except OSError:
                pass  # not empty: another job of this pipeline, or already gone
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
        sandbox = sandbox_available()
        notes = self._check_confinement(info, sandbox)  # first: it may refuse the job
        cwd = Path(info.spec_dir) / (spec.transform.working_dir or "")
        if not cwd.is_dir():
            raise PipelineError(
                f"{CANNOT_START}: transform.working_dir {cwd} is not a folder on this machine; "
                "no input change can fix this, so the pipeline waits for its spec to be "
                "updated or for a rerun once the folder is there"
            )
        missing = missing_code(spec.transform, cwd)
        if missing:  # fail once, before any datum or retry: no input change fixes it
            raise PipelineError(
                f"{CANNOT_START}: {', '.join(missing)} not found (from {cwd}); "
                "no input change can fix this, so the pipeline waits for its spec to be "
                "updated or for a rerun once the code is there"
            )
        assert spec.input is not None, "spouts and services run no jobs (Pipelines.propagate)"
        all_datums = build_datums(self.data, spec.input, heads)
        try:
            output_head: str | None = self.data.resolve(Ref(info.name, spec.output_branch)).id
        except NotFound:
            output_head = None
        keep = (
            set()
            if spec.reprocess_spec == "every_job"
            else self._previous_success(info.name, output_head)
        )
        # The code is hashed as the job starts, before any datum runs.
        code = code_files(spec.transform, cwd)
        hashes = {d.id: d.hash(info.salt) for d in all_datums}
        skipped = [d for d in all_datums if hashes[d.id] in keep]
        todo = [d for d in all_datums if hashes[d.id] not in keep]
        self._finish(
            job_id, info.name, state=JobState.RUNNING, total=len(all_datums), skipped=len(skipped)
        )
        reporter.job_started(self.history.inspect_job(info.name, job_id), len(todo))
        container = None
        if spec.transform.image:
            why = why_not(spec.transform.image)
            if why is None:
                container = container_runtime()
            else:
                notes.append(why)
        notes += spec.no_effect()
        for note in notes:
            reporter.note(info.name, note)
        try:
            secret_env = self._secret_env(spec) if todo else {}
        except (NotFound, SecretError) as exc:
            self._finish(job_id, info.name, state=JobState.FAILURE, reason=f"secrets: {exc}")
            return self.history.inspect_job(info.name, job_id)
        if todo and self.settings.cluster is not None:
            self.settings.cluster.check(self.data, spec)  # before any datum runs
        # Values are masked before logs and errors are stored or reported.
        masker = Masker(secret_env.values())
        ctx = self.run_context(
            info,
            spec,
            job_id,
            self.settings.work_dir / info.name / job_id,
            sandbox,
            secret_env,
            container=container,
        )
        cores = os.cpu_count() or 1
        wanted = spec.parallelism_spec.workers(cores) if spec.parallelism_spec else None
        workers = workers_for(
            wanted or self.settings.parallelism,
            spec.resource_requests,
            cores,
            DEFAULT_LIMITS.memory or 0,
        )
        results: list[DatumResult] = []
        # The job's row does not change until every datum is done: read it once, not once
        # per datum (a catalog read per datum was a fifth of a batching job's time).
        running = self.history.inspect_job(info.name, job_id)
        look = time.monotonic() + 1.0
        for result in self.run_datums(ctx, todo, hashes, max(1, workers), spec=spec):
            result.log, result.error = masker.bytes(result.log), masker.text(result.error)
            results.append(result)
            reporter.datum_done(running, datum_info(info.name, job_id, result))
            # ``stop job`` (from any process) is seen within a second: once a second, not
            # once per datum, the row is read again.
            if time.monotonic() >= look:
                look = time.monotonic() + 1.0
                if self.stopped(info.name, job_id):
                    break
        if self.stopped(info.name, job_id):
            store_datums(self.data, self.catalog, info.name, job_id, results, skipped, hashes)
            return self.history.inspect_job(info.name, job_id)
        store_datums(self.data, self.catalog, info.name, job_id, results, skipped, hashes)
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
                f"datum {first.datum.id[:12]} ({describe(first.datum)}) failed "
                f"after {first.attempts} attempt(s): {first.error or 'error'}"
                + ("\n  " + "\n  ".join(tail) if tail else "")
            )
            if len(failed) > 1:
                reason += f"\n  and {len(failed) - 1} more failed datum(s)"
            self._finish(job_id, info.name, state=JobState.FAILURE, reason=reason, **counts)
        else:
            try:
                output = write_output(
                    self.data, info, spec, job_id, heads, results, skipped, hashes, code
                )
            except PipelineError as exc:
                self._finish(job_id, info.name, state=JobState.FAILURE, reason=str(exc), **counts)
            else:
                self._finish(
                    job_id, info.name, state=JobState.SUCCESS, output_commit=output.id, **counts
                )
        return self.history.inspect_job(info.name, job_id)

    def run_context(
        self,
        info: PipelineInfo,
        spec: PipelineSpec,
        job_id: str,
        work_dir: Path,
        sandbox: bool,
        secret_env: dict[str, str],
        *,
        container: Any = None,
    ) -> RunContext:
        """What every datum of job ``job_id`` of ``info`` under ``spec`` shares, its scratch
        folders under ``work_dir``; the command starts in the spec's folder, or its
        ``transform.working_dir`` below it; ``container``: the runtime of its image, if any."""
        return RunContext(
            pipeline=info.name,
            job=job_id,
            transform=spec.transform,
            tries=spec.datum_tries,
            timeout=spec.datum_timeout,
            cwd=Path(info.spec_dir) / (spec.transform.working_dir or ""),
            work_dir=work_dir,
            sandbox=sandbox,
            limits=limits_for(spec.resource_limits, spec.datum_timeout),
            private=self.settings.private_paths,
            shared=self.settings.shared_paths,
            env=secret_env,
            container=container,
        )

    def check_confinement(self, info: PipelineInfo, sandbox: bool) -> list[str]:
        """The notes of a run of ``info``'s transform; raises as a job would refuse it
        (Unconfined, PipelineError)."""
        return self._check_confinement(info, sandbox)

    def secret_env(self, spec: PipelineSpec) -> dict[str, str]:
        """``env_var`` -> value of ``transform.secrets``. Raises NotFound, SecretError."""
        return self._secret_env(spec)

    def run_datums(
        self,
        ctx: RunContext,
        todo: list[Datum],
        hashes: dict[str, str],
        workers: int,
        *,
        spec: PipelineSpec | None = None,
    ) -> Iterator[DatumResult]:
        """Run ``todo`` on ``workers`` threads, yielding each result as it is known: one
        process per datum, or with ``datum_batching`` one process per worker at a time; or
        on the Ray cluster of ``settings.cluster``, as its executor says."""
        if not todo:
            return
        if self.settings.cluster is not None and spec is not None:
            yield from self.settings.cluster.run(self.data, ctx, spec, todo, hashes)
            return
        if not ctx.transform.datum_batching:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(run_datum, self.data, ctx, d, hashes[d.id]) for d in todo]
                try:
                    for future in as_completed(futures):
                        yield future.result()
                finally:  # a stopped job: the datums not started yet never start
                    for future in futures:
                        future.cancel()
            return
        queue = DatumQueue((d, hashes[d.id]) for d in todo)
        done: SimpleQueue[DatumResult | None] = SimpleQueue()

        def worker() -> None:
            try:
                run_batch(self.data, ctx, queue, done.put)
            finally:
                done.put(None)

        workers = min(workers, len(todo))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            threads = [pool.submit(worker) for _ in range(workers)]
            running = workers
            while running:
                result = done.get()
                if result is None:
                    running -= 1
                else:
                    yield result
            for thread in threads:
                thread.result()  # cairn's own failures in a worker surface here

    def _secret_env(self, spec: PipelineSpec) -> dict[str, str]:
        """``env_var`` -> value of ``transform.secrets``. Raises NotFound, SecretError."""
        if not spec.transform.secrets:
            return {}
        if self.settings.secrets is None:
            names = ", ".join(sorted({ref.name for ref in spec.transform.secrets}))
            raise SecretError(f"the transform needs secret {names}; this store keeps none")
        return self.settings.secrets.resolve(spec.transform.secrets)

    def stopped(self, pipeline: str, job_id: str) -> bool:
        """Whether running job ``pipeline@job_id`` was stopped (``stop job``) meanwhile."""
        with self.catalog.read() as conn:
            state = conn.execute(
                select(jobs.c.state).where(jobs.c.pipeline == pipeline, jobs.c.id == job_id)
            ).scalar()
        return state != JobState.RUNNING

    def _finish(self, job_id: str, pipeline: str, *, state: JobState, **values: Any) -> None:
        if state != JobState.RUNNING:
            values["finished"] = time.time()
        with self.catalog.write() as conn:
            # Only a running job changes: one that ``stop job`` ended stays as it left it.
            conn.execute(
                sql_update(jobs)
                .where(
                    jobs.c.pipeline == pipeline,
                    jobs.c.id == job_id,
                    jobs.c.state == JobState.RUNNING,
                )
                .values(state=state, **values)
            )
