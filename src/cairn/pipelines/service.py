"""Pipelines: create and manage pipelines, and run the jobs that keep them current.

Triggering is level-based: a pipeline is *stale* when its newest job under its current
spec version did not run for the current heads of its input branches (so moving a branch
back to a commit processed before runs a job again, and the output follows the data back).
``propagate()`` runs every stale pipeline in DAG order, so one input commit
carries through to the end of the DAG; the CLI calls it after each write, and
``cairn run`` calls it in a loop for commits that arrive from other
processes. The catalog's lock ``pipelines`` (``Catalog.lock``) serializes propagations
across processes, and across machines on a PostgreSQL catalog, so no two runners ever run
one job; a job still ``running`` when a runner takes the lock is therefore one whose
process died.

Job state machine::

    running ──► success      output commit written, branch moved
            ├─► failure      nothing written; inputs and previous output untouched
            └─► killed       the process died mid-job; the inputs run again next time
    unrunnable               an upstream pipeline failed for these inputs

Jobs of one cause share one id: a job takes the id of its newest input commit
(the commit that triggered it, or the upstream job's output commit, which
carries that id on), and its output commit takes the same id.

Stored specs are read back with ``read_spec``, the path ``create_pipeline`` runs on the
form it stores. A row that still fails (an older cairn stored it) makes that one pipeline
*broken*: ``list_pipelines`` leaves it out, ``broken_pipelines`` lists it with the error,
``propagate`` skips it with a note, and ``delete_pipeline`` or an update removes or replaces
it without reading it.
"""

from __future__ import annotations

import graphlib
import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, make_url, select
from sqlalchemy import update as sql_update

from cairn.catalog import Catalog
from cairn.catalog.schema import datums, jobs, pipeline_versions, pipelines
from cairn.data import (
    AlreadyExists,
    CommitInfo,
    DataStore,
    NotFound,
    Ref,
    RepoInUse,
)
from cairn.data.subject import about
from cairn.pipelines.cron import tick_cron, tick_file, tick_now
from cairn.pipelines.datums import build_datums
from cairn.pipelines.errors import PipelineError, SpecError
from cairn.pipelines.history import JobHistory
from cairn.pipelines.jobs import JobRunner, JobSettings
from cairn.pipelines.models import (
    BrokenPipeline,
    DatumInfo,
    DatumPreview,
    JobInfo,
    JobState,
    PipelineInfo,
    Reporter,
    Reproduction,
)
from cairn.pipelines.output import Heads, provenance
from cairn.pipelines.ray_executor import open_executor
from cairn.pipelines.reproduce import reproduce_job, restart_datum
from cairn.pipelines.rows import (
    inspect_pipeline,
    load_pipelines,
    pipeline_missing,
    pipeline_names,
    pipeline_row,
)
from cairn.pipelines.secret_store import SecretStore
from cairn.pipelines.spec import PipelineSpec, read_spec
from cairn.pipelines.triggers import fire_trigger

__all__ = ["PIPELINES_LOCK", "Pipelines"]

# The catalog lock (Catalog.lock) that every propagation holds.
PIPELINES_LOCK = "pipelines"


