"""``client.repos`` in this process: repos of the store's DataStore."""

from __future__ import annotations

import builtins
from collections.abc import Callable

from cairn.data import DataStore, RepoInfo

__all__ = ["EmbeddedRepos"]


class EmbeddedRepos:
    """ReposProtocol over ``data``; ``delete`` is the Client's (it knows which pipelines
    read a repo)."""

    def __init__(self, data: DataStore, delete: Callable[..., None]) -> None:
        self._data = data
        self._delete = delete

    def list(self) -> builtins.list[RepoInfo]:
        """Every repo, by name."""
        return self._data.list_repos()

    def get(self, name: str) -> RepoInfo:
        """The repo, its branches and the size of master's head. Raises NotFound."""
        return self._data.inspect_repo(name)

    def create(self, name: str, description: str = "") -> RepoInfo:
        """An empty user repo. Raises AlreadyExists, InvalidReference."""
        return self._data.create_repo(name, description)

    def delete(self, name: str, *, force: bool = False) -> None:
        """Delete a repo. Raises NotFound, RepoInUse while a pipeline reads it, unless
        ``force``."""
        self._delete(name, force=force)
