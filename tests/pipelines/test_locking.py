"""Pipelines take the catalog's lock ``pipelines`` (cairn.catalog.locks) around every
propagation, so runners in other processes, or on other machines, wait for each other;
the lock's own behaviour per backend is tested in tests/catalog/test_locks.py."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from cairn.data import CommitInfo, DataStore
from cairn.pipelines import JobInfo, Pipelines, PipelineSpec
from cairn.pipelines.service import PIPELINES_LOCK


def test_propagate_waits_for_another_holder_of_the_catalog_lock(
    pipelines: Pipelines,
    data: DataStore,
    make_spec: Callable[..., PipelineSpec],
    put: Callable[..., CommitInfo],
    spec_dir: Path,
) -> None:
    put("in", {"a.txt": b"a"})
    pipelines.create_pipeline(make_spec("copy"), spec_dir)
    ran: list[JobInfo] = []
    runner = threading.Thread(target=lambda: ran.extend(pipelines.propagate()), daemon=True)

    with data.catalog.lock(PIPELINES_LOCK):  # as a runner elsewhere would hold it
        runner.start()
        runner.join(0.5)
        assert runner.is_alive()
        assert pipelines.list_jobs("copy") == []

    runner.join(20)
    assert [job.state for job in ran] == ["success"]


def test_the_lock_files_of_a_sqlite_catalog_stay_out_of_the_sandbox(
    pipelines: Pipelines, tmp_path: Path
) -> None:
    pipelines.propagate()

    assert (tmp_path / "c.db-locks" / PIPELINES_LOCK).is_file()
    assert tmp_path / "c.db-locks" in pipelines.private_paths
