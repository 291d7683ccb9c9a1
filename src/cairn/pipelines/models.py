"""Value objects of the pipelines layer. Times are UTC seconds since the epoch."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cairn.pipelines.spec import PipelineSpec

__all__ = [
    "BrokenPipeline",
    "DatumInfo",
    "DatumPreview",
    "DatumState",
    "EnvironmentChange",
    "FileCheck",
    "JobInfo",
    "JobState",
    "PipelineInfo",
    "Reporter",
    "Reproduction",
]


class JobState(StrEnum):
    """A job's state (the catalog stores the value)::

    running --all datums succeed or recover--> success
       |--a datum fails, or the output cannot be written--> failure
       |--the process running it died (found by the next run)--> killed
    unrunnable (recorded as such: an upstream job did not succeed)
    """

    RUNNING = "running"
    SUCCESS = "success"
    FAILURE = "failure"
    UNRUNNABLE = "unrunnable"
    KILLED = "killed"


class DatumState(StrEnum):
    """What became of one datum of a job: ``success``, ``skipped`` (an earlier job
    processed the same hash; its outputs were kept), ``failed`` (every try failed) or
    ``recovered`` (failed, then ``err_cmd`` succeeded)."""

    SUCCESS = "success"
    SKIPPED = "skipped"
    FAILED = "failed"
    RECOVERED = "recovered"


@dataclass(frozen=True)
class PipelineInfo:
    """A pipeline: its current spec ``version`` (1, 2, … one per update), the folder its
    transform runs in, its salt, and ``state`` running or paused."""

    name: str
    version: int
    spec: PipelineSpec
    spec_dir: str
    salt: str
    state: str
    created: float
    updated: float

    @property
    def input_repos(self) -> list[str]:
        return sorted({p.repo for p in self.spec.pfs_inputs()})


@dataclass(frozen=True)
class BrokenPipeline:
    """A pipeline whose stored spec cannot be read back (an older cairn stored it): it does
    not run; ``error`` says why and how to remove or replace it."""

    name: str
    version: int
    state: str
    error: str


@dataclass(frozen=True)
class JobInfo:
    """One execution of a pipeline over one set of input commits (``inputs``: input name ->
    commit id). ``state``: running, success, failure or unrunnable (an upstream job failed).
    Datum counts are processed / skipped / failed / recovered of ``total``; bytes are the
    input bytes of processed datums and the output bytes they wrote."""

    pipeline: str
    id: str
    state: JobState
    spec_version: int
    inputs: dict[str, str]
    output_commit: str | None
    created: float
    started: float | None
    finished: float | None
    processed: int
    skipped: int
    failed: int
    recovered: int
    total: int
    bytes_in: int
    bytes_out: int
    reason: str

    @property
    def duration(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started


@dataclass(frozen=True)
class DatumInfo:
    """One datum of one job; ``inputs`` lists its files (input, repo, branch, commit,
    path, hash, size); ``state`` is success, skipped, failed or recovered. ``node`` is the
    cluster node it ran on and ``environment`` the hash of that node's environment
    fingerprint (both "" when the local executor ran it, or it was skipped)."""

    pipeline: str
    job: str
    id: str
    hash: str
    state: DatumState
    inputs: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    exit_code: int | None = None
    duration: float = 0.0
    bytes_in: int = 0
    bytes_out: int = 0
    error: str = ""
    node: str = ""
    environment: str = ""


@dataclass(frozen=True)
class DatumPreview:
    """A datum a spec would make, before any job: its ``id`` and ``inputs`` (input, repo,
    branch, commit, path, hash, size of each file)."""

    id: str
    inputs: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class FileCheck:
    """One output file of a reproduced job: ``state`` is ``identical`` (same BLAKE3 hash),
    ``different``, ``missing`` (recorded, not made again) or ``extra`` (made again, not
    recorded); the hashes are None where there is no file."""

    path: str
    state: str
    recorded: str | None
    reproduced: str | None


@dataclass(frozen=True)
class EnvironmentChange:
    """A field of the environment fingerprint (``python``, ``packages.numpy``,
    ``transform.python``…) whose recorded value differs from the present one."""

    key: str
    recorded: str
    present: str


@dataclass(frozen=True)
class Reproduction:
    """A job run again from its recorded inputs, spec version and code: ``files`` compares
    each output file of its ``datums``; ``failures`` lists datums that failed this time."""

    pipeline: str
    job: str
    output_commit: str
    spec_version: int
    datums: int
    files: list[FileCheck] = field(default_factory=list)
    environment: list[EnvironmentChange] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        """Every output file made again byte for byte, none missing or extra, no failure."""
        return not self.failures and all(f.state == "identical" for f in self.files)


class Reporter:
    """Receives progress while jobs run; the CLI renders it. Every method is optional."""

    def job_started(self, job: JobInfo, to_process: int) -> None:
        """A job began: ``to_process`` datums will run, ``job.skipped`` were skipped."""

    def datum_done(self, job: JobInfo, datum: DatumInfo) -> None:
        """One datum finished (success, failed or recovered)."""

    def job_finished(self, job: JobInfo) -> None:
        """A job reached success, failure or unrunnable."""

    def note(self, pipeline: str, message: str) -> None:
        """Something the user should see once (e.g. no sandbox available)."""
