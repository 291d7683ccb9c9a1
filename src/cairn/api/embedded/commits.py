"""``client.commits`` in this process."""

from __future__ import annotations

import builtins
from collections.abc import Callable

from cairn.api.refs import RefLike, data_ref
from cairn.api.types import CommitLineage
from cairn.data import DEFAULT_BRANCH, CommitInfo, DataStore, InvalidReference
from cairn.pipelines import commit_lineage

__all__ = ["EmbeddedCommits"]


class EmbeddedCommits:
    """CommitsProtocol over ``data``. ``finish`` and ``wait`` are the Client's: finishing
    runs the pipelines downstream, and waiting on a pipeline's output follows its jobs."""

    def __init__(
        self,
        data: DataStore,
        finish: Callable[[str, str | None], CommitInfo],
        wait: Callable[[str, str | None, float | None], CommitInfo],
    ) -> None:
        self._data = data
        self._finish = finish
        self._wait = wait

    def list(self, ref: str, *, limit: int = 0) -> builtins.list[CommitInfo]:
        """Newest first: ``repo@branch``'s history, or every commit of ``repo``. Raises
        NotFound."""
        parsed = data_ref(ref)
        if parsed.ancestry or parsed.path is not None:
            raise InvalidReference(f"{ref!r}: list the commits of REPO or REPO@BRANCH")
        return self._data.list_commits(parsed.repo, parsed.commit, limit)

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
        return self._wait(parsed.repo, self._commitish(parsed.commit, parsed.ancestry), timeout)

    def lineage(self, ref: RefLike) -> CommitLineage:
        """Upstream and downstream commit trees of one commit. Raises NotFound."""
        trees = commit_lineage(self._data, data_ref(ref))
        return CommitLineage.from_json({k: v.to_json() for k, v in trees.items()})

    @staticmethod
    def _commitish(commit: str | None, ancestry: int) -> str | None:
        return f"{commit}~{ancestry}" if commit and ancestry else commit
