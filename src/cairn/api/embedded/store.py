"""``client.store`` in this process."""

from __future__ import annotations

from cairn.data import DataStore
from cairn.data.fsck import FsckReport, check_store
from cairn.data.gc import DEFAULT_GRACE, GcReport, collect_garbage
from cairn.pipelines.retention import live_logs, oldest_open_job

__all__ = ["EmbeddedStore"]


class EmbeddedStore:
    """StoreProtocol over ``data``: gc keeps what open jobs may still write and the logs
    of jobs that exist (cairn.pipelines.retention)."""

    def __init__(self, data: DataStore) -> None:
        self._data = data

    def gc(self, grace: float = DEFAULT_GRACE, dry_run: bool = False) -> GcReport:
        """Delete objects no commit, branch or open job reaches, and the logs of jobs
        that no longer exist (cairn.data.gc). Objects modified less than ``grace``
        seconds ago are kept. Raises StoreDamaged (deleting nothing) if a commit cannot
        be read, ValueError for a negative grace."""
        catalog = self._data.catalog
        return collect_garbage(
            self._data,
            grace=grace,
            dry_run=dry_run,
            keep_newer_than=oldest_open_job(catalog),
            owned=[live_logs(catalog)],
        )

    def fsck(self) -> FsckReport:
        """Verify every hash and reference in the store; change nothing (cairn.data.fsck)."""
        return check_store(self._data)
