"""``client.commits`` in this process."""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable

from cairn.api.refs import RefLike, data_ref
from cairn.api.types import CommitLineage
from cairn.data import DEFAULT_BRANCH, CommitInfo, DataStore, InvalidReference, NotFound, Ref
from cairn.pipelines import (
    JobInfo,
    JobState,
    PipelineError,
    Pipelines,
    PipelineSpec,
    commit_lineage,
)

__all__ = ["EmbeddedCommits", "wait_commit"]


class EmbeddedCommits:
    """CommitsProtocol over ``data``. ``finish`` is the Client's (finishing runs the
    pipelines downstream); waiting on a pipeline's output follows the jobs of ``engine``."""

    def __init__(
        self,
        data: DataStore,
        engine: Pipelines,
        finish: Callable[[str, str | None], CommitInfo],
        run: Callable[[], object] | None = None,
    ) -> None:
        self._data = data
        self._engine = engine
        self._finish = finish
        self._run = run

    def list(self, ref: str, *, limit: int = 0) -> builtins.list[CommitInfo]:
        """Newest first: ``repo@branch``'s history (from an ancestor with ``^N``, as git log
        does), or every commit of ``repo``. Raises NotFound, InvalidReference (a path)."""
        parsed = data_ref(ref)
        if parsed.path is not None:
            raise InvalidReference(f"{ref!r}: list the commits of REPO or REPO@BRANCH")
        start = self._data.resolve(parsed).id if parsed.ancestry else parsed.commit
        return self._data.list_commits(parsed.repo, start, limit)

    def get(self, ref: RefLike) -> CommitInfo:
        """The commit ``ref`` names. Raises NotFound, InvalidReference."""
        return self._data.resolve(data_ref(ref))

    def start(self, ref: str, description: str = "") -> CommitInfo:
        """Open a commit on ``repo@branch`` (default master). Raises CommitStateError,
        DataError, NotFound."""
        parsed = data_ref(ref)
        if parsed.ancestry or parsed.path is not None:
            raise InvalidReference(f"{ref!r}: start a commit on REPO@BRANCH")
        return self._data.start_commit(parsed.repo, parsed.commit or DEFAULT_BRANCH, description)

    def finish(self, ref: RefLike) -> CommitInfo:
        """Finish an open commit, then run the pipelines downstream. Raises
        CommitStateError, NotFound."""
        parsed = data_ref(ref)
        return self._finish(parsed.repo, self._commitish(parsed.commit, parsed.ancestry))

    def wait(self, ref: RefLike, timeout: float | None = None) -> CommitInfo:
        """Block until the commit is finished. Raises TimeoutError, PipelineError,
        NotFound."""
        parsed = data_ref(ref)
        commitish = self._commitish(parsed.commit, parsed.ancestry)
        return wait_commit(self._data, self._engine, parsed.repo, commitish, timeout)

    def wait_jobs(self, ref: RefLike, timeout: float | None = None) -> builtins.list[JobInfo]:
        """Block until the commit is finished and its job set is done (CommitsProtocol).
        With ``run`` (the Client runs pipelines), what is stale runs here first; without,
        the jobs another process (``cairn run``, a server's worker) has started are waited
        for. Raises TimeoutError, NotFound."""
        deadline = None if timeout is None else time.monotonic() + timeout
        commit = self.wait(ref, timeout)
        if self._run is not None:
            self._run()  # behind the lock of whoever runs them now: then nothing is stale
        while True:
            jobs = [j for j in self._engine.list_jobs(None, commit.id) if j.id == commit.id]
            if all(j.state != JobState.RUNNING for j in jobs):
                return sorted(jobs, key=lambda j: j.created)
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(
                    f"jobs of {commit.repo}@{commit.id} still running after {timeout}s"
                )
            time.sleep(0.2)

    def lineage(self, ref: RefLike) -> CommitLineage:
        """Upstream and downstream commit trees of one commit. Raises NotFound."""
        trees = commit_lineage(self._data, data_ref(ref))
        return CommitLineage.from_json({k: v.to_json() for k, v in trees.items()})

    def delete(self, ref: RefLike) -> builtins.list[CommitInfo]:
        """Delete a head commit and what was made from it (Pipelines.delete_commit).
        Raises NotFound, CommitStateError."""
        parsed = data_ref(ref)
        commit = self._data.resolve(parsed)
        return self._engine.delete_commit(commit.repo, commit.id)

    def squash(self, ref: RefLike) -> builtins.list[CommitInfo]:
        """Squash a commit into its children (Pipelines.squash_commit). Raises NotFound,
        CommitStateError."""
        commit = self._data.resolve(data_ref(ref))
        return self._engine.squash_commit(commit.repo, commit.id)

    @staticmethod
    def _commitish(commit: str | None, ancestry: int) -> str | None:
        return f"{commit}~{ancestry}" if commit and ancestry else commit


def wait_commit(
    data: DataStore,
    engine: Pipelines,
    repo: str,
    commitish: str | None = None,
    timeout: float | None = None,
) -> CommitInfo:
    """Block until a commit is finished.

    For a pipeline's output repo, an id with no commit yet is waited for too (its job
    may be queued in a ``cairn run`` process). When that process folded the commit into
    a later job (triggering is level-based), the output commit that covers it (its
    provenance reaches that commit or a later one of the same repo) is returned.
    Raises TimeoutError, PipelineError (the job for that id failed), NotFound.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            return data.wait_commit(repo, commitish, left)
        except NotFound:
            info = data.inspect_repo(repo)
            if info.type != "pipeline" or not commitish:
                raise
            for job in engine.list_jobs(repo, commitish):
                if job.state in ("failure", "unrunnable"):
                    raise PipelineError(
                        f"job {repo}@{job.id} {job.state}: no commit will come"
                    ) from None
            spec = engine.inspect_pipeline(repo).spec
            newest = engine.list_jobs(repo)[:1]
            if newest and newest[0].state in ("failure", "unrunnable"):
                if _job_covers(data, newest[0], spec, commitish):
                    raise PipelineError(
                        f"job {repo}@{newest[0].id} {newest[0].state} for inputs that "
                        f"include {commitish}: no commit will come"
                    ) from None
            try:
                head = data.resolve(Ref(repo, spec.output_branch))
            except NotFound:
                head = None
            if head is not None and _covers(data, head, commitish):
                return head
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"no commit {repo}@{commitish} after {timeout}s")
        time.sleep(0.2)


def _job_covers(data: DataStore, job: JobInfo, spec: PipelineSpec, waited: str) -> bool:
    """Whether ``job`` read commit ``waited`` of one of its direct inputs, or a later one."""
    for pfs in spec.pfs_inputs():
        used_id = job.inputs.get(pfs.input_name)
        if used_id is None:
            continue
        try:
            target = data.inspect_commit(pfs.repo, waited)
            used = data.inspect_commit(pfs.repo, used_id)
        except NotFound:
            continue
        if used.created >= target.created:
            return True
    return False


def _covers(data: DataStore, commit: CommitInfo, waited: str, depth: int = 32) -> bool:
    """Whether ``commit`` was made from commit ``waited`` (of any upstream repo) or from a
    later commit of the repo that holds it."""
    for p in commit.provenance:
        if p.commit == waited:
            return True
        try:
            used = data.inspect_commit(p.repo, p.commit)
        except NotFound:
            continue
        try:
            target = data.inspect_commit(p.repo, waited)
        except NotFound:
            target = None
        if target is not None and used.created >= target.created:
            return True
        if depth and _covers(data, used, waited, depth - 1):
            return True
    return False
