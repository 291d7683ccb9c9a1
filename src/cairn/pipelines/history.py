"""Job history: jobs, datums and logs as recorded in the catalog and object store.

Pipelines (cairn.pipelines.service) holds one, through its JobRunner
(cairn.pipelines.jobs); it reads only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from cairn.catalog import Catalog
from cairn.catalog.rows import row_to
from cairn.catalog.schema import datums, jobs
from cairn.data import (
    DataStore,
    NotFound,
)
from cairn.data.subject import about
from cairn.pipelines.models import DatumInfo, DatumState, JobInfo, JobState
from cairn.pipelines.rows import inspect_pipeline
from cairn.storage import ObjectNotFound
from cairn.storage.errors import FieldError

__all__ = ["JobHistory"]


def _job_from_row(row: Any) -> JobInfo:
    return row_to(JobInfo, row, state=JobState(row.state), inputs=json.loads(row.input_key))


def _datum_from_row(row: Any) -> DatumInfo:
    return row_to(DatumInfo, row, state=DatumState(row.state), inputs=json.loads(row.inputs))


class JobHistory:
    """Queries over the jobs and datums recorded in ``catalog``, and their logs, kept in
    ``data``'s object store."""

    def __init__(self, catalog: Catalog, data: DataStore) -> None:
        self.catalog = catalog
        self.data = data

    def job_for(self, name: str, version: int, key: str) -> JobInfo | None:
        """The newest job of pipeline ``name`` at spec ``version`` for input ``key``."""
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

    def latest_key(self, name: str, version: int) -> str | None:
        """The input key of the newest job of pipeline ``name`` at spec ``version``."""
        with self.catalog.read() as conn:
            return conn.execute(
                select(jobs.c.input_key)
                .where(jobs.c.pipeline == name, jobs.c.spec_version == version)
                .order_by(jobs.c.created.desc())
                .limit(1)
            ).scalar()

    def job_exists(self, pipeline: str, job_id: str) -> bool:
        """Whether ``pipeline`` has a job with exactly this id."""
        with self.catalog.read() as conn:
            return (
                conn.execute(
                    select(jobs.c.id).where(jobs.c.pipeline == pipeline, jobs.c.id == job_id)
                ).first()
                is not None
            )

    def inspect_job(self, pipeline: str, job_id: str) -> JobInfo:
        """A job by pipeline and id (or unique id prefix). Raises NotFound."""
        with self.catalog.read() as conn:
            rows = conn.execute(
                select(jobs)
                .where(jobs.c.pipeline == pipeline, jobs.c.id.startswith(job_id, autoescape=True))
                .limit(2)
            ).all()
        if len(rows) != 1:
            raise NotFound(f"job {pipeline}@{job_id} " + ("is ambiguous" if rows else "not found"))
        return _job_from_row(rows[0])

    def list_jobs(self, pipeline: str | None = None, job_id: str | None = None) -> list[JobInfo]:
        """Jobs newest first, optionally of one pipeline or one id (a whole job set)."""
        query = select(jobs).order_by(jobs.c.created.desc())
        if pipeline:
            inspect_pipeline(self.catalog, pipeline)
            query = query.where(jobs.c.pipeline == pipeline)
        if job_id:
            query = query.where(jobs.c.id.startswith(job_id, autoescape=True))
        with self.catalog.read() as conn:
            return [_job_from_row(r) for r in conn.execute(query).all()]

    def wait_job(self, pipeline: str, job_id: str, timeout: float | None = None) -> JobInfo:
        """Block until the job leaves ``running``. Raises TimeoutError."""
        deadline = None if timeout is None else time.monotonic() + timeout
        job = self.inspect_job(pipeline, job_id)
        while job.state == JobState.RUNNING:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {pipeline}@{job_id} still running after {timeout}s")
            time.sleep(0.2)
            job = self.inspect_job(pipeline, job.id)
        return job

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
        """The datums of one job (processed, skipped, failed, recovered), by id: those in
        ``state`` (a DatumState value) and whose ids start with ``datum``, if given, from
        the ``offset``-th, at most ``limit`` (a page of a job of many datums costs that
        page, not the job). Raises NotFound, FieldError (an unknown state, a negative
        offset or limit)."""
        if offset < 0 or (limit is not None and limit < 0):
            raise FieldError(f"offset and limit must be >= 0, not {offset} and {limit}")
        wanted = None
        if state is not None:
            try:
                wanted = DatumState(state)
            except ValueError:
                known = ", ".join(s.value for s in DatumState)
                raise FieldError(f"no datum state {state!r}: one of {known}") from None
        job = self.inspect_job(pipeline, job_id)
        query = select(datums).where(datums.c.pipeline == pipeline, datums.c.job == job.id)
        if wanted is not None:
            query = query.where(datums.c.state == wanted)
        if datum:
            query = query.where(datums.c.id.startswith(datum, autoescape=True))
        query = query.order_by(datums.c.id).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self.catalog.read() as conn:
            rows = conn.execute(query).all()
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
                    datums.c.state == DatumState.SUCCESS,
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
        latest job's when ``job_id`` is None. A datum the job skipped gives the log of the
        job that processed it, its heading saying so. Raises NotFound (no such pipeline
        or job, or no datum of the job whose id starts with ``datum_id``)."""
        inspect_pipeline(self.catalog, pipeline)
        if job_id is None:
            found = self.list_jobs(pipeline)
            if not found:
                return
            job_id = found[0].id
        job = self.inspect_job(pipeline, job_id)
        chosen = [
            d
            for d in self.list_datums(pipeline, job.id)
            if not datum_id or d.id.startswith(datum_id)
        ]
        if datum_id and not chosen:
            raise about(
                NotFound(f"job {pipeline}@{job.id} has no datum {datum_id!r}"),
                "datum.missing",
                ref=f"{pipeline}@{job.id}",
            )
        if not datum_id:
            try:
                text = self.data.chunks.objects.get(f"logs/{pipeline}/{job.id}/job").decode()
                yield f"{pipeline}@{job.id}", text
            except ObjectNotFound:
                pass
        refs = self._log_refs(pipeline, job.id)
        for d in chosen:
            if d.state != DatumState.SKIPPED:
                text = self._read_log(refs.get(d.id), f"logs/{pipeline}/{job.id}/{d.id}")
                yield f"{pipeline}@{job.id} datum {d.id[:12]} ({d.state})", text
            elif datum_id:  # asked for by id: the log of the job that did process it
                done = self.datum_by_hash(pipeline, d.hash, up_to_job=job.id)
                heading = f"{pipeline}@{job.id} datum {d.id[:12]} (skipped: "
                if done is None:
                    yield heading + "no earlier job processed it)", ""
                    continue
                text = self._read_log(
                    self._log_refs(pipeline, done.job).get(done.id),
                    f"logs/{pipeline}/{done.job}/{done.id}",
                )
                yield heading + f"processed by job {pipeline}@{done.job}, its log below)", text

    def _log_refs(self, pipeline: str, job_id: str) -> dict[str, str | None]:
        """Datum id -> where its log is, for one job."""
        with self.catalog.read() as conn:
            rows = conn.execute(
                select(datums.c.id, datums.c.log).where(
                    datums.c.pipeline == pipeline, datums.c.job == job_id
                )
            ).all()
        return {row.id: row.log for row in rows}

    def _read_log(self, ref: str | None, old_key: str) -> str:
        """A datum's log: ``key@offset+length`` in its job's log object, or (stores
        written before logs were joined) an object of its own; empty when there is none."""
        objects = self.data.chunks.objects
        try:
            if ref and "@" in ref:
                key, _, span = ref.rpartition("@")
                offset, _, length = span.partition("+")
                raw = objects.get_range(key, int(offset), int(length))
            else:
                raw = objects.get(ref or old_key)
        except (ObjectNotFound, ValueError):
            return ""
        return raw.decode(errors="replace")