class Pipelines:
    """The pipelines API over a DataStore.

    ``work_dir`` holds datums' scratch folders; job runs take the catalog's lock
    ``pipelines`` (see the module doc); ``parallelism`` overrides the default pool size
    (the number of cores) when a spec has no ``parallelism_spec``. ``private_paths``
    (e.g. the store's home folder) never enter a sandbox; ``work_dir``, a local object
    store's root and a SQLite catalog's files and lock folder join them. ``allow_unconfined``
    lets jobs run pipelines created by another OS user when there is no sandbox;
    ``secrets`` holds the values ``transform.secrets`` refer to (without it, a job that
    needs one fails). ``executor`` is the URL of where datums run: ``local`` (this
    process's pool), ``ray`` or ``ray://HOST:PORT`` (cairn.pipelines.ray_executor; raises
    ExecutorError for another URL).

    It holds a JobRunner (``runner``: cairn.pipelines.jobs), which holds the JobHistory
    (``history``: cairn.pipelines.history) whose queries it offers as its own.
    """

    def __init__(
        self,
        data: DataStore,
        catalog: Catalog,
        *,
        work_dir: Path,
        parallelism: int | None = None,
        private_paths: tuple[Path, ...] = (),
        allow_unconfined: bool = False,
        secrets: SecretStore | None = None,
        shared_paths: tuple[Path, ...] = (),
        executor: str = "local",
    ) -> None:
        self.data = data
        self.catalog = catalog
        work_dir = Path(work_dir)
        store: list[Path] = [work_dir, *private_paths]
        root = getattr(data.chunks.objects, "root", None)
        if isinstance(root, Path):
            store.append(root)
        url = make_url(catalog.url)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            db = Path(url.database)
            store += [db, *(db.with_name(db.name + end) for end in ("-wal", "-shm", "-locks"))]
        self.history = JobHistory(catalog, data)
        parallelism = parallelism or os.cpu_count() or 1
        settings = JobSettings(
            work_dir,
            parallelism,
            tuple(store),
            allow_unconfined,
            secrets,
            tuple(shared_paths),
            open_executor(executor),
        )
        self.runner = JobRunner(catalog, data, self.history, settings)
        self._thread_lock = threading.RLock()

    # -- the runner's settings, as given to the constructor ----------------------------
    @property
    def work_dir(self) -> Path:
        return self.runner.settings.work_dir

    @property
    def parallelism(self) -> int:
        return self.runner.settings.parallelism

    @property
    def private_paths(self) -> tuple[Path, ...]:
        return self.runner.settings.private_paths

    @property
    def allow_unconfined(self) -> bool:
        return self.runner.settings.allow_unconfined

    @allow_unconfined.setter
    def allow_unconfined(self, value: bool) -> None:
        self.runner.settings.allow_unconfined = value

    @property
    def secrets(self) -> SecretStore | None:
        return self.runner.settings.secrets

    @secrets.setter
    def secrets(self, value: SecretStore | None) -> None:
        self.runner.settings.secrets = value

    # -- pipeline CRUD -------------------------------------------------------------
    def create_pipeline(
        self,
        spec: PipelineSpec,
        spec_dir: str | Path,
        *,
        update: bool = False,
        reprocess: bool = False,
        check_dag: bool = True,
    ) -> PipelineInfo:
        """Create (or with ``update``, replace) a pipeline and its output repo.

        ``check_dag=False`` skips the cycle check, for ``create_pipelines``, which checks
        the DAG its whole list makes.

        Raises AlreadyExists (create of an existing pipeline), NotFound (update of a
        missing one, or an input repo that does not exist), SpecError (cycles, an output
        repo that is a user repo, a spec whose stored form would break a limit).
        ``reprocess`` gives the pipeline a new salt so no earlier datum is reused.
        """
        name = spec.name
        body = self._storable(spec)
        crons = {c.repo for c in spec.cron_inputs()}
        for pfs in spec.pfs_inputs():
            if pfs.repo not in crons:
                self.data.inspect_repo(pfs.repo)
        existing = pipeline_row(self.catalog, name)
        if existing and not update:
            raise about(AlreadyExists(f"pipeline {name!r} exists"), "pipeline.exists", name=name)
        if update and not existing:
            raise NotFound(f"pipeline {name!r} not found")
        if check_dag:
            self._check_acyclic([spec])
        now = time.time()
        # The spec's salt, else the pipeline's own; --reprocess always mixes in a fresh token
        # so that no earlier datum hash can match, even when the spec fixes the salt.
        if existing and reprocess:
            salt = f"{spec.salt or ''}{secrets.token_hex(16)}"
        elif existing and spec.salt == self._stored_salt(existing):
            salt = existing.salt  # the spec's salt did not change: keep the one in use
        else:
            salt = spec.salt or secrets.token_hex(16)
        if not existing:
            self._check_output_repo(spec)
            try:
                self.data.inspect_repo(name)
            except NotFound:
                kind = "spout" if spec.spout is not None else "pipeline"
                self.data.create_repo(name, spec.description, type=kind)
                # As Pachyderm: the output branch exists from the start, so listing it
                # before the first job shows an empty repo, not an error.
                self.data.create_branch(name, spec.output_branch)
        for cron in spec.cron_inputs():
            try:
                self.data.inspect_repo(cron.repo or cron.name)
            except NotFound:
                self.data.create_repo(cron.repo or cron.name, f"cron input {cron.name} of {name}")
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
        self.runner.record_owner(name)
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
        existing = pipeline_names(self.catalog)
        for i, spec in enumerate(specs):
            self._storable(spec)
            if update and spec.name not in existing:
                raise NotFound(f"pipeline {spec.name!r} not found")
            if not update and spec.name in existing:
                exists = AlreadyExists(f"pipeline {spec.name!r} exists")
                raise about(exists, "pipeline.exists", name=spec.name)
            crons = {c.repo for c in spec.cron_inputs()}
            for pfs in spec.pfs_inputs():
                if pfs.repo not in names[:i] and pfs.repo not in crons:
                    self.data.inspect_repo(pfs.repo)
            if spec.name not in existing:
                self._check_output_repo(spec)
        self._check_acyclic(specs)
        return [
            self.create_pipeline(s, spec_dir, update=update, reprocess=reprocess, check_dag=False)
            for s in specs
        ]

    @staticmethod
    def _storable(spec: PipelineSpec) -> str:
        """The body to store for ``spec``, read back here with the code and limits every later
        read uses, so a spec that is accepted can be read again. Raises SpecError."""
        body = spec.canonical_json()
        read_spec(body, source=f"pipeline {spec.name!r} as stored")
        return body

    @staticmethod
    def _stored_salt(row: Any) -> str | None:
        try:
            return read_spec(row.spec).salt
        except SpecError:
            return None  # a broken row being replaced: its salt is unknown

    def _check_output_repo(self, spec: PipelineSpec) -> None:
        try:
            repo = self.data.inspect_repo(spec.name)
        except NotFound:
            return
        if repo.type not in ("pipeline", "spout"):
            raise SpecError(
                f"pipeline.name: a user repo named {spec.name!r} exists; pick another name",
                "pipeline.name",
            )

    def _check_acyclic(self, specs: list[PipelineSpec]) -> None:
        new = {s.name for s in specs}
        graph = {p.name: set(p.input_repos) for p in self.list_pipelines() if p.name not in new}
        for spec in specs:
            graph[spec.name] = {p.repo for p in spec.pfs_inputs()}
        try:
            tuple(graphlib.TopologicalSorter(graph).static_order())
        except graphlib.CycleError as exc:
            raise SpecError(
                f"input: pipelines would form a cycle: {exc.args[1]}", "input"
            ) from None

    def inspect_pipeline(self, name: str) -> PipelineInfo:
        """Raises NotFound, UnreadableSpec (a broken pipeline, see the module doc)."""
        return inspect_pipeline(self.catalog, name)

    def list_pipelines(self) -> list[PipelineInfo]:
        """Every pipeline whose spec reads back, by name (see ``broken_pipelines``)."""
        return load_pipelines(self.catalog)[0]

    def broken_pipelines(self) -> list[BrokenPipeline]:
        """Every pipeline whose stored spec cannot be read back, by name, with the error."""
        return load_pipelines(self.catalog)[1]

    def readers_of(self, repo: str) -> list[str]:
        """Names of pipelines that read ``repo`` (broken ones cannot say, so are left out)."""
        return [p.name for p in self.list_pipelines() if repo in p.input_repos]

    def delete_pipeline(self, name: str, *, force: bool = False) -> None:
        """Delete a pipeline, its jobs, datums and output repo, also when its stored spec
        cannot be read. Raises NotFound, RepoInUse if another pipeline reads its output
        (unless ``force``)."""
        if pipeline_row(self.catalog, name) is None:
            raise pipeline_missing(name)
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

    def preview_datums(self, spec: PipelineSpec) -> list[DatumPreview]:
        """The datums ``spec`` would cut from the current heads of its inputs (open ones
        too, as they read now), by id. Raises NotFound (an input repo or branch)."""
        if spec.input is None:  # a spout makes no datums
            return []
        heads: Heads = {
            (pfs.repo, pfs.branch): self.data.resolve(Ref(pfs.repo, pfs.branch))
            for pfs in spec.pfs_inputs()
        }
        return [
            DatumPreview(d.id, [f.to_json() for f in d.files])
            for d in sorted(build_datums(self.data, spec.input, heads), key=lambda d: d.id)
        ]

    # -- rewriting history: pachctl's delete/squash commit, stop/delete job ----------
    def delete_commit(self, repo: str, commitish: str) -> list[CommitInfo]:
        """Delete a commit and those made from it (DataStore.delete_commit), with the
        records of the jobs whose output commits they were. Raises NotFound,
        CommitStateError."""
        with self._locked():
            gone = self.data.delete_commit(repo, commitish)
            with self.catalog.write() as conn:
                for c in gone:
                    ids = list(
                        conn.execute(
                            select(jobs.c.id).where(
                                jobs.c.pipeline == c.repo, jobs.c.output_commit == c.id
                            )
                        ).scalars()
                    )
                    for table in (datums, jobs):
                        key = table.c.job if table is datums else table.c.id
                        conn.execute(delete(table).where(table.c.pipeline == c.repo, key.in_(ids)))
        return gone

    def squash_commit(self, repo: str, commitish: str) -> list[CommitInfo]:
        """Squash a commit and those made from it into their children
        (DataStore.squash_commit); job records stay, for the lineage of the files the
        children keep. Raises NotFound, CommitStateError."""
        with self._locked():
            return self.data.squash_commit(repo, commitish)

    def stop_job(self, pipeline: str, job_id: str) -> JobInfo:
        """End running job ``pipeline@job_id``: it fails with reason ``stopped``, datums not
        started yet never start, nothing is written to its output, and the pipeline waits
        for new inputs or ``rerun`` as after any failure. Raises NotFound, PipelineError
        (the job is not running)."""
        job = self.history.inspect_job(pipeline, job_id)
        with self.catalog.write() as conn:
            done = conn.execute(
                sql_update(jobs)
                .where(
                    jobs.c.pipeline == pipeline,
                    jobs.c.id == job.id,
                    jobs.c.state == JobState.RUNNING,
                )
                .values(
                    state=JobState.FAILURE,
                    finished=time.time(),
                    reason="stopped by a user before it finished",
                )
            ).rowcount
        if not done:
            state = self.history.inspect_job(pipeline, job.id).state
            raise PipelineError(f"job {pipeline}@{job.id} is {state}, not running")
        return self.history.inspect_job(pipeline, job.id)

    def delete_job(self, pipeline: str, job_id: str) -> None:
        """Delete a finished job's records (datums, logs) and, as in Pachyderm, its output
        commit with what was made from it (``delete_commit``'s rules). Raises NotFound,
        PipelineError (a running job: stop it first), CommitStateError."""
        job = self.history.inspect_job(pipeline, job_id)
        if job.state == JobState.RUNNING:
            raise PipelineError(f"job {pipeline}@{job.id} is running; stop it first")
        if job.output_commit is not None:
            try:
                self.data.inspect_commit(pipeline, job.output_commit)
            except NotFound:
                pass
            else:
                self.delete_commit(pipeline, job.output_commit)
        with self.catalog.write() as conn:
            for table in (datums, jobs):
                key = table.c.job if table is datums else table.c.id
                conn.execute(delete(table).where(table.c.pipeline == pipeline, key == job.id))

    def rerun(self, name: str) -> PipelineInfo:
        """Let pipeline ``name`` run again for its current inputs although its last job
        failed (a transform whose code was missing, fixed since): the next ``propagate``
        runs it. Raises NotFound."""
        info = self.inspect_pipeline(name)
        self.runner.record_rerun(name)
        return info

    def set_state(self, name: str, state: str) -> PipelineInfo:
        """``running`` (start pipeline) or ``paused`` (stop pipeline)."""
        self.inspect_pipeline(name)
        with self.catalog.write() as conn:
            conn.execute(sql_update(pipelines).where(pipelines.c.name == name).values(state=state))
        return self.inspect_pipeline(name)

    # -- triggering ----------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock, self.catalog.lock(PIPELINES_LOCK):
            yield

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Hold the lock every propagation takes, in this process and every other one of
        the store: no job starts while the block runs (a transaction's finish)."""
        with self._locked():
            yield

    def _order(self, reporter: Reporter) -> list[PipelineInfo]:
        good, broken = load_pipelines(self.catalog)
        for b in broken:
            reporter.note(b.name, f"skipped: {b.error}")
        infos = {p.name: p for p in good}
        graph = {n: {r for r in p.input_repos if r in infos} for n, p in infos.items()}
        return [infos[n] for n in graphlib.TopologicalSorter(graph).static_order()]

    def _input_heads(self, info: PipelineInfo) -> Heads | None:
        """The finished head of each input (repo, branch), or None if one is missing or open."""
        heads: Heads = {}
        for pfs in info.spec.pfs_inputs():
            ref = Ref.parse(pfs.repo, pfs.commit) if pfs.commit else Ref(pfs.repo, pfs.branch)
            try:
                commit = self.data.resolve(ref)
            except NotFound:
                return None
            if commit.state != "finished":
                return None
            heads[(pfs.repo, pfs.branch)] = commit
        return heads

    def _status(self, info: PipelineInfo) -> tuple[str, Heads | None, str]:
        """(``current`` | ``stale`` | ``waiting`` | ``failed``, input heads, input key)."""
        heads = self._input_heads(info)
        if heads is None:
            return "waiting", None, ""
        key = json.dumps({p.name: p.commit for p in provenance(info.spec, heads)}, sort_keys=True)
        job = self.history.job_for(info.name, info.version, key)
        if job is not None and job.state == JobState.SUCCESS:
            # Inputs already processed once are current only if nothing ran since: a branch
            # moved back to them (a rollback) must bring the output back too, as Pachyderm's.
            if self.history.latest_key(info.name, info.version) == key:
                return "current", heads, key
            return "stale", heads, key
        if job is not None and job.state in (JobState.FAILURE, JobState.UNRUNNABLE):
            asked = self.runner.rerun_asked(info.name)
            if asked is None or asked < job.created:
                return "failed", heads, key
        # New inputs, a rerun asked since the failure, or a "killed" (interrupted) job:
        # stale, unless the last job found the code missing (JobRunner.blocked).
        if self.runner.blocked(info) is not None:
            return "failed", heads, key
        return "stale", heads, key

    def _tick(self, infos: list[PipelineInfo], reporter: Reporter, now: datetime) -> None:
        """Make the due ticks of the cron inputs of the running pipelines among ``infos``,
        and move the input branches whose triggers hold, at ``now`` (aware; see
        ``cairn.pipelines.cron`` and ``cairn.pipelines.triggers``). Under the lock."""
        for info in infos:
            if info.state != "running":
                continue
            for pfs in info.spec.pfs_inputs():
                if pfs.trigger is not None and fire_trigger(self.data, pfs, now):
                    reporter.note(
                        info.name,
                        f"trigger moved {pfs.repo}@{pfs.branch} to {pfs.trigger.branch}'s head",
                    )
            for cron in info.spec.cron_inputs():
                try:
                    ticks = tick_cron(self.data, cron, now)
                except NotFound:
                    reporter.note(info.name, f"cron input {cron.name}: its repo is gone")
                    continue
                if ticks:
                    when = ", ".join(tick_file(t).lstrip("/") for t in ticks)
                    reporter.note(info.name, f"cron input {cron.name} ticked: {when}")

    def run_cron(
        self, name: str, reporter: Reporter | None = None, now: datetime | None = None
    ) -> list[JobInfo]:
        """Tick every cron input of pipeline ``name`` once at ``now`` (default: the clock),
        whatever its schedule, then ``propagate``. Raises NotFound; SpecError when the
        pipeline has no cron input."""
        info = self.inspect_pipeline(name)
        crons = info.spec.cron_inputs()
        if not crons:
            raise SpecError(f"pipeline {name!r} has no cron input", "input")
        moment = now or datetime.now(UTC)
        with self._locked():
            for cron in crons:
                tick_now(self.data, cron, moment)
        return self.propagate(reporter, now=moment)

    def propagate(
        self, reporter: Reporter | None = None, *, now: datetime | None = None
    ) -> list[JobInfo]:
        """Run every stale pipeline, upstream first, until the DAG is current.

        First the cron inputs make the ticks due at ``now`` (aware; default: the clock), and
        input branches whose triggers hold move.

        When a job fails, every pipeline downstream of it gets a job with the same id in
        state ``unrunnable`` (as in Pachyderm), and stays blocked until its inputs change.
        Pipelines behind a paused pipeline or an open input commit wait without a job.
        Returns the jobs run or recorded. A failed job does not raise: its JobInfo says why.
        A broken pipeline (see the module doc) is skipped, and ``reporter.note`` says so.
        """
        reporter = reporter or Reporter()
        ran: list[JobInfo] = []
        with self._locked():
            self.runner.reap_interrupted()
            order = self._order(reporter)
            self._tick(order, reporter, now or datetime.now(UTC))
            status: dict[str, str] = {}
            failed_now: dict[str, str] = {}  # pipeline -> id of the job that failed just now
            for info in order:
                state, heads, key = self._status(info)
                upstream = [r for r in info.input_repos if r in status]
                failed_up = [r for r in upstream if status[r] == "failed"]
                waiting_up = [r for r in upstream if status[r] in ("waiting", "paused")]
                if info.state != "running":
                    status[info.name] = "current" if state == "current" else "paused"
                    continue
                if info.spec.long_lived:  # its process writes or serves (cairn.pipelines.daemons)
                    status[info.name] = "current"
                    continue
                cause = next((failed_now[r] for r in failed_up if r in failed_now), None)
                if heads is not None and failed_up and (state == "stale" or cause):
                    job = self.runner.record_unrunnable(info, heads, key, failed_up, cause)
                    reporter.job_finished(job)
                    ran.append(job)
                    failed_now[info.name] = job.id
                    state = "failed"
                elif state == "stale" and waiting_up:
                    state = "waiting"
                elif state == "stale" and heads is not None:
                    job = self.runner.run_job(info, heads, key, reporter)
                    ran.append(job)
                    if job.state == JobState.SUCCESS:
                        state = "current"
                    else:
                        failed_now[info.name] = job.id
                        state = "failed"
                status[info.name] = state
        return ran

    # -- jobs, datums, logs: the queries of cairn.pipelines.history ------------------
    def inspect_job(self, pipeline: str, job_id: str) -> JobInfo:
        """See :meth:`cairn.pipelines.history.JobHistory.inspect_job`."""
        return self.history.inspect_job(pipeline, job_id)

    def list_jobs(self, pipeline: str | None = None, job_id: str | None = None) -> list[JobInfo]:
        """See :meth:`cairn.pipelines.history.JobHistory.list_jobs`."""
        return self.history.list_jobs(pipeline, job_id)

    def wait_job(self, pipeline: str, job_id: str, timeout: float | None = None) -> JobInfo:
        """See :meth:`cairn.pipelines.history.JobHistory.wait_job`."""
        return self.history.wait_job(pipeline, job_id, timeout)

    def list_datums(
        self,
        pipeline: str,
        job_id: str,
        *,
        state: str | None = None,
        datum: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[DatumInfo]:
        """See :meth:`cairn.pipelines.history.JobHistory.list_datums`."""
        return self.history.list_datums(
            pipeline, job_id, state=state, datum=datum, offset=offset, limit=limit
        )

    def datum_by_hash(
        self, pipeline: str, datum_hash: str, up_to_job: str | None = None
    ) -> DatumInfo | None:
        """See :meth:`cairn.pipelines.history.JobHistory.datum_by_hash`."""
        return self.history.datum_by_hash(pipeline, datum_hash, up_to_job)

    def logs(
        self, pipeline: str, job_id: str | None = None, datum_id: str | None = None
    ) -> Iterator[tuple[str, str]]:
        """See :meth:`cairn.pipelines.history.JobHistory.logs`."""
        return self.history.logs(pipeline, job_id, datum_id)

    def reproduce(self, pipeline: str, job_id: str, datum: str | None = None) -> Reproduction:
        """See :func:`cairn.pipelines.reproduce.reproduce_job`."""
        return reproduce_job(self.runner, pipeline, job_id, datum)

    def restart_datum(self, pipeline: str, job_id: str, datum: str) -> DatumInfo:
        """See :func:`cairn.pipelines.reproduce.restart_datum`."""
        return restart_datum(self.runner, pipeline, job_id, datum)

    def owner(self, name: str) -> int | None:
        """See :meth:`cairn.pipelines.jobs.JobRunner.owner`."""
        return self.runner.owner(name)

    def record_owner(self, name: str) -> None:
        """See :meth:`cairn.pipelines.jobs.JobRunner.record_owner`."""
        self.runner.record_owner(name)
