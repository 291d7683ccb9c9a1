"""``client.jobs`` in this process."""

from __future__ import annotations

import builtins

from cairn.api.refs import job_ref
from cairn.api.types import LogEntry
from cairn.data import parse_ref
from cairn.pipelines import DatumInfo, JobInfo, Pipelines
from cairn.pipelines.models import Reproduction

__all__ = ["EmbeddedJobs"]


class EmbeddedJobs:
    """JobsProtocol over the Pipelines service ``engine`` (its job history)."""

    def __init__(self, engine: Pipelines) -> None:
        self._engine = engine

    def list(self, pipeline: str | None = None) -> builtins.list[JobInfo]:
        """Jobs newest first, of every pipeline or of one. Raises NotFound."""
        return self._engine.list_jobs(pipeline)

    def get(self, ref: str) -> JobInfo:
        """Job ``pipeline@id`` (or id prefix). Raises NotFound, InvalidReference."""
        return self._engine.inspect_job(*job_ref(ref))

    def wait(self, ref: str, timeout: float | None = None) -> JobInfo:
        """Block until the job is no longer running. Raises TimeoutError, NotFound."""
        return self._engine.wait_job(*job_ref(ref), timeout=timeout)

    def datums(
        self,
        ref: str,
        *,
        state: str | None = None,
        datum: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> builtins.list[DatumInfo]:
        """The job's datums, by id (a page of them, filtered, as JobsProtocol.datums
        says). Raises NotFound, InvalidReference, FieldError."""
        return self._engine.list_datums(
            *job_ref(ref), state=state, datum=datum, offset=offset, limit=limit
        )

    def logs(self, ref: str, datum: str | None = None) -> builtins.list[LogEntry]:
        """Logs of job ``pipeline@id`` (or of ``pipeline``'s latest job), or of its datums
        whose ids start with ``datum``. Raises NotFound, InvalidReference."""
        parsed = parse_ref(ref)
        job = job_ref(ref)[1] if parsed.commit is not None else None
        return [LogEntry(h, t) for h, t in self._engine.logs(parsed.repo, job, datum)]

    def stop(self, ref: str) -> JobInfo:
        """End a running job (Pipelines.stop_job). Raises NotFound, PipelineError."""
        return self._engine.stop_job(*job_ref(ref))

    def delete(self, ref: str) -> None:
        """Delete a finished job and its output commit (Pipelines.delete_job). Raises
        NotFound, PipelineError, CommitStateError."""
        self._engine.delete_job(*job_ref(ref))

    def restart_datum(self, ref: str, datum: str) -> DatumInfo:
        """Run a failed datum once more (Pipelines.restart_datum). Raises NotFound,
        PipelineError, Irreproducible."""
        return self._engine.restart_datum(*job_ref(ref), datum)

    def reproduce(self, ref: str, datum: str | None = None) -> Reproduction:
        """Job ``pipeline@id`` run again into scratch and compared (Pipelines.reproduce).
        Raises NotFound, InvalidReference, Irreproducible."""
        return self._engine.reproduce(*job_ref(ref), datum)
