"""``client.store`` in this process."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import select

from cairn.api.bundles import collect
from cairn.catalog.schema import pipelines
from cairn.data import DataStore
from cairn.data.fsck import FsckReport, check_store
from cairn.data.gc import DEFAULT_GRACE, GcReport, Tally, collect_garbage
from cairn.pipelines.retention import live_logs, oldest_open_job

__all__ = ["EmbeddedStore"]


class EmbeddedStore:
    """StoreProtocol over ``data``: gc keeps what open jobs may still write and the logs
    of jobs that exist (cairn.pipelines.retention), and removes the code bundles under
    ``code`` (``<home>/code``, cairn.api.bundles) that no pipeline runs in."""

    def __init__(self, data: DataStore, code: Path | None = None) -> None:
        self._data = data
        self._code = code

    def gc(self, grace: float = DEFAULT_GRACE, dry_run: bool = False) -> GcReport:
        """Delete objects no commit, branch or open job reaches, the logs of jobs that no
        longer exist (cairn.data.gc), and code bundles no pipeline's spec folder is
        (reported as kind ``code``). Objects and bundles modified less than ``grace``
        seconds ago, or since the oldest open job was created, are kept. Raises
        StoreDamaged (deleting nothing) if a commit cannot be read, ValueError for a
        negative grace, OSError (a bundle that cannot be removed)."""
        catalog = self._data.catalog
        started = time.time()
        oldest = oldest_open_job(catalog)
        report = collect_garbage(
            self._data,
            grace=grace,
            dry_run=dry_run,
            keep_newer_than=oldest,
            owned=[live_logs(catalog)],
        )
        if self._code is not None:
            # A pipeline updated while its job runs leaves that job's bundle unused; the
            # update marked it (cairn.server.team.specs), so the oldest open job's time
            # spares it as it spares the objects the job writes.
            cutoff = started - grace if oldest is None else min(started - grace, oldest)
            with catalog.read() as conn:
                used = list(conn.execute(select(pipelines.c.spec_dir)).scalars())
            swept = collect(self._code, used, cutoff, dry_run=dry_run)
            report.removed["code"] = Tally(swept.objects, swept.bytes)
            report.kept_young += swept.kept_young
            report.seconds = time.time() - started
        return report

    def fsck(self) -> FsckReport:
        """Verify every hash and reference in the store; change nothing (cairn.data.fsck)."""
        return check_store(self._data)
