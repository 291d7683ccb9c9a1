"""``client.branches`` in this process."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any

from cairn.data import BranchInfo, DataStore, InvalidReference, Ref, parse_ref

__all__ = ["EmbeddedBranches"]


def _branch(ref: str) -> Ref:
    parsed = parse_ref(ref)
    if parsed.commit is None or parsed.ancestry or parsed.path is not None:
        raise InvalidReference(f"{ref!r}: name a branch as REPO@BRANCH")
    return parsed


class EmbeddedBranches:
    """BranchesProtocol over ``data``; ``run`` (the client's ``run_pipelines`` when it runs
    them itself) runs after a branch is created or moved, since its readers may be stale."""

    def __init__(self, data: DataStore, run: Callable[[], Any] | None = None) -> None:
        self._data = data
        self._run = run

    def list(self, repo: str) -> builtins.list[BranchInfo]:
        """The branches of ``repo``, by name. Raises NotFound."""
        return self._data.list_branches(repo)

    def get(self, ref: str) -> BranchInfo:
        """Branch ``repo@branch``. Raises NotFound, InvalidReference."""
        parsed = _branch(ref)
        return self._data.inspect_branch(parsed.repo, parsed.commit or "")

    def create(self, ref: str, head: str | None = None) -> BranchInfo:
        """Create or move branch ``repo@branch`` to commitish ``head``. Raises NotFound,
        InvalidReference."""
        parsed = _branch(ref)
        branch = self._data.create_branch(parsed.repo, parsed.commit or "", head)
        if self._run is not None:
            self._run()
        return branch

    def delete(self, ref: str) -> None:
        """Remove branch ``repo@branch``. Raises NotFound, InvalidReference."""
        parsed = _branch(ref)
        self._data.delete_branch(parsed.repo, parsed.commit or "")
