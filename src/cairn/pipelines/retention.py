"""What garbage collection must keep for the pipelines layer (cairn.data.gc).

Jobs write logs under ``logs/<pipeline>/<job>/…``: the job's notes (``job``) and one
object per datum. A log lives as long as its job's row; ``delete pipeline`` removes
the rows, and the collection then removes the logs. An open job (``created`` or
``running``) holds chunks and tree nodes that no commit refers to until its output
commit is written; the collection spares everything written since the oldest open
job was created.
"""

from __future__ import annotations

from sqlalchemy import func, select

from cairn.catalog import Catalog
from cairn.catalog.schema import jobs
from cairn.data.gc import LiveKeys

__all__ = ["LOG_PREFIX", "OPEN_JOB_STATES", "live_logs", "oldest_open_job"]

LOG_PREFIX = "logs/"
OPEN_JOB_STATES = ("created", "running")


def live_logs(catalog: Catalog) -> LiveKeys:
    """The log objects of the jobs the catalog holds (one set of ``(pipeline, job)``
    pairs in memory: jobs are few next to chunks). Raises CatalogError."""
    with catalog.read() as conn:
        live = {(row.pipeline, row.id) for row in conn.execute(select(jobs.c.pipeline, jobs.c.id))}

    def is_live(key: str) -> bool:
        parts = key.split("/")
        # Keys cairn did not write in the logs/<pipeline>/<job>/<name> shape are kept.
        return len(parts) < 4 or (parts[1], parts[2]) in live

    return LiveKeys("log", LOG_PREFIX, is_live)


def oldest_open_job(catalog: Catalog) -> float | None:
    """When the oldest job still created or running was created (UTC seconds), or None.
    Raises CatalogError."""
    with catalog.read() as conn:
        oldest = conn.execute(
            select(func.min(jobs.c.created)).where(jobs.c.state.in_(OPEN_JOB_STATES))
        ).scalar()
    return None if oldest is None else float(oldest)
